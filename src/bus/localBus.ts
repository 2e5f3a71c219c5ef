// The in-process bus: what a single instance needs, with no Redis. Several LocalBus instances may
// share one LocalBroker (two servers in one test process), which numbers every branch once and
// delivers to all of them synchronously, exactly like instances sharing a Redis. A broker keeps
// each deployment's branches apart, as Redis keys do, and is born with the process: a restarted
// instance numbers from 0 again, in a sequence space of a new epoch (docs/redis.md).
import { randomBytes } from 'node:crypto';
import type { CoreEvent } from '../core/events.js';
import type { SeatChange, SeatEvent } from '../core/liveSeats.js';
import { stateKey, type BusHandlers, type BusStats, type EventBus } from './bus.js';

interface BranchLog {
  seq: number;
  /** The retained events, oldest first; at most `retain`. */
  events: SeatEvent[];
  head: number;
  /** Per seat: the last published state and the seq it was published at (the dedup's record, see bus.ts). */
  last: Map<number, { key: string; seq: number }>;
}

/** One deployment's numbering, history and members. */
interface Space {
  readonly epoch: string;
  readonly branches: Map<number, BranchLog>;
  readonly members: Set<LocalBus>;
}

export class LocalBroker {
  private readonly spaces = new Map<string, Space>();

  constructor(readonly retain: number = 1000) {}

  space(deploymentId: string): Space {
    let s = this.spaces.get(deploymentId);
    if (!s) this.spaces.set(deploymentId, (s = { epoch: `local-${randomBytes(8).toString('hex')}`, branches: new Map(), members: new Set() }));
    return s;
  }
}

function logOf(space: Space, branchId: number): BranchLog {
  let b = space.branches.get(branchId);
  if (!b) space.branches.set(branchId, (b = { seq: 0, events: [], head: 0, last: new Map() }));
  return b;
}

export class LocalBus implements EventBus {
  readonly kind = 'local' as const;
  private handlers: BusHandlers | undefined;
  private space: Space | undefined;
  /** Per branch, the seq this instance started following it at (its view of earlier states came from the database). */
  private readonly viewSince = new Map<number, number>();
  private readonly counters = { published: 0, delivered: 0, deduplicated: 0 };

  constructor(
    private readonly broker: LocalBroker = new LocalBroker(),
    private readonly instanceId: string = 'local',
  ) {}

  get seqEpoch(): string {
    return this.joined().epoch;
  }

  async start(branchIds: number[], handlers: BusHandlers, deploymentId: string): Promise<Map<number, number>> {
    this.handlers = handlers;
    this.space = this.broker.space(deploymentId);
    this.space.members.add(this);
    return this.follow(branchIds);
  }

  async addBranches(branchIds: number[]): Promise<Map<number, number>> {
    const seqs = this.follow(branchIds.filter((id) => !this.viewSince.has(id)));
    for (const id of branchIds) if (!seqs.has(id)) seqs.set(id, logOf(this.joined(), id).seq);
    return seqs;
  }

  publishSeat(change: SeatChange): void {
    const space = this.joined();
    const log = logOf(space, change.branchId);
    const key = stateKey(change);
    const last = log.last.get(change.seatId);
    if (last?.key === key && last.seq > (this.viewSince.get(change.branchId) ?? 0)) {
      this.counters.deduplicated++;
      return;
    }
    const ev: SeatEvent = { ...change, seq: ++log.seq, publishedAtMs: change.publishedAtMs ?? Date.now() };
    log.last.set(change.seatId, { key, seq: ev.seq });
    if (log.events.length - log.head >= this.broker.retain) log.head++;
    log.events.push(ev);
    // Compact now and then so the array does not grow with the head.
    if (log.head > this.broker.retain) {
      log.events = log.events.slice(log.head);
      log.head = 0;
    }
    this.counters.published++;
    for (const member of space.members) member.deliver(ev);
  }

  publishFact(ev: CoreEvent): void {
    for (const member of this.joined().members) if (member !== this) member.handlers?.fact(ev);
  }

  async history(branchId: number, afterSeq: number, limit: number): Promise<SeatEvent[] | null> {
    const log = logOf(this.joined(), branchId);
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
    this.space?.members.delete(this);
    this.handlers = undefined;
  }

  private follow(branchIds: number[]): Map<number, number> {
    const space = this.joined();
    const seqs = new Map<number, number>();
    for (const id of branchIds) {
      const seq = logOf(space, id).seq;
      seqs.set(id, seq);
      this.viewSince.set(id, seq);
    }
    return seqs;
  }

  private joined(): Space {
    if (!this.space) throw new Error('LocalBus used before start()');
    return this.space;
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
