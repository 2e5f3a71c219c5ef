// One subscriber connection on the pubsub port (docs/protocol.md, "Subscriber port") and its
// outbound queue.
//
// The hub hands every subscriber the same encoded Buffer. deliver() writes it straight to the
// socket while the socket keeps up; once the socket holds more than pubsub.highWaterBytes unsent,
// frames go into a fixed ring (pubsub.queueCapacity) that drops its oldest when full. The ring is
// emptied on 'drain'. A subscriber dropping pubsub.maxDrops frames within any pubsub.dropWindowMs
// (a sliding window, dropWindow.ts) gets a final SLOW_CONSUMER error and is cut off. So what one
// subscriber can cost us is bounded by highWaterBytes + one frame + queueCapacity frames, and the
// hub never waits for anyone.
//
// Requests it understands:
//   {"type":"subscribe","branch":"Main Library"|2|"*","token"?:"<jwt>","since"?:41|{"2":41},"epoch"?:"<from subscribed>"}
//     (its fields read by subscribeArgs, src/wire/args.ts: a branch as every method reads one)
//   {"type":"ping"}  → {"type":"pong"}
import type { FrameError } from '../codec/index.js';
import { encodeFrame } from '../codec/index.js';
import type { CloseReason, Connection, ConnectionHandler } from '../net/connection.js';
import type { Logger } from '../obs/log.js';
import { ErrorCode } from '../errors.js';
import { encodeErrorFrame } from '../net/errorFrame.js';
import { subscribeArgs, type SubscribeRequest } from '../wire/args.js';
import { SLOW_CONSUMER } from '../wire/errors.js';
import { DropWindow } from './dropWindow.js';
import { FrameRing } from './ring.js';

export interface SubscriberHost {
  subscribe(sub: Subscriber, req: SubscribeRequest): void;
  remove(sub: Subscriber): void;
  countDrop(sub: Subscriber, firstDrop: boolean): void;
  countSlowConsumer(sub: Subscriber): void;
}

export interface SubscriberOptions {
  queueCapacity: number;
  /** pubsub.highWaterBytes: a turn's frames go out in one write only while they fit under it. */
  highWaterBytes: number;
  maxDrops: number;
  dropWindowMs: number;
  /**
   * How long a cut-off subscriber's socket stays open for the final SLOW_CONSUMER frame, which
   * sits behind up to highWaterBytes of unsent events: a peer that resumes reading within this
   * still learns why it was cut off. Memory stays bounded (the buffer is capped already).
   */
  slowConsumerLingerMs: number;
}

const PONG = encodeFrame({ type: 'pong' });

export class Subscriber implements ConnectionHandler {
  /** What it watches: a branch id, every branch ('all'), or nothing yet. */
  scope: number | 'all' | null = null;
  userId: number | null = null;
  tokenExpMs = 0;
  private ring: FrameRing | undefined;
  /** While a subscribe is being answered, live events queue so they follow the snapshot/replay. */
  private pending = false;
  /** A subscribe was handed to the hub and not refused (it may still be looking the branch up). */
  private subscribing = false;
  private closed = false;
  dropped = 0;
  private recentDrops: DropWindow | undefined;

  constructor(
    readonly conn: Connection,
    private readonly host: SubscriberHost,
    private readonly opts: SubscriberOptions,
    private readonly log: Logger,
  ) {
    conn.start(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Frames waiting in this subscriber's ring. */
  get queued(): number {
    return this.ring?.size ?? 0;
  }

  get queuedBytes(): number {
    return this.ring?.bytes ?? 0;
  }

  onMessage(m: Record<string, unknown>): void {
    if (this.closed) return;
    if (m.type === 'ping') {
      if (!this.conn.send(PONG)) this.conn.pauseReading();
      return;
    }
    if (m.type !== 'subscribe') return this.sendError(ErrorCode.INVALID_REQUEST, 'type must be "subscribe" or "ping"');
    if (this.scope !== null || this.subscribing) return this.sendError(ErrorCode.FAILED_PRECONDITION, 'already subscribed; open another connection for another scope');
    const parsed = subscribeArgs.safeParse(m);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return this.sendError(ErrorCode.INVALID_ARGUMENT, `${issue.path.map(String).join('.') || 'subscribe'}: ${issue.message}`);
    }
    const req = parsed.data;
    this.subscribing = true;
    // The hub may answer later (a branch looked up, history read from Redis): read nothing more
    // until it has, so every frame is still answered in the order it was sent.
    this.conn.pauseReading();
    this.host.subscribe(this, req);
    // Still waiting: the branch is being looked up (no scope yet) or history is being read.
    const waiting = this.subscribing && (this.scope === null || this.pending);
    if (!waiting) this.resumeAfterAnswer();
  }

  /** The hub's answer to a subscribe it cannot serve; the connection may subscribe again. */
  refuse(code: ErrorCode, message: string): void {
    this.subscribing = false;
    this.sendError(code, message);
    this.resumeAfterAnswer();
  }

  private resumeAfterAnswer(): void {
    if (!this.closed && !this.conn.congested) this.conn.resumeReading();
  }

  onFrameError(error: FrameError): void {
    this.sendError(ErrorCode.BAD_FRAME, error.message);
  }

  onDrain(): void {
    this.flush();
    if (!this.conn.congested) this.conn.resumeReading();
  }

  onClose(_reason: CloseReason): void {
    this.closed = true;
    this.ring?.clear();
    this.host.remove(this);
  }

  sendError(code: ErrorCode, message: string): void {
    if (!this.conn.send(encodeErrorFrame('pubsub', { code, message }))) this.conn.pauseReading();
  }

  /**
   * The fan-out path: O(1), never waits. `seq`/`branchId` are remembered only if the frame has
   * to queue (0 for frames that carry no seq: summaries, personal events).
   */
  deliver(frame: Buffer, seq: number, branchId: number): void {
    if (this.closed) return;
    if (!this.pending && (this.ring === undefined || this.ring.size === 0) && !this.conn.congested) {
      this.conn.send(frame);
      return;
    }
    this.ring ??= new FrameRing(this.opts.queueCapacity);
    if (this.ring.push(frame, seq, branchId)) this.onDrop();
  }

  /**
   * The hub's frames of one event-loop turn for one branch, `joined` being them end to end (one
   * Buffer shared by every subscriber). One write when it fits under the high-water mark with
   * nothing queued; otherwise frame by frame as deliver() does, so the socket never holds more
   * than highWaterBytes + one frame.
   */
  deliverTurn(joined: Buffer, frames: readonly Buffer[], seqs: readonly number[], branchId: number): void {
    if (this.closed) return;
    if (!this.pending && (this.ring === undefined || this.ring.size === 0) && this.conn.bufferedBytes + joined.length <= this.opts.highWaterBytes) {
      // One buffer this turn: written now (no cork, no nextTick), so the hub can time it.
      this.conn.sendNow(joined);
      return;
    }
    for (let i = 0; i < frames.length; i++) this.deliver(frames[i]!, seqs[i]!, branchId);
  }

  /** Writes now, ahead of anything queued (the answer to subscribe, while pending). */
  sendNow(frame: Buffer): void {
    if (!this.closed) this.conn.send(frame);
  }

  beginPending(): void {
    this.pending = true;
  }

  /** The subscribe answer is out: queued live events follow, minus those it already covered. */
  endPending(watermarks: ReadonlyMap<number, number>): void {
    this.pending = false;
    const ring = this.ring;
    if (ring && ring.size > 0 && watermarks.size > 0) {
      // Drop queued events the snapshot or replay already reflected (seq ≤ its watermark).
      const keep: Array<[Buffer, number, number]> = [];
      while (ring.size > 0) {
        const seq = ring.peekSeq();
        const branch = ring.peekBranch();
        const frame = ring.shift()!;
        const mark = watermarks.get(branch);
        if (seq === 0 || mark === undefined || seq > mark) keep.push([frame, seq, branch]);
      }
      for (const [f, s, b] of keep) ring.push(f, s, b);
    }
    this.flush();
    this.resumeAfterAnswer();
  }

  /** Sends one last frame after what is queued, then closes (shutdown). */
  finish(frame: Buffer): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.conn.close('shutdown', frame);
  }

  private flush(): void {
    const ring = this.ring;
    if (!ring || this.pending) return;
    while (ring.size > 0 && !this.conn.congested && !this.closed) this.conn.send(ring.shift()!);
  }

  private onDrop(): void {
    this.dropped++;
    this.recentDrops ??= new DropWindow(this.opts.dropWindowMs);
    const recent = this.recentDrops.add(Date.now());
    this.host.countDrop(this, this.dropped === 1);
    if (recent >= this.opts.maxDrops) this.cutOff();
  }

  private cutOff(): void {
    this.closed = true;
    this.ring?.clear();
    this.host.countSlowConsumer(this);
    this.log.warn({ conn: this.conn.id, remote: this.conn.remote, dropped: this.dropped }, 'slow subscriber cut off');
    // docs/protocol.md ("Slow consumers") names this code on the subscriber port; it is not one of
    // the RPC codes.
    this.conn.close(
      'server',
      encodeErrorFrame('pubsub', {
        code: SLOW_CONSUMER,
        message: `dropped ${this.opts.maxDrops} events within ${this.opts.dropWindowMs} ms; reconnect with since to resume`,
      }),
      this.opts.slowConsumerLingerMs,
    );
    this.host.remove(this);
  }
}
