// Streaming decoder for carrel's framing (docs/protocol.md, "Framing"): a 4-byte unsigned
// big-endian length N, then N bytes of UTF-8 JSON that must be an object. Knows nothing of sockets:
// bytes go in with push(), messages or typed errors come out of next(), one at a time, so the
// caller can stop pulling when it is saturated (in-flight limits) and resume later without losing
// anything.
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
/** The smallest buffer an unfinished frame is gathered in. */
const MIN_GATHER_BYTES = 256;

export class FrameDecoder {
  private readonly maxFrameBytes: number;
  private readonly maxDepth: number;
  /** Unconsumed chunks; `offset` is how far into chunks[0] we have read. */
  private chunks: Buffer[] = [];
  private offset = 0;
  private buffered = 0;
  private fatal = false;
  /**
   * The frame at the front once it is known to straddle reads, gathered in one owned buffer
   * (see gather()); while set, chunks[0] is a view of its first `gathered` bytes.
   */
  private gathering: Buffer | undefined;
  private gathered = 0;

  constructor(opts: FrameDecoderOptions) {
    this.maxFrameBytes = opts.maxFrameBytes;
    this.maxDepth = opts.maxDepth ?? 64;
  }

  /** Bytes received but not yet returned as a frame: > 0 means a frame is partly here. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Memory this decoder holds for its peer: the pending bytes plus the spare room of the buffer
   * gathering an unfinished frame (at most as much again as has arrived, never past the frame).
   * What a listener's budget of unfinished-frame bytes counts.
   */
  get heldBytes(): number {
    return this.buffered + (this.gathering === undefined ? 0 : this.gathering.length - this.gathered);
  }

  /** True after an unrecoverable error: the stream's framing is lost and further bytes are ignored. */
  get broken(): boolean {
    return this.fatal;
  }

  push(chunk: Buffer): void {
    if (this.fatal || chunk.length === 0) return;
    this.buffered += chunk.length;
    if (this.gathering !== undefined && this.chunks.length === 1) {
      const used = this.gatherInto(chunk);
      if (used === chunk.length) return;
      chunk = chunk.subarray(used);
    }
    this.chunks.push(chunk);
  }

  /** Drops everything buffered and ignores further bytes: the caller has given up on this stream. */
  discard(): void {
    this.fatal = true;
    this.chunks = [];
    this.buffered = 0;
    this.offset = 0;
    this.gathering = undefined;
    this.gathered = 0;
  }

  /** The next whole frame (or framing error), or undefined when more bytes are needed. */
  next(): Decoded | undefined {
    if (this.fatal || this.buffered === 0) return undefined;
    if (this.buffered < HEADER_BYTES) return this.gather();
    const length = this.peekLength();
    if (length === 0) {
      this.consume(HEADER_BYTES);
      return frameError('EMPTY_FRAME', 'frame length is zero', true);
    }
    if (length > this.maxFrameBytes) {
      // The length field is not trusted: refuse before buffering a byte of the payload.
      this.discard();
      return frameError(
        'FRAME_TOO_LARGE',
        `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`,
        false,
      );
    }
    if (this.buffered < HEADER_BYTES + length) return this.gather();
    this.consume(HEADER_BYTES);
    const payload = this.take(length);
    return this.parse(payload);
  }

  /**
   * The frame at the front is unfinished: copy what has arrived of it into one owned buffer, so
   * it pins neither the (possibly much larger) read its first bytes came in, nor one Buffer
   * object per read when a peer dribbles a byte at a time (~400 bytes of RSS each). The buffer
   * starts at twice what has arrived and doubles as bytes come (gatherInto), never past the
   * frame's declared size and never sized by that declaration alone (STYLE §1).
   */
  private gather(): undefined {
    if (this.gathering !== undefined) return undefined; // chunks is [its view]: already gathered
    // Everything before this frame has been consumed, so every buffered byte is this frame's.
    const have = this.buffered;
    const total = have >= HEADER_BYTES ? HEADER_BYTES + this.peekLength() : Infinity;
    const g = Buffer.allocUnsafeSlow(Math.min(total, Math.max(2 * have, MIN_GATHER_BYTES)));
    let filled = 0;
    for (let i = 0; i < this.chunks.length; i++) filled += this.chunks[i]!.copy(g, filled, i === 0 ? this.offset : 0);
    this.gathering = g;
    this.gathered = filled;
    this.chunks = [g.subarray(0, filled)];
    this.offset = 0;
    return undefined;
  }

  /** Copies into the frame being gathered what it still lacks of chunk; returns how many bytes. */
  private gatherInto(chunk: Buffer): number {
    let g = this.gathering!;
    let used = 0;
    if (this.gathered < HEADER_BYTES) {
      used = chunk.copy(g, this.gathered, 0, Math.min(HEADER_BYTES - this.gathered, chunk.length));
      this.gathered += used;
      if (this.gathered < HEADER_BYTES) return this.gatheredView(used);
    }
    const length = g.readUInt32BE(0);
    // A zero or oversized length is next()'s to report; gather nothing past the header.
    if (length === 0 || length > this.maxFrameBytes) return this.gatheredView(used);
    const n = Math.min(HEADER_BYTES + length - this.gathered, chunk.length - used);
    if (this.gathered + n > g.length) {
      const grown = Buffer.allocUnsafeSlow(Math.min(HEADER_BYTES + length, Math.max(2 * g.length, this.gathered + n)));
      g.copy(grown, 0, 0, this.gathered);
      this.gathering = g = grown;
    }
    chunk.copy(g, this.gathered, used, used + n);
    this.gathered += n;
    return this.gatheredView(used + n);
  }

  private gatheredView(used: number): number {
    this.chunks[0] = this.gathering!.subarray(0, this.gathered);
    return used;
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
    // The header straddles chunks (docs/protocol.md, "Framing": "a header split in two included").
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

  /** Removes n buffered bytes (a header) without making a view of them. */
  private consume(n: number): void {
    const first = this.chunks[0]!;
    if (first.length - this.offset > n) {
      this.buffered -= n;
      this.offset += n;
      return;
    }
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
      if (this.offset === first.length) this.dropFirst();
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
        this.dropFirst();
      } else {
        this.offset += copied;
      }
    }
    return out;
  }

  private dropFirst(): void {
    this.chunks.shift();
    this.offset = 0;
    // Only ever chunks[0] is the gathered frame's view; once it is consumed the buffer goes too.
    this.gathering = undefined;
    this.gathered = 0;
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
