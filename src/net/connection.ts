// One Connection owns one socket (STYLE §2): the 'error' listener first, framing through the
// pure decoder, read pause/resume for back-pressure, a persistent 'drain' listener, the idle and
// partial-frame deadlines, and one idempotent dispose(). Sessions (RPC, sensor, subscriber)
// take a Connection, so their tests can run over stream.duplexPair() without a port, and so a
// WebSocket (wsSocket.ts) carries them by being the Duplex underneath.
import type { Duplex } from 'node:stream';
import { FrameDecoder, type EncodedFrame, type FrameError } from '../codec/index.js';
import type { Logger } from '../obs/log.js';
import type { FrameBudget } from './frameBudget.js';

export interface ConnectionOptions {
  maxFrameBytes: number;
  maxJsonDepth: number;
  /** Close when nothing has been received for this long; 0 turns it off (subscribers). */
  idleTimeoutMs: number;
  /** Close when a frame was started but not finished for this long; 0 turns it off. */
  partialFrameTimeoutMs: number;
  /** Above this many unsent bytes the connection counts as congested. */
  writeHighWaterBytes: number;
}

export type CloseReason = 'peer' | 'idle' | 'partialFrame' | 'badFrame' | 'server' | 'error' | 'shutdown' | 'overload';

export interface ConnectionHandler {
  onMessage(message: Record<string, unknown>): void;
  /** A framing error; the connection closes by itself afterwards when !error.recoverable. */
  onFrameError(error: FrameError): void;
  /** The socket's send buffer has emptied after being congested. */
  onDrain?(): void;
  onClose?(reason: CloseReason): void;
  /** Called on each sweep with the current time, for the session's own deadlines. */
  onTick?(nowMs: number): void;
}

/**
 * A socket that assembles messages itself before handing them on (a WebSocket, wsSocket.ts) holds
 * the bytes of an unfinished one where the decoder cannot see them. It reports them here and emits
 * 'partial' after each read it takes in, so they count toward the port's budget and the
 * partial-frame deadline as the decoder's unfinished frame does, and the read counts as activity
 * for the idle deadline as any TCP read does.
 */
interface AssemblingSocket {
  readonly partialBytes?: number;
}

let nextId = 1;

/** A run of small parts is handed to the socket once it reaches this many bytes. */
const GATHER_BYTES = 16 * 1024;
/** A part this large goes to the socket as it is rather than copied into a joined run. */
const GATHER_DIRECT_BYTES = 1024;

export class Connection {
  readonly id = nextId++;
  readonly remote: string;
  /** The peer's IP address without the port ('local' for in-process pairs), for per-address limits. */
  readonly remoteAddress: string;
  private readonly decoder: FrameDecoder;
  private handler: ConnectionHandler | undefined;
  private readPaused = false;
  /** close() was called: input is read only to reach the peer's FIN, and thrown away. */
  private closing = false;
  private corked = false;
  /** Small parts sent this tick, not yet handed to the socket: joined into one buffer first. */
  private readonly out: Buffer[] = [];
  private outBytes = 0;
  private disposed = false;
  private closeReason: CloseReason = 'peer';
  private lastActivityMs: number;
  private partialSinceMs = 0;
  /** What the port's budget was last told this connection holds in an unfinished frame. */
  private budgeted = 0;

  constructor(
    readonly socket: Duplex,
    private readonly opts: ConnectionOptions,
    private readonly log: Logger,
    /** The port's budget of unfinished-frame bytes; absent for sessions tested without a port. */
    private readonly budget?: FrameBudget<Connection>,
  ) {
    // The error listener goes first: one reset peer must never become an uncaught exception.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.log.debug({ conn: this.id, err: err.code ?? err.message }, 'socket error');
      this.dispose('error');
    });
    const s = socket as Duplex & { remoteAddress?: string; remotePort?: number };
    this.remote = s.remoteAddress ? `${s.remoteAddress}:${s.remotePort}` : 'local';
    this.remoteAddress = s.remoteAddress ?? 'local';
    this.decoder = new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes, maxDepth: opts.maxJsonDepth });
    this.lastActivityMs = Date.now();
    socket.on('close', () => this.dispose(this.closeReason));
    socket.on('end', () => {
      // The peer finished sending; let queued replies go out, then close our side.
      if (!this.disposed) socket.end();
    });
    socket.on('drain', () => this.handler?.onDrain?.());
    socket.on('partial', () => this.notePartial());
  }

  /** Attaches the session and starts reading. */
  start(handler: ConnectionHandler): void {
    this.handler = handler;
    this.socket.on('data', (chunk: Buffer) => {
      if (this.closing) return;
      this.lastActivityMs = Date.now();
      this.decoder.push(chunk);
      this.pump();
    });
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** True while the peer is not taking our bytes fast enough (STYLE §2). */
  get congested(): boolean {
    const s = this.socket;
    return s.writableNeedDrain && s.writableLength >= this.opts.writeHighWaterBytes;
  }

  get bufferedBytes(): number {
    return this.socket.writableLength + this.outBytes;
  }

  /**
   * Queues one encoded frame. What is sent in one tick leaves together at its end: the socket
   * is corked for the tick, and runs of small parts (under GATHER_DIRECT_BYTES: every PING reply,
   * the head and tail around a cached listing) are joined into one buffer before they reach it,
   * while larger parts (the listing itself) go in as they are, uncopied. Profiles showed a
   * corked writev of one entry per frame costing more than the replies themselves; joined, 32
   * pipelined PONGs are one entry. The joined run is handed to the socket as soon as it would
   * take the socket to the high-water mark, so `congested` (the socket's own accounting) sees
   * every byte past it. Returns false when the connection is now congested.
   */
  send(frame: EncodedFrame): boolean {
    if (this.disposed) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    if (Buffer.isBuffer(frame)) this.gather(frame);
    else for (const part of frame) this.gather(part);
    if (this.outBytes >= GATHER_BYTES || this.socket.writableLength + this.outBytes >= this.opts.writeHighWaterBytes) this.flush();
    return !this.congested;
  }

  private gather(part: Buffer): void {
    if (part.length >= GATHER_DIRECT_BYTES) {
      this.flush();
      this.socket.write(part);
      return;
    }
    this.out.push(part);
    this.outBytes += part.length;
  }

  /** Hands the joined run of small parts to the socket. */
  private flush(): void {
    const out = this.out;
    if (out.length === 0) return;
    const bytes = out.length === 1 ? out[0]! : Buffer.concat(out, this.outBytes);
    out.length = 0;
    this.outBytes = 0;
    this.socket.write(bytes);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    if (this.disposed) return;
    this.flush();
    this.socket.uncork();
  };

  /**
   * Writes one frame at once, uncorked: for a caller that sends one buffer a turn (the
   * subscriber fan-out, which joins a turn's events), so the write happens here and not in a
   * nextTick per connection. Returns false when the connection is now congested.
   */
  sendNow(frame: Buffer): boolean {
    if (this.disposed) return false;
    this.flush();
    this.socket.write(frame);
    return !this.congested;
  }

  /** Stops taking messages off the wire: TCP back-pressure reaches the peer. */
  pauseReading(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.readPaused || this.disposed || this.closing) return;
    this.readPaused = false;
    // Frames already buffered go first; pump() may pause again before we resume the socket.
    this.pump();
    if (!this.readPaused) this.socket.resume();
  }

  get readingPaused(): boolean {
    return this.readPaused;
  }

  /**
   * Sends what is queued (optionally one last frame), then closes. A peer that never reads
   * cannot hold the socket open past `lingerMs`; what is still unsent then is lost. Callers whose
   * last frame sits behind a full buffer for a peer that may resume late pass a longer linger.
   */
  close(reason: CloseReason = 'server', finalFrame?: Buffer, lingerMs = 2_000): void {
    if (this.disposed || this.closing) return;
    this.closeReason = reason;
    this.closing = true;
    this.readPaused = true; // no further message reaches the session
    this.flush();
    if (finalFrame) this.socket.write(finalFrame);
    this.socket.end();
    // Go on reading, into the void, until the peer's FIN: a paused socket with input unread
    // never emits 'close' (a draining shutdown waited out its whole grace on that), and tearing
    // it down with input unread sends RST, which can discard replies the peer has not read yet.
    this.socket.resume();
    // A peer that never reads cannot hold the socket open past this.
    const t = setTimeout(() => this.dispose(reason), lingerMs);
    t.unref();
  }

  dispose(reason: CloseReason = 'server'): void {
    if (this.disposed) return;
    this.disposed = true;
    this.closeReason = reason;
    this.out.length = 0;
    this.outBytes = 0;
    this.decoder.discard();
    this.account();
    this.socket.destroy();
    this.handler?.onClose?.(reason);
  }

  /**
   * The port's unfinished-frame budget is spent and this connection holds the most: its bytes go
   * at once (not after close()'s linger), then it closes with one last frame.
   */
  evict(finalFrame: Buffer): void {
    if (this.disposed) return;
    this.log.debug({ conn: this.id, remote: this.remote, bytes: this.heldBytes }, 'unfinished frame evicted');
    this.decoder.discard();
    // Already closing (its last frame is out): dropping the bytes was all there was to do.
    if (!this.socket.writableEnded) this.close('overload', finalFrame);
    // Closing, it no longer counts what its socket holds either (gone by close()'s linger).
    this.account();
  }

  /** Bytes this connection holds for a frame it has not finished (what the budget counts). */
  get heldBytes(): number {
    return this.decoder.heldBytes + this.socketPartialBytes;
  }

  /**
   * What the socket holds of a message it is assembling (an AssemblingSocket), while its input
   * still matters: a closing connection drops what it reads, and is gone by its linger.
   */
  private get socketPartialBytes(): number {
    if (this.closing || this.disposed) return 0;
    return (this.socket as Duplex & AssemblingSocket).partialBytes ?? 0;
  }

  /** The socket took in a read: its unfinished message's deadline and the budget follow. */
  private notePartial(): void {
    if (this.disposed || this.closing) return;
    this.lastActivityMs = Date.now();
    if (this.socketPartialBytes > 0) {
      if (this.partialSinceMs === 0 && !this.readPaused) this.partialSinceMs = Date.now();
    } else if (this.decoder.pendingBytes === 0) {
      this.partialSinceMs = 0;
    }
    this.account();
  }

  private account(): void {
    const held = this.heldBytes;
    if (held === this.budgeted || this.budget === undefined) return;
    this.budgeted = held;
    this.budget.set(this, held);
  }

  /** Enforces the idle and partial-frame deadlines; called by the listener's sweeper. */
  checkDeadlines(nowMs: number): void {
    if (this.disposed) return;
    const { idleTimeoutMs, partialFrameTimeoutMs } = this.opts;
    if (partialFrameTimeoutMs > 0 && this.partialSinceMs > 0 && nowMs - this.partialSinceMs > partialFrameTimeoutMs) {
      this.log.debug({ conn: this.id, remote: this.remote }, 'partial frame timeout');
      this.dispose('partialFrame');
    } else if (idleTimeoutMs > 0 && nowMs - this.lastActivityMs > idleTimeoutMs) {
      this.log.debug({ conn: this.id, remote: this.remote }, 'idle timeout');
      this.close('idle');
    } else {
      this.handler?.onTick?.(nowMs);
    }
  }

  private pump(): void {
    const handler = this.handler!;
    while (!this.readPaused && !this.disposed) {
      const item = this.decoder.next();
      if (item === undefined) break;
      this.partialSinceMs = 0;
      if (item.kind === 'message') {
        handler.onMessage(item.value);
      } else {
        handler.onFrameError(item);
        if (!item.recoverable) {
          this.close('badFrame');
          break;
        }
      }
    }
    // Bytes left over while we are reading are an unfinished frame: start its deadline.
    if (!this.readPaused && this.partialSinceMs === 0 && (this.decoder.pendingBytes > 0 || this.socketPartialBytes > 0)) {
      this.partialSinceMs = this.lastActivityMs;
    } else if (this.readPaused) {
      this.partialSinceMs = 0;
    }
    // Last: this may evict a connection, this one included.
    this.account();
  }
}
