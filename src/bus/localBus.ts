// The in-process bus: what a single instance needs, with no Redis. Several LocalBus instances may
// share one LocalBroker (two servers in one test process), which numbers every branch once and
// delivers to all of them synchronously, exactly like instances sharing a Redis.
import type { CoreEvent } from '../core/events.js';
import type { SeatChange, SeatEvent } from '../core/liveSeats.js';
import { stateKey, type BusHandlers, type BusStats, type EventBus } from './bus.js';

interface BranchLog {
  seq: number;
  /** The retained events, oldest first; at most `retain`. */
  events: SeatEvent[];
  head: number;
  last: Map<number, string>;
}

export class LocalBroker {
  private readonly branches = new Map<number, BranchLog>();
  readonly members = new Set<LocalBus>();

  constructor(readonly retain: number = 1000) {}

  log(branchId: number): BranchLog {
    let b = this.branches.get(branchId);
    if (!b) this.branches.set(branchId, (b = { seq: 0, events: [], head: 0, last: new Map() }));
    return b;
  }
}

export class LocalBus implements EventBus {
  readonly kind = 'local' as const;
  private handlers: BusHandlers | undefined;
  private readonly counters = { published: 0, delivered: 0, deduplicated: 0 };

  constructor(
    private readonly broker: LocalBroker = new LocalBroker(),
    private readonly instanceId: string = 'local',
  ) {}

  async start(branchIds: number[], handlers: BusHandlers): Promise<Map<number, number>> {
    this.handlers = handlers;
    this.broker.members.add(this);
    return new Map(branchIds.map((id) => [id, this.broker.log(id).seq]));
  }

  async addBranches(branchIds: number[]): Promise<Map<number, number>> {
    return new Map(branchIds.map((id) => [id, this.broker.log(id).seq]));
  }

  publishSeat(change: SeatChange): void {
    const log = this.broker.log(change.branchId);
    const key = stateKey(change);
    if (log.last.get(change.seatId) === key) {
      this.counters.deduplicated++;
      return;
    }
    log.last.set(change.seatId, key);
    const ev: SeatEvent = { ...change, seq: ++log.seq, publishedAtMs: change.publishedAtMs ?? Date.now() };
    if (log.events.length - log.head >= this.broker.retain) log.head++;
    log.events.push(ev);
    // Compact now and then so the array does not grow with the head.
    if (log.head > this.broker.retain) {
      log.events = log.events.slice(log.head);
      log.head = 0;
    }
    this.counters.published++;
    for (const member of this.broker.members) member.deliver(ev);
  }

  publishFact(ev: CoreEvent): void {
    for (const member of this.broker.members) if (member !== this) member.handlers?.fact(ev);
  }

  async history(branchId: number, afterSeq: number, limit: number): Promise<SeatEvent[] | null> {
    const log = this.broker.log(branchId);
    const out: SeatEvent[] = [];
    for (let i = log.head; i < log.events.length && out.length < limit; i++) {
      const ev = log.events[i]!;
      if (ev.seq > afterSeq) out.push(ev);
    }
    if (afterSeq < log.seq && (out.length === 0 || out[0]!.seq !== afterSeq + 1)) return null;
    return out;
  }

  stats(): BusStats {
    return { kind: 'local', connected: true, ...this.counters, queued: 0, dropped: 0, outages: 0 };
  }

  async close(): Promise<void> {
    this.broker.members.delete(this);
    this.handlers = undefined;
  }

  private deliver(ev: SeatEvent): void {
    if (!this.handlers) return;
    this.counters.delivered++;
    this.handlers.seat(ev, false);
  }

  toString(): string {
    return `LocalBus(${this.instanceId})`;
  }
}
