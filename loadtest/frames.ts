// The load generator's side of the framing (docs/protocol.md, "Framing"), kept lean because the
// client shares the machine with the server it measures: frames are split without copying where
// possible and payloads are handed on as text, so a caller parses JSON only when it must.

/** Frames a JSON text: 4-byte big-endian length, then the UTF-8 bytes. */
export function frameText(json: string): Buffer {
  const n = Buffer.byteLength(json);
  const buf = Buffer.allocUnsafe(4 + n);
  buf.writeUInt32BE(n, 0);
  buf.write(json, 4);
  return buf;
}

export function frameJson(value: unknown): Buffer {
  return frameText(JSON.stringify(value));
}

/**
 * Splits a byte stream into frame payloads; any chunking of the stream gives the same payloads.
 * Chunks are gathered in a list and joined only once a whole frame is there, so a large reply
 * arriving in many reads is copied once, not once per read.
 */
export class FrameSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the frame being waited for (header included), or 0 while the header is incomplete. */
  private need = 0;

  constructor(private readonly maxFrameBytes = 64 * 1024 * 1024) {}

  /** Calls onFrame(buf, start, end) with each whole frame's payload bytes, in order. */
  pushBytes(chunk: Buffer, onFrame: (buf: Buffer, start: number, end: number) => void): void {
    if (this.buffered > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.need === 0 && this.buffered >= 4) this.need = this.headerLength() + 4;
      if (this.need === 0 || this.buffered < this.need) return;
      chunk = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
      this.need = 0;
    }
    let off = 0;
    const len = chunk.length;
    while (len - off >= 4) {
      const n = chunk.readUInt32BE(off);
      if (n > this.maxFrameBytes) throw new Error(`frame of ${n} bytes is over the client's limit`);
      if (len - off - 4 < n) {
        this.need = n + 4;
        break;
      }
      onFrame(chunk, off + 4, off + 4 + n);
      off += 4 + n;
    }
    if (off < len) {
      const rest = chunk.subarray(off);
      this.chunks = [rest];
      this.buffered = rest.length;
    }
  }

  /** Calls onPayload with each whole frame's payload as text, in order. */
  push(chunk: Buffer, onPayload: (text: string) => void): void {
    this.pushBytes(chunk, (buf, start, end) => onPayload(buf.toString('utf8', start, end)));
  }

  private headerLength(): number {
    const head = Buffer.concat(this.chunks, this.buffered).subarray(0, 4);
    const n = head.readUInt32BE(0);
    if (n > this.maxFrameBytes) throw new Error(`frame of ${n} bytes is over the client's limit`);
    return n;
  }
}

const SUCCESS_TAIL = Buffer.from('"error":null}');
const RPCID_HEAD = Buffer.from('{"rpcId":');

/** True when a reply's payload carries no error (carrel and the echo baseline end every success `"error":null}`), read from its bytes without decoding them. */
export function bytesAreSuccess(buf: Buffer, start: number, end: number): boolean {
  const n = SUCCESS_TAIL.length;
  return end - start >= n && buf.compare(SUCCESS_TAIL, 0, n, end - n, end) === 0;
}

/** The rpcId of a reply read from its payload's bytes (replies start `{"rpcId":<n>,`): -1 when it does not start that way (the caller then parses it). */
export function bytesRpcId(buf: Buffer, start: number, end: number): number {
  const h = RPCID_HEAD.length;
  if (end - start <= h || buf.compare(RPCID_HEAD, 0, h, start, start + h) !== 0) return -1;
  let n = 0;
  let i = start + h;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return i === start + h ? -1 : n;
}

/** The error code of a reply that is not a success ('BAD_REPLY' when it cannot be read). */
export function replyErrorCode(text: string): string {
  try {
    const v = JSON.parse(text) as { error?: { code?: unknown } | null };
    if (v.error && typeof v.error.code === 'string') return v.error.code;
    return v.error === null ? 'OK' : 'BAD_REPLY';
  } catch {
    return 'BAD_REPLY';
  }
}

// --- WebSocket (docs/protocol.md, "WebSocket transports") -----------------------------------
// The same lean client for /ws/live: a WebSocket that fan-out is measured through must cost the
// client what a framed TCP socket does, or the comparison measures the client.

/** One text message from a client: masked, as RFC 6455 requires of clients (the mask need not be secret for a load generator). */
export function wsClientText(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const n = body.length;
  const headBytes = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(headBytes + 4 + n);
  out[0] = 0x81;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65_536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(n, 6);
  }
  const mask = Math.floor(Math.random() * 0x1_0000_0000);
  out.writeUInt32BE(mask, headBytes);
  for (let i = 0; i < n; i++) out[headBytes + 4 + i] = body[i]! ^ out[headBytes + (i & 3)]!;
  return out;
}

/**
 * Splits a server's WebSocket byte stream into messages: text payloads (fragments joined) to
 * onText, control frames to onControl (opcode, payload). Server frames are never masked.
 */
export class WsFrameSplitter {
  private pending: Buffer | undefined;
  private fragments: Buffer[] = [];

  push(chunk: Buffer, onText: (text: string) => void, onControl: (opcode: number, payload: Buffer) => void): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let off = 0;
    for (;;) {
      if (buf.length - off < 2) break;
      const b0 = buf[off]!;
      const b1 = buf[off + 1]!;
      let n = b1 & 0x7f;
      let head = 2;
      if (n === 126) {
        if (buf.length - off < 4) break;
        n = buf.readUInt16BE(off + 2);
        head = 4;
      } else if (n === 127) {
        if (buf.length - off < 10) break;
        n = buf.readUInt32BE(off + 6);
        head = 10;
      }
      if (buf.length - off < head + n) break;
      const start = off + head;
      const opcode = b0 & 0x0f;
      off = start + n;
      if (opcode >= 0x8) {
        onControl(opcode, buf.subarray(start, off));
      } else if (b0 & 0x80) {
        if (this.fragments.length === 0) onText(buf.toString('utf8', start, off));
        else {
          this.fragments.push(buf.subarray(start, off));
          onText(Buffer.concat(this.fragments).toString('utf8'));
          this.fragments = [];
        }
      } else {
        this.fragments.push(Buffer.from(buf.subarray(start, off)));
      }
    }
    if (off < buf.length) this.pending = buf.subarray(off);
  }
}
