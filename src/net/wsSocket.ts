// A WebSocket as the byte stream a Connection reads and writes (docs/protocol.md, "WebSocket
// transports"). Each text message that arrives becomes one length-prefixed frame on the readable
// side; each frame written becomes one text message. Only the framing differs: the Connection's
// decoder (JSON, depth, BAD_FRAME), deadlines, unfinished-frame budget and back-pressure, and the
// RPC and subscriber sessions above it, are the TCP ports' own, so a WebSocket client meets the
// same limits and codes as a TCP one.
//
// Back-pressure is the real socket's, both ways:
// - out: a write is done only once the TCP socket under the WebSocket has handed its bytes to the
//   kernel (ws calls back then), so `writableLength` counts every byte not yet sent, as a net
//   socket's does, and the Connection sees congestion and 'drain' as on TCP;
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

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.sendFrames([chunk], done);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    this.sendFrames(
      chunks.map((c) => c.chunk),
      done,
    );
  }

  /**
   * Sends the frames in `chunks` as messages, each frame's payload as it lies (a frame split
   * across chunks goes as fragments of one message, uncopied), in one write of the TCP socket.
   * `done` runs once the TCP socket has sent the last of them.
   */
  private sendFrames(chunks: Buffer[], done: (err?: Error | null) => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) {
      // Closing: what is left cannot be sent, and 'close' is on its way.
      done();
      return;
    }
    const pieces: Array<{ data: Buffer; fin: boolean }> = [];
    for (const chunk of chunks) {
      let at = 0;
      while (at < chunk.length) {
        if (this.payloadLeft === 0) {
          const n = Math.min(HEADER_BYTES - this.headerHave, chunk.length - at);
          chunk.copy(this.header, this.headerHave, at, at + n);
          this.headerHave += n;
          at += n;
          if (this.headerHave < HEADER_BYTES) break;
          this.headerHave = 0;
          this.payloadLeft = this.header.readUInt32BE(0);
          if (this.payloadLeft === 0) pieces.push({ data: Buffer.alloc(0), fin: true });
          continue;
        }
        const n = Math.min(this.payloadLeft, chunk.length - at);
        this.payloadLeft -= n;
        pieces.push({ data: chunk.subarray(at, at + n), fin: this.payloadLeft === 0 });
        at += n;
      }
    }
    if (pieces.length === 0) {
      done();
      return;
    }
    this.raw.cork();
    const last = pieces.length - 1;
    for (let i = 0; i < pieces.length; i++) {
      const { data, fin } = pieces[i]!;
      // A failed send means the socket is going; 'close' will end this stream.
      this.ws.send(data, { binary: false, fin }, i === last ? () => done() : undefined);
      this.fragmenting = !fin;
    }
    this.raw.uncork();
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
