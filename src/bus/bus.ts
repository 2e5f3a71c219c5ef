// The event bus between instances (docs/operations.md, "Redis and several instances"): one
// interface, two implementations — LocalBus (in-process: one instance, or several sharing a
// LocalBroker in tests) and RedisBus (instances sharing a Redis). Both are held to one contract
// suite (test/contract/bus.contract.ts).
//
// What travels:
//   - seat changes, which the bus numbers (one seq per branch across all instances), retains for
//     resuming, and delivers in seq order to every instance, the publisher included;
//   - core facts (reservation changes, seat status, personal events), delivered to every OTHER
//     instance so their live models and personal subscribers stay current.
// A bus also drops a change whose state equals the branch's last published state of that seat,
// so two instances noticing the same boundary (a booking starting) publish it once — but only a
// state published after the publisher started following the branch: its view of the seat came
// from the database before that, and may differ from a state published earlier (docs/redis.md).
// That record of the last published state computes nothing: it is written only by publishSeat,
// from the live models' changes, and is shared by every instance of the numbering (the Redis
// hash; the LocalBroker's map for instances in one process), because no one instance's model can
// know, atomically with the numbering, what another has just published (docs/architecture.md,
// "The live-state model").
//
// What a bus keeps belongs to one database: `start` names its deployment id (migration 012), and
// buses of different deployments share nothing, even on one Redis under one key prefix. The seqs
// a bus hands out belong to a sequence space named by `seqEpoch`; a new space (a new database, a
// Redis that lost its data, an in-process bus after a restart) numbers from its own start, and
// subscribers that resume with an older epoch are told so (docs/redis.md).
import type { CoreEvent } from '../core/events.js';
import type { LiveState, SeatChange, SeatEvent } from '../core/liveSeats.js';

export interface BusHandlers {
  /** A numbered seat event, in seq order per branch; `quiet` = catch-up, apply without telling anyone. */
  seat(ev: SeatEvent, quiet: boolean): void;
  /** A core fact from another instance. */
  fact(ev: CoreEvent): void;
  /**
   * The branch was numbered locally during an outage; adopt the bus's seq and resync subscribers.
   * `published` is every seat's last published state and flags as of `seq` (what every instance
   * that read the whole stream shows), so the view can be made to agree with theirs.
   */
  resync(branchId: number, seq: number, published: ReadonlyMap<number, { state: LiveState; flags: number }>): void;
  /**
   * The current state of the seats this instance's own sensors reported last, to publish again
   * when the bus lost what it held (a Redis restarted without its data).
   */
  ownStates(): SeatChange[];
  /** The bus is back after an outage: facts from other instances may have been missed. */
  reconnected(): void;
}

export interface BusStats {
  kind: 'local' | 'redis';
  connected: boolean;
  published: number;
  delivered: number;
  deduplicated: number;
  /** Events waiting to reach the other instances while the bus is down. */
  queued: number;
  /** Events dropped from that queue because it was full (redis.offlineQueueMax). */
  dropped: number;
  outages: number;
}

/** Where retained seat events come from when a subscriber resumes (the bus numbers and keeps them). */
export interface HistorySource {
  /** Events of a branch after `afterSeq`, oldest first, or null when they are no longer retained. */
  history(branchId: number, afterSeq: number, limit: number): Promise<SeatEvent[] | null>;
}

export interface EventBus extends HistorySource {
  readonly kind: 'local' | 'redis';
  /**
   * The sequence space the seqs delivered now belong to: the same string on every instance of a
   * deployment sharing one backing, a new one whenever the numbering starts over.
   */
  readonly seqEpoch: string;
  /**
   * Connects and returns each branch's current seq; deliveries start after it resolves.
   * `deploymentId`: the database's identity; state of another deployment is never read.
   */
  start(branchIds: number[], handlers: BusHandlers, deploymentId: string): Promise<Map<number, number>>;
  /**
   * Branches added after start (the live model found them in the database): returns each one's
   * current seq; deliveries for them start once it resolves.
   */
  addBranches(branchIds: number[]): Promise<Map<number, number>>;
  /** Fire and forget: never waits, never throws. */
  publishSeat(change: SeatChange): void;
  publishFact(ev: CoreEvent): void;
  stats(): BusStats;
  close(): Promise<void>;
}

/** The key a bus compares to skip a change that repeats the last published state of a seat. */
export function stateKey(change: Pick<SeatChange, 'state' | 'flags'>): string {
  return `${change.state}|${change.flags}`;
}
