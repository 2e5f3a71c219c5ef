export { FrameDecoder, exceedsDepth } from './frameDecoder.js';
export type { Decoded, FrameError, FrameErrorReason, FrameMessage, FrameDecoderOptions } from './frameDecoder.js';
export { encodeFrame, encodeJsonText, encodeSpliced, type EncodedFrame } from './frameEncoder.js';
