// A subscriber over /ws/live: one WebSocket message is one subscriber-port frame (docs/protocol.md,
// "Subscriber port"). It subscribes to one branch, keeps the branch's seq and epoch, and when the
// socket closes, the server shuts down, the subscriber is cut off as SLOW_CONSUMER, a seq jumps or
// the link goes quiet, it reconnects by itself and resumes with `since` and `epoch`: the server
// replays what was missed or sends a fresh snapshot. A page may run for days: the only state kept
// is the branch's position, and each socket's listeners go with the socket.
import type { BranchSummaryFrame, PersonalFrame, SeatEventFrame, SnapshotFrame, SubscribedFrame, SubscriberFrame } from '../wire.js';

export type LiveStatus = 'connecting' | 'live' | 'offline';

export interface LiveHandlers {
  /** Replaces everything known of the branch (a first subscribe, a fresh snapshot after a gap or a restart). */
  snapshot(f: SnapshotFrame): void;
  seat(f: SeatEventFrame, receivedAt: number): void;
  branch?(f: BranchSummaryFrame): void;
  personal?(f: PersonalFrame): void;
  subscribed?(f: SubscribedFrame): void;
  status?(s: LiveStatus, why?: string): void;
  /** The subscribe token was refused or expired: personal events stopped (the feed goes on without it). */
  tokenRefused?(): void;
  /** The branch does not exist (the feed keeps trying, slowly: it may be added). */
  notFound?(message: string): void;
}

export interface LiveOptions {
  url: string;
  branch: string;
  token?: string | null;
  handlers: LiveHandlers;
  /** A ping every this often; a link silent for twice this long is taken as dead. */
  pingEveryMs?: number;
  /** Reconnect delays grow from the first to the last, doubling, with jitter. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export class LiveFeed {
  private ws: WebSocket | undefined;
  private position: { branchId: number; seq: number; epoch: string } | undefined;
  private token: string | null;
  private retryMs: number;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private lastHeard = 0;
  /** The socket in hand has been answered `subscribed`. */
  private subscribed = false;
  private stopped = false;
  private readonly pingEveryMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly onOnline = () => this.reconnectNow();

  constructor(private readonly opts: LiveOptions) {
    this.token = opts.token ?? null;
    this.pingEveryMs = opts.pingEveryMs ?? 15_000;
    this.retryMinMs = opts.retryMinMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 5_000;
    this.retryMs = this.retryMinMs;
  }

  start(): void {
    this.stopped = false;
    addEventListener('online', this.onOnline);
    this.pingTimer = setInterval(() => this.heartbeat(), this.pingEveryMs);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    removeEventListener('online', this.onOnline);
    clearInterval(this.pingTimer);
    clearTimeout(this.retryTimer);
    this.drop();
  }

  /** Subscribes again with another token (a login or logout), keeping the position. */
  setToken(token: string | null): void {
    if (token === this.token) return;
    this.token = token;
    this.reconnectNow();
  }

  private connect(): void {
    if (this.stopped) return;
    this.opts.handlers.status?.('connecting');
    const ws = new WebSocket(this.opts.url);
    this.ws = ws;
    this.subscribed = false;
    ws.onopen = () => {
      this.lastHeard = Date.now();
      const sub: Record<string, unknown> = { type: 'subscribe', branch: this.opts.branch };
      if (this.token) sub.token = this.token;
      if (this.position) {
        sub.since = this.position.seq;
        sub.epoch = this.position.epoch;
      }
      ws.send(JSON.stringify(sub));
    };
    ws.onmessage = (ev) => {
      const receivedAt = performance.now();
      this.lastHeard = Date.now();
      if (typeof ev.data !== 'string') return;
      let frame: SubscriberFrame;
      try {
        frame = JSON.parse(ev.data) as SubscriberFrame;
      } catch {
        return;
      }
      this.onFrame(frame, receivedAt);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.drop();
      this.retryLater(ev.reason || 'connection closed');
    };
  }

  private onFrame(frame: SubscriberFrame, receivedAt: number): void {
    const h = this.opts.handlers;
    switch (frame.type) {
      case 'subscribed': {
        this.retryMs = this.retryMinMs;
        this.subscribed = true;
        const b = frame.branches[0];
        // Resumed: the position stands and any missed seat events follow. Otherwise a snapshot follows.
        if (b && this.position && b.resumed) this.position.epoch = b.epoch;
        h.subscribed?.(frame);
        h.status?.('live');
        return;
      }
      case 'snapshot':
        this.position = { branchId: frame.branchId, seq: frame.seq, epoch: frame.epoch };
        h.snapshot(frame);
        return;
      case 'seat': {
        const p = this.position;
        if (!p || p.branchId !== frame.branchId) return;
        if (frame.seq <= p.seq) return; // already applied (a replay overlapping the live stream)
        if (frame.seq !== p.seq + 1) {
          // Events were dropped for this subscriber: resume from the last one applied.
          this.reconnectNow();
          return;
        }
        p.seq = frame.seq;
        h.seat(frame, receivedAt);
        return;
      }
      case 'branch':
        h.branch?.(frame);
        return;
      case 'personal':
        h.personal?.(frame);
        return;
      case 'pong':
        return;
      case 'error':
        switch (frame.code) {
          case 'UNAUTHENTICATED':
            // Either the subscribe was refused (nothing subscribed: subscribe again without it) or
            // the token expired since (personal events stopped, seat events go on).
            this.token = null;
            h.tokenRefused?.();
            if (!this.subscribed) this.reconnectNow();
            return;
          case 'NOT_FOUND':
            h.notFound?.(frame.message);
            this.retryMs = this.retryMaxMs;
            this.drop();
            this.retryLater(frame.message);
            return;
          default:
            // SLOW_CONSUMER and UNAVAILABLE close the connection; onclose reconnects.
            return;
        }
    }
  }

  private heartbeat(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > 2 * this.pingEveryMs) {
      // A link that says nothing to a ping (a sleeping laptop, a dead NAT entry) is dead.
      this.reconnectNow();
      return;
    }
    ws.send('{"type":"ping"}');
  }

  private reconnectNow(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.drop();
    this.connect();
  }

  private retryLater(why: string): void {
    if (this.stopped || this.retryTimer !== undefined) return;
    this.opts.handlers.status?.('offline', why);
    const delay = this.retryMs * (0.75 + Math.random() * 0.5);
    this.retryMs = Math.min(this.retryMaxMs, this.retryMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  /** Forgets the socket: its handlers are cleared so nothing it says later reaches the page. */
  private drop(): void {
    const ws = this.ws;
    this.ws = undefined;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close();
  }
}
