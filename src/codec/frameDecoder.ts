// Streaming decoder for carrel's framing (DESIGN §1): a 4-byte unsigned big-endian length N,
// then N bytes of UTF-8 JSON that must be an object. Knows nothing of sockets: bytes go in with
// push(), messages or typed errors come out of next(), one at a time, so the caller can stop
// pulling when it is saturated (in-flight limits) and resume later without losing anything.
import { isUtf8 } from 'node:buffer';

export type FrameErrorReason =
  | 'EMPTY_FRAME'
  | 'FRAME_TOO_LARGE'
  | 'INVALID_UTF8'
  | 'INVALID_JSON'
  | 'NOT_AN_OBJECT'
  | 'TOO_DEEP';

export interface FrameError {
  readonly kind: 'error';
  readonly reason: FrameErrorReason;
  readonly message: string;
  /** True when the next frame boundary is still known, so the connection can live on. */
  readonly recoverable: boolean;
}

export interface FrameMessage {
  readonly kind: 'message';
  readonly value: Record<string, unknown>;
  /** Size of the frame's payload in bytes (for metrics and limits). */
  readonly bytes: number;
}

export type Decoded = FrameMessage | FrameError;

export interface FrameDecoderOptions {
  maxFrameBytes: number;
  /** Deepest array/object nesting accepted; deeper JSON is refused before it is parsed. */
  maxDepth?: number;
}

const HEADER_BYTES = 4;

export class FrameDecoder {
  private readonly maxFrameBytes: number;
  private readonly maxDepth: number;
  /** Unconsumed chunks; `offset` is how far into chunks[0] we have read. */
  private chunks: Buffer[] = [];
  private offset = 0;
  private buffered = 0;
  private fatal = false;

  constructor(opts: FrameDecoderOptions) {
    this.maxFrameBytes = opts.maxFrameBytes;
    this.maxDepth = opts.maxDepth ?? 64;
  }

  /** Bytes received but not yet returned as a frame: > 0 means a frame is partly here. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** True after an unrecoverable error: the stream's framing is lost and further bytes are ignored. */
  get broken(): boolean {
    return this.fatal;
  }

  push(chunk: Buffer): void {
    if (this.fatal || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next whole frame (or framing error), or undefined when more bytes are needed. */
  next(): Decoded | undefined {
    if (this.fatal || this.buffered < HEADER_BYTES) return undefined;
    const length = this.peekLength();
    if (length === 0) {
      this.consume(HEADER_BYTES);
      return frameError('EMPTY_FRAME', 'frame length is zero', true);
    }
    if (length > this.maxFrameBytes) {
      // The length field is not trusted: refuse before buffering a byte of the payload.
      this.fatal = true;
      this.chunks = [];
      this.buffered = 0;
      this.offset = 0;
      return frameError(
        'FRAME_TOO_LARGE',
        `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`,
        false,
      );
    }
    if (this.buffered < HEADER_BYTES + length) return undefined;
    this.consume(HEADER_BYTES);
    const payload = this.take(length);
    return this.parse(payload);
  }

  private parse(payload: Buffer): Decoded {
    if (!isUtf8(payload)) return frameError('INVALID_UTF8', 'frame is not valid UTF-8', true);
    if (exceedsDepth(payload, this.maxDepth)) {
      return frameError('TOO_DEEP', `JSON nests deeper than ${this.maxDepth} levels`, true);
    }
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8'));
    } catch {
      return frameError('INVALID_JSON', 'frame is not valid JSON', true);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return frameError('NOT_AN_OBJECT', 'frame must hold a JSON object', true);
    }
    return { kind: 'message', value: value as Record<string, unknown>, bytes: payload.length };
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length - this.offset >= HEADER_BYTES) return first.readUInt32BE(this.offset);
    // The header straddles chunks (DESIGN §1: "a header split in two").
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    let filled = 0;
    let skip = this.offset;
    for (const chunk of this.chunks) {
      const n = chunk.copy(header, filled, skip, Math.min(chunk.length, skip + HEADER_BYTES - filled));
      filled += n;
      skip = 0;
      if (filled === HEADER_BYTES) break;
    }
    return header.readUInt32BE(0);
  }

  private consume(n: number): void {
    this.take(n);
  }

  /** Removes n buffered bytes and returns them, copying only when they span chunks. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    const available = first.length - this.offset;
    if (available >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) {
        this.chunks.shift();
        this.offset = 0;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const want = n - filled;
      const have = chunk.length - this.offset;
      const copied = chunk.copy(out, filled, this.offset, this.offset + Math.min(want, have));
      filled += copied;
      if (copied === have) {
        this.chunks.shift();
        this.offset = 0;
      } else {
        this.offset += copied;
      }
    }
    return out;
  }
}

function frameError(reason: FrameErrorReason, message: string, recoverable: boolean): FrameError {
  return { kind: 'error', reason, message, recoverable };
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * A linear scan for nesting depth, so deeply nested JSON is refused before anything recursive
 * (schema validation, logging) walks it. Strings are skipped so brackets inside them don't count.
 */
export function exceedsDepth(bytes: Buffer, maxDepth: number): boolean {
  // Fast path: a frame shorter than the limit cannot nest deeper than it.
  if (bytes.length <= maxDepth) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}
