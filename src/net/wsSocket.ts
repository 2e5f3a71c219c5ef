// A WebSocket as the byte stream a Connection reads and writes (docs/protocol.md, "WebSocket
// transports"). Each text message that arrives becomes one length-prefixed frame on the readable
// side; each frame written becomes one text message. Only the framing differs: the Connection's
// decoder (JSON, depth, BAD_FRAME), deadlines, unfinished-frame budget and back-pressure, and the
// RPC and subscriber sessions above it, are the TCP ports' own, so a WebSocket client meets the
// same limits and codes as a TCP one.
//
// ws does the handshake, reads and checks what the peer sends, answers pings and closes. What
// the server sends it frames itself (RFC 6455 §5.2: a server's frame is a header and the payload,
// unmasked) and writes to the TCP socket directly: the hub hands every subscriber the same Buffer
// of a turn's events, which is framed once for all of them, so a subscriber costs one write per
// turn as on TCP.
//
// Back-pressure is the real socket's, both ways:
// - out: writes pass straight to the TCP socket under the WebSocket while it takes them; once it
//   holds its own high-water mark (16 KiB) unsent, the next write waits for its 'drain', and what
//   follows queues in this stream, so `writableLength`, `writableNeedDrain` and 'drain' tell the
//   Connection of congestion as a net socket's do (what it counts leaves out only the TCP
//   socket's own 16 KiB and one write);
// - in: while the Connection does not read (paused), the next message stays in this stream's
//   buffer, the WebSocket stops reading its TCP socket, and the peer's kernel buffers fill.
//
// What ws holds of a message that has not finished arriving is reported as `partialBytes`, with a
// 'partial' event after each read of the TCP socket (see Connection), so it counts toward the
// port's budget and the partial-frame deadline like the decoder's unfinished frame on TCP, and a
// read counts as activity for the idle deadline.
import type net from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocket } from 'ws';

const HEADER_BYTES = 4;
/** WebSocket opcodes (RFC 6455 §5.2). */
const TEXT = 0x1;
const CONTINUATION = 0x0;
/** Chunks of whole frames up to this size are framed once and the result shared (framedOnce). */
const WHOLE_FRAMES_MAX = 64 * 1024;

/**
 * Chunks already framed, by identity: the hub writes one Buffer of a turn's events to every
 * subscriber, so over WebSocket it is framed once per turn, not once per subscriber, and each
 * subscriber costs one write, as on TCP. Entries live as long as the chunk they came from.
 */
const framed = new WeakMap<Buffer, Buffer | null>();

/**
 * `chunk` as WebSocket text messages if it holds whole carrel frames only (and is small enough
 * to copy), else undefined. Framing is the same for every connection, so it is done once.
 */
function framedOnce(chunk: Buffer): Buffer | undefined {
  const known = framed.get(chunk);
  if (known !== undefined) return known ?? undefined;
  let result: Buffer | null = null;
  if (chunk.length <= WHOLE_FRAMES_MAX) {
    let size = 0;
    let at = 0;
    while (at + HEADER_BYTES <= chunk.length) {
      const n = chunk.readUInt32BE(at);
      at += HEADER_BYTES + n;
      size += wsHeaderBytes(n) + n;
    }
    if (at === chunk.length) {
      result = Buffer.allocUnsafe(size);
      let from = 0;
      let to = 0;
      while (from < chunk.length) {
        const n = chunk.readUInt32BE(from);
        to += writeWsHeader(result, to, n, TEXT, true);
        to += chunk.copy(result, to, from + HEADER_BYTES, from + HEADER_BYTES + n);
        from += HEADER_BYTES + n;
      }
    }
  }
  framed.set(chunk, result);
  return result ?? undefined;
}

function wsHeaderBytes(length: number): number {
  return length < 126 ? 2 : length < 65_536 ? 4 : 10;
}

/** A server frame's header (unmasked) at `at`; returns its size. */
function writeWsHeader(into: Buffer, at: number, length: number, opcode: number, fin: boolean): number {
  into[at] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) {
    into[at + 1] = length;
    return 2;
  }
  if (length < 65_536) {
    into[at + 1] = 126;
    into.writeUInt16BE(length, at + 2);
    return 4;
  }
  into[at + 1] = 127;
  // carrel's frame lengths are 32-bit: the high half of the 64-bit length is zero.
  into.writeUInt32BE(0, at + 2);
  into.writeUInt32BE(length, at + 6);
  return 10;
}

function wsHeader(length: number, opcode: number, fin: boolean): Buffer {
  const h = Buffer.allocUnsafe(wsHeaderBytes(length));
  writeWsHeader(h, 0, length, opcode, fin);
  return h;
}

/**
 * The closing codes this transport uses besides ws's own (1009 message too big, 1007 text that is
 * not UTF-8, 1002 a broken WebSocket frame, 1008 a message in too many pieces).
 */
export const WS_CLOSE = {
  normal: 1000,
  /** A binary message: carrel's messages are JSON text (RFC 6455 §7.4.1, "unsupported data"). */
  unsupportedData: 1003,
} as const;

/**
 * What a read of the socket costs beyond its bytes while ws keeps it for an unfinished message
 * (a Buffer object and its backing store: ~400 bytes of RSS, measured for the TCP decoder, see
 * codec/frameDecoder.ts): a peer that sends a message a byte at a time is charged for the pieces.
 */
const PER_PIECE_BYTES = 256;

/** ws's receiver, read for what it holds of an unfinished message (not part of ws's typed API). */
interface ReceiverHoldings {
  _bufferedBytes?: number;
  _buffers?: unknown[];
  _messageLength?: number;
  _fragments?: unknown[];
}

export class WsSocket extends Duplex {
  /** The peer's address and port, as on a net.Socket (per-address limits read them). */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** Payload bytes of the frame being written that are still to come (a frame may span writes). */
  private payloadLeft = 0;
  /** The header of the next frame, while it arrives in pieces. */
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerHave = 0;
  /** The message being written was begun as a fragment; its next piece continues it. */
  private fragmenting = false;
  /** This stream asked the WebSocket to stop reading (its reader is not taking messages). */
  private wsPaused = false;

  constructor(
    private readonly ws: WebSocket,
    /** The TCP socket under the WebSocket. */
    private readonly raw: net.Socket,
  ) {
    // One byte: a message waiting in this stream is enough to stop reading the socket while the
    // Connection is paused; while it reads, messages pass straight through.
    super({ readableHighWaterMark: 1, decodeStrings: true });
    this.remoteAddress = raw.remoteAddress;
    this.remotePort = raw.remotePort;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.receive(data, isBinary));
    // ws closes the connection itself after an error, with the code that says why (1009, 1007,
    // 1002, 1008); 'close' follows, and with it the end of this stream.
    ws.on('error', () => undefined);
    ws.on('close', () => this.destroy());
    // After ws has taken in a read (its listener was added first): what it now holds unfinished.
    raw.on('data', () => this.emit('partial'));
  }

  /** Bytes ws holds of a message that has not finished arriving, pieces charged (see PER_PIECE_BYTES). */
  get partialBytes(): number {
    const r = (this.ws as unknown as { _receiver?: ReceiverHoldings })._receiver;
    if (!r) return 0;
    const bytes = (r._bufferedBytes ?? 0) + (r._messageLength ?? 0);
    if (bytes === 0) return 0;
    return bytes + PER_PIECE_BYTES * ((r._buffers?.length ?? 0) + (r._fragments?.length ?? 0));
  }

  private receive(data: Buffer, isBinary: boolean): void {
    if (this.destroyed) return;
    if (isBinary) {
      this.ws.close(WS_CLOSE.unsupportedData, 'binary messages are not accepted: send each JSON object as one text message');
      return;
    }
    const frame = Buffer.allocUnsafe(HEADER_BYTES + data.length);
    frame.writeUInt32BE(data.length, 0);
    data.copy(frame, HEADER_BYTES);
    if (!this.push(frame) && !this.wsPaused) {
      this.wsPaused = true;
      this.ws.pause();
    }
  }

  override _read(): void {
    if (!this.wsPaused) return;
    this.wsPaused = false;
    this.ws.resume();
  }

  /**
   * A tick's writes (the Connection corks for one) leave the TCP socket in one system call: it is
   * corked with this stream.
   */
  override cork(): void {
    super.cork();
    this.raw.cork();
  }

  override uncork(): void {
    super.uncork();
    this.raw.uncork();
  }

  /**
   * Sends the frames in `chunk` as text messages. Done at once while the TCP socket takes them
   * (it holds less than its own high-water mark); else once it drains, and what is written
   * meanwhile waits in this stream, where the Connection counts it. A chunk of whole frames up
   * to WHOLE_FRAMES_MAX bytes is framed once for every connection it is written to
   * (framedOnce); anything else goes as it lies, a frame cut across chunks as fragments of one
   * message, uncopied.
   */
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) {
      // Closing: what is left cannot be sent, and 'close' is on its way.
      done();
      return;
    }
    const raw = this.raw;
    const whole = this.payloadLeft === 0 && this.headerHave === 0 ? framedOnce(chunk) : undefined;
    let taken = true;
    if (whole) {
      taken = raw.write(whole);
    } else {
      const out: Buffer[] = [];
      this.cut(chunk, out);
      raw.cork();
      for (const part of out) taken = raw.write(part);
      raw.uncork();
    }
    // A socket that is destroyed meanwhile never drains; 'close' ends this stream then.
    if (taken) done();
    else raw.once('drain', () => done());
  }

  /** Frames `chunk` as it lies into `out`: WebSocket headers beside views of the payloads. */
  private cut(chunk: Buffer, out: Buffer[]): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.payloadLeft === 0) {
        const n = Math.min(HEADER_BYTES - this.headerHave, chunk.length - at);
        chunk.copy(this.header, this.headerHave, at, at + n);
        this.headerHave += n;
        at += n;
        if (this.headerHave < HEADER_BYTES) return;
        this.headerHave = 0;
        this.payloadLeft = this.header.readUInt32BE(0);
        if (this.payloadLeft === 0) out.push(wsHeader(0, TEXT, true));
        continue;
      }
      const n = Math.min(this.payloadLeft, chunk.length - at);
      this.payloadLeft -= n;
      const fin = this.payloadLeft === 0;
      out.push(wsHeader(n, this.fragmenting ? CONTINUATION : TEXT, fin), chunk.subarray(at, at + n));
      this.fragmenting = !fin;
      at += n;
    }
  }

  override _final(done: (err?: Error | null) => void): void {
    // A message half written (the Connection gave up mid-frame) cannot be finished: drop the socket.
    if (this.fragmenting) this.ws.terminate();
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(WS_CLOSE.normal);
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
    done(err);
  }
}
