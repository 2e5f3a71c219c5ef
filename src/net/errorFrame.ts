// The error frame of every port, from one encoder (docs/protocol.md, "Framing", and the `error`
// of the sensor and subscriber ports). On the RPC port an error is a reply:
//   {"rpcId": <the request's, or null>, "result": null, "error": {"code", "message", "details"?}}
// On the sensor and subscriber ports it is a frame of its own, the details' fields beside the code:
//   {"type": "error", "code", "message", "ref"?, …details}   (e.g. "retryAfterMs")
// A port names itself as its Listener does: rpc, sensor, pubsub.
import { encodeJsonText } from '../codec/index.js';
import type { ErrorCode, FrameErrorCode, WireError } from '../wire/errors.js';
import type { ErrorFrame } from '../wire/types.js';

export type ErrorPort = 'rpc' | 'sensor' | 'pubsub';

/** rpcId: the request answered, null when it could not be told (a bad frame, a refused connection). */
export function encodeErrorFrame(port: 'rpc', error: WireError<ErrorCode>, rpcId: number | string | null): Buffer;
/** ref: the `ref` of the occupancy frame answered, when there is one. */
export function encodeErrorFrame(port: 'sensor', error: WireError<ErrorCode>, ref?: unknown): Buffer;
export function encodeErrorFrame(port: 'pubsub', error: WireError<FrameErrorCode>): Buffer;
export function encodeErrorFrame(port: ErrorPort, error: WireError<FrameErrorCode>, answering?: unknown): Buffer {
  if (port === 'rpc') {
    return encodeJsonText(`{"rpcId":${JSON.stringify(answering ?? null)},"result":null,"error":${JSON.stringify(error)}}`);
  }
  const frame: ErrorFrame = { type: 'error', code: error.code, message: error.message };
  if (answering !== undefined) frame.ref = answering;
  for (const [key, value] of Object.entries(error.details ?? {})) if (!Object.hasOwn(frame, key)) frame[key] = value;
  return encodeJsonText(JSON.stringify(frame));
}
