// Fair admission to the database pool (docs/fairness.md). pg-pool hands free connections to
// waiters first come, first served, so one client with a hundred pipelined requests held the
// pool while everyone else waited behind it. Requests' database work is admitted here instead:
//
// - every request waits in its own client's queue (the user; without a token, the address);
// - a free connection goes to the next client in round-robin order, never to a client that
//   already holds `perClient` connections (or its ticket's share: the booking queue stands for
//   many users): a hundred requests on one connection take turns with the single request of
//   someone else;
// - queues are bounded: past `queuePerClient` a client's request is refused at once, and past
//   `maxQueued` in all the longest queue gives up its newest request, both RESOURCE_EXHAUSTED
//   with retryAfterMs, instead of everyone's requests timing out together.
//
// Work that is not a request (the lifecycle, the sensor coalescer, the live model's refresh)
// goes to the pool directly; the gate admits at most `slots` requests at once, so that work
// finds the pool with room.
import type { AdmissionGate, AdmissionTicket, ReleaseSlot } from '../deadline.js';
import { CarrelError, ErrorCode } from '../errors.js';

/** The longest retryAfterMs the gate tells a refused request (docs/fairness.md). */
export const MAX_RETRY_AFTER_MS = 2_000;

export interface DbAdmissionOptions {
  /** Requests that may hold a pooled connection at once. */
  slots: number;
  perClient: number;
  queuePerClient: number;
  maxQueued: number;
}

interface Waiter {
  readonly client: ClientState;
  resolve: (release: ReleaseSlot) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface ClientState {
  readonly key: string;
  running: number;
  /** Slots it may hold at once: perClient, or its ticket's share. */
  limit: number;
  readonly waiting: Waiter[];
}

export class DbAdmission implements AdmissionGate {
  private readonly clients = new Map<string, ClientState>();
  /** Clients with a request waiting and room under perClient, in round-robin order. */
  private readonly ready = new Set<ClientState>();
  private free: number;
  private queued = 0;
  /** Recent time a slot is held (ms), for retryAfterMs. */
  private holdMs = 5;
  readonly stats = { admitted: 0, queuedTotal: 0, shed: 0, timedOut: 0 };

  constructor(private readonly opts: DbAdmissionOptions) {
    this.free = opts.slots;
  }

  ticket(client: string, share?: number): AdmissionTicket {
    return share === undefined ? { gate: this, client } : { gate: this, client, share };
  }

  /** Requests waiting now, and clients they belong to (gauges). */
  waiting(): { requests: number; clients: number } {
    let clients = 0;
    for (const c of this.clients.values()) if (c.waiting.length > 0) clients++;
    return { requests: this.queued, clients };
  }

  /** Slots held by requests now. */
  get inUse(): number {
    return this.opts.slots - this.free;
  }

  /**
   * A slot for `client`: at once when one is free and nobody waits, else after its turn, or
   * DEADLINE_EXCEEDED after waitMs. Refuses at once with RESOURCE_EXHAUSTED past the queues.
   */
  acquire(client: string, waitMs: number, share?: number): Promise<ReleaseSlot> {
    let c = this.clients.get(client);
    if (!c) {
      c = { key: client, running: 0, limit: this.opts.perClient, waiting: [] };
      this.clients.set(client, c);
    }
    c.limit = share ?? this.opts.perClient;
    // free > 0 means nobody eligible is waiting (every release serves the ready ring first).
    if (this.free > 0 && c.running < c.limit) return Promise.resolve(this.grant(c));
    if (c.waiting.length >= this.opts.queuePerClient) {
      this.forgetIfIdle(c);
      return Promise.reject(this.shed(c, `at most ${this.opts.queuePerClient} of one client's requests wait for the database`));
    }
    if (this.queued >= this.opts.maxQueued) {
      const longest = this.longestQueue();
      if (!longest || longest.waiting.length <= c.waiting.length) {
        this.forgetIfIdle(c);
        return Promise.reject(this.shed(c, 'the database queue is full'));
      }
      const victim = longest.waiting.pop()!;
      this.dequeued(victim);
      victim.reject(this.shed(longest, 'the database queue is full and this client had the most waiting'));
    }
    const owner = c;
    return new Promise<ReleaseSlot>((resolve, reject) => {
      const waiter: Waiter = {
        client: owner,
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = owner.waiting.indexOf(waiter);
          if (i < 0) return;
          owner.waiting.splice(i, 1);
          this.dequeued(waiter);
          this.stats.timedOut++;
          reject(new CarrelError(ErrorCode.DEADLINE_EXCEEDED, "the request's deadline passed while waiting for a database connection; nothing was changed"));
        }, Math.max(0, waitMs)),
      };
      owner.waiting.push(waiter);
      this.queued++;
      this.stats.queuedTotal++;
      if (owner.running < owner.limit) this.ready.add(owner);
    });
  }

  private grant(c: ClientState): ReleaseSlot {
    c.running++;
    this.free--;
    this.stats.admitted++;
    const since = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holdMs += (performance.now() - since - this.holdMs) / 16;
      c.running--;
      this.free++;
      if (c.waiting.length > 0) this.ready.add(c);
      else this.forgetIfIdle(c);
      this.serve();
    };
  }

  /** Hands free slots to ready clients, one request each per turn of the ring. */
  private serve(): void {
    while (this.free > 0 && this.ready.size > 0) {
      const c: ClientState = this.ready.values().next().value!;
      this.ready.delete(c);
      const w = c.waiting.shift();
      if (!w) continue;
      this.queued--;
      clearTimeout(w.timer);
      w.resolve(this.grant(c));
      // Back of the ring: every other ready client goes before this one's next request.
      if (c.waiting.length > 0 && c.running < c.limit) this.ready.add(c);
    }
  }

  private dequeued(w: Waiter): void {
    clearTimeout(w.timer);
    this.queued--;
    if (w.client.waiting.length === 0) {
      this.ready.delete(w.client);
      this.forgetIfIdle(w.client);
    }
  }

  private forgetIfIdle(c: ClientState): void {
    if (c.running === 0 && c.waiting.length === 0) this.clients.delete(c.key);
  }

  private longestQueue(): ClientState | undefined {
    let best: ClientState | undefined;
    for (const c of this.clients.values()) if (!best || c.waiting.length > best.waiting.length) best = c;
    return best;
  }

  private shed(c: ClientState, why: string): CarrelError {
    this.stats.shed++;
    // About when this client's turn would come with what waits now.
    const ahead = c.waiting.length + 1;
    // Capped: with thousands of clients waiting the estimate ran to minutes (the opening rush saw
    // 22), and a client told to come back that late has lost its turn for nothing; the queues,
    // not the hint, keep the order fair.
    const estimate = Math.ceil((this.holdMs * ahead * Math.max(1, this.ready.size)) / this.opts.slots);
    const retryAfterMs = Math.min(MAX_RETRY_AFTER_MS, Math.max(10, estimate));
    return new CarrelError(ErrorCode.RESOURCE_EXHAUSTED, `${why}; retry in ${retryAfterMs} ms`, { retryAfterMs, limit: 'database' });
  }
}
