// One RPC connection (docs/protocol.md, "Pipelining, ordering and back-pressure"): pipelined
// requests, replies in completion order matched by rpcId, at most limits.maxInFlightPerConnection
// in flight. Past that bound, or while the peer is not reading its replies, the session stops
// reading the socket (TCP back-pressure) instead of buffering or dropping requests.
import type { FrameError } from '../codec/index.js';
import type { CloseReason, Connection, ConnectionHandler } from '../net/connection.js';
import { ErrorCode } from '../errors.js';
import { encodeErrorFrame } from '../net/errorFrame.js';
import type { CallerState, Dispatcher, RpcId } from './dispatch.js';

export interface RpcSessionOptions {
  maxInFlight: number;
  requestTimeoutMs: number;
  /** Told when a session's last in-flight request finishes (for graceful shutdown). */
  onIdle?: () => void;
  onClose?: (session: RpcSession) => void;
  /** Told of each undecodable frame (metrics: BAD_FRAME never reaches the dispatcher). */
  onBadFrame?: () => void;
}

interface Pending {
  rpcId: RpcId;
  method: string;
  deadlineMs: number;
}

export class RpcSession implements ConnectionHandler {
  private readonly caller: CallerState = { user: null, userExpMs: 0 };
  /** Async requests still running, for deadlines; sync ones never enter it. */
  private readonly pending = new Set<Pending>();
  private inFlight = 0;
  /** Set by drain(): reading never resumes again. */
  private draining = false;
  /** Running while the connection is left unread after a refusal (caller.quietUntilMs). */
  private quietTimer: NodeJS.Timeout | undefined;
  /** Requests waiting behind their user's booking in flight (MethodContext.holdReading): none is read meanwhile. */
  private held = 0;

  constructor(
    readonly conn: Connection,
    private readonly dispatcher: Dispatcher,
    private readonly opts: RpcSessionOptions,
  ) {
    this.caller.remoteAddress = (conn.socket as { remoteAddress?: string }).remoteAddress ?? 'local';
    this.caller.hold = (until) => this.hold(until);
    this.caller.quiet = () => this.keepQuiet();
    conn.start(this);
  }

  get inFlightCount(): number {
    return this.inFlight;
  }

  /**
   * Graceful shutdown (docs/operations.md, "Running as a service"): read no further request, ever;
   * those in flight finish and their replies are sent. Without this, each finished request resumed
   * reading, so a busy connection kept feeding new requests in until the grace ran out.
   */
  drain(): void {
    this.draining = true;
    this.conn.pauseReading();
  }

  onMessage(message: Record<string, unknown>): void {
    const now = Date.now();
    const reply = this.dispatcher.dispatch(message, this.caller, now);
    if (!(reply instanceof Promise)) {
      if (!this.conn.send(reply)) this.conn.pauseReading();
      if (this.caller.quietUntilMs !== undefined) this.keepQuiet();
      return;
    }
    this.inFlight++;
    const entry: Pending = {
      rpcId: (message.rpcId as RpcId) ?? null,
      method: typeof message.method === 'string' ? message.method : '',
      deadlineMs: now + this.opts.requestTimeoutMs,
    };
    this.pending.add(entry);
    if (this.inFlight >= this.opts.maxInFlight || this.conn.congested) this.conn.pauseReading();
    void reply.then((frame) => {
      // A reply that already went out as DEADLINE_EXCEEDED is not sent twice.
      if (this.pending.delete(entry)) this.conn.send(frame);
      if (this.caller.quietUntilMs !== undefined) this.keepQuiet();
      this.finished();
    });
  }

  /**
   * A refusal asked the peer to wait (RESOURCE_EXHAUSTED, retryAfterMs): read nothing from it
   * until then. Requests already read are answered; the rest wait in the socket, where TCP
   * back-pressure holds the peer (docs/fairness.md).
   */
  private keepQuiet(): void {
    const until = this.caller.quietUntilMs;
    // Already over (a reply that finished after the time, before the timer ran): nothing to keep.
    if (until === undefined || until <= Date.now()) {
      this.caller.quietUntilMs = undefined;
      return;
    }
    this.conn.pauseReading();
    if (this.quietTimer || this.conn.isDisposed) return;
    this.quietTimer = setTimeout(() => {
      this.quietTimer = undefined;
      // A later refusal may have moved the time on: wait for that one too.
      this.keepQuiet();
      if (!this.quietTimer) this.maybeResume();
    }, until - Date.now());
  }


  private hold(until: Promise<unknown>): void {
    this.held++;
    this.conn.pauseReading();
    const release = (): void => {
      this.held--;
      this.maybeResume();
    };
    until.then(release, release);
  }

  onFrameError(error: FrameError): void {
    this.opts.onBadFrame?.();
    // Four zero bytes earn a reply of a hundred: a peer that floods bad frames and never reads
    // must meet the same back-pressure as one sending requests (it grew RSS 79 → 804 MB in 15 s).
    if (!this.conn.send(encodeErrorFrame('rpc', { code: ErrorCode.BAD_FRAME, message: error.message }, null))) this.conn.pauseReading();
  }

  onDrain(): void {
    this.maybeResume();
  }

  onTick(nowMs: number): void {
    for (const entry of this.pending) {
      if (entry.deadlineMs <= nowMs) {
        this.pending.delete(entry);
        this.conn.send(this.dispatcher.deadlineExceeded(entry.rpcId, entry.method));
      }
    }
  }

  onClose(_reason: CloseReason): void {
    this.pending.clear();
    this.dispatcher.forget(this.caller);
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    this.opts.onClose?.(this);
  }

  private finished(): void {
    this.inFlight--;
    this.maybeResume();
    if (this.inFlight === 0) this.opts.onIdle?.();
  }

  private maybeResume(): void {
    if (!this.draining && !this.quietTimer && this.held === 0 && this.inFlight < this.opts.maxInFlight && !this.conn.congested) this.conn.resumeReading();
  }
}
