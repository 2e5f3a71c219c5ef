// One Connection owns one socket (STYLE §2): the 'error' listener first, framing through the
// pure decoder, read pause/resume for back-pressure, a persistent 'drain' listener, the idle and
// partial-frame deadlines, and one idempotent dispose(). Sessions (RPC, sensor, subscriber)
// take a Connection, so their tests can run over stream.duplexPair() without a port.
import type { Duplex } from 'node:stream';
import { FrameDecoder, type FrameError } from '../codec/index.js';
import type { Logger } from '../obs/log.js';

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

export type CloseReason = 'peer' | 'idle' | 'partialFrame' | 'badFrame' | 'server' | 'error' | 'shutdown';

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

let nextId = 1;

export class Connection {
  readonly id = nextId++;
  readonly remote: string;
  private readonly decoder: FrameDecoder;
  private handler: ConnectionHandler | undefined;
  private readPaused = false;
  private corked = false;
  private disposed = false;
  private closeReason: CloseReason = 'peer';
  private lastActivityMs: number;
  private partialSinceMs = 0;

  constructor(
    readonly socket: Duplex,
    private readonly opts: ConnectionOptions,
    private readonly log: Logger,
  ) {
    // The error listener goes first: one reset peer must never become an uncaught exception.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.log.debug({ conn: this.id, err: err.code ?? err.message }, 'socket error');
      this.dispose('error');
    });
    const s = socket as Duplex & { remoteAddress?: string; remotePort?: number };
    this.remote = s.remoteAddress ? `${s.remoteAddress}:${s.remotePort}` : 'local';
    this.decoder = new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes, maxDepth: opts.maxJsonDepth });
    this.lastActivityMs = Date.now();
    socket.on('close', () => this.dispose(this.closeReason));
    socket.on('end', () => {
      // The peer finished sending; let queued replies go out, then close our side.
      if (!this.disposed) socket.end();
    });
    socket.on('drain', () => this.handler?.onDrain?.());
  }

  /** Attaches the session and starts reading. */
  start(handler: ConnectionHandler): void {
    this.handler = handler;
    this.socket.on('data', (chunk: Buffer) => {
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
    return this.socket.writableLength;
  }

  /**
   * Queues one encoded frame. Writes made in the same tick are corked together so pipelined
   * replies leave in one writev. Returns false when the connection is now congested.
   */
  send(frame: Buffer): boolean {
    if (this.disposed) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(frame);
    return !this.congested;
  }

  private readonly uncork = (): void => {
    this.corked = false;
    if (!this.disposed) this.socket.uncork();
  };

  /** Stops taking messages off the wire: TCP back-pressure reaches the peer. */
  pauseReading(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.readPaused || this.disposed) return;
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
    if (this.disposed) return;
    this.closeReason = reason;
    this.pauseReading();
    if (finalFrame) this.socket.write(finalFrame);
    this.socket.end();
    const t = setTimeout(() => this.dispose(reason), lingerMs);
    t.unref();
  }

  dispose(reason: CloseReason = 'server'): void {
    if (this.disposed) return;
    this.disposed = true;
    this.closeReason = reason;
    this.socket.destroy();
    this.handler?.onClose?.(reason);
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
          return;
        }
      }
    }
    // Bytes left over while we are reading are an unfinished frame: start its deadline.
    if (!this.readPaused && this.partialSinceMs === 0 && this.decoder.pendingBytes > 0) {
      this.partialSinceMs = this.lastActivityMs;
    } else if (this.readPaused) {
      this.partialSinceMs = 0;
    }
  }
}
