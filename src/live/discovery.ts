// Branches and seats added to the database while the server runs (docs/architecture.md, "The
// live-state model"): found on demand — a subscribe naming an unknown branch, a reading for an
// unknown seat — at most every live.refreshMinIntervalMs; when a listing read rows naming seats
// or branches the model does not know (one look begun after the rows were read, shared); and every
// live.refreshEveryMs. What is found joins the bus, then the model, then the hub, in that order.
import type { Db } from '../db/db.js';
import type { Logger } from '../obs/log.js';
import type { Clock } from '../core/clock.js';
import type { CoreEvent } from '../core/events.js';
import { LiveSeats } from '../core/liveSeats.js';
import type { AddedSeatsFinder } from '../core/liveView.js';
import type { EventBus } from '../bus/bus.js';
import type { Hub } from '../pubsub/hub.js';
import type { Subscriber, SubscriberHost } from '../pubsub/subscriber.js';
import type { SubscribeRequest } from '../wire/args.js';

export interface LiveDiscoveryDeps {
  db: Db;
  clock: Clock;
  bus: EventBus;
  log: Logger;
  /** live.refreshMinIntervalMs: the least time between two looks asked for on demand. */
  minIntervalMs: number;
  /** The live model: what it knows is what is not looked for (nothing is, before it has loaded). */
  model: LiveSeats;
  /** Told of the branches found, and of known branches that gained seats. */
  hub: Hub;
}

export class LiveDiscovery implements AddedSeatsFinder {
  /** Looks begun since start (server.stats, tests); the latest one's number. */
  looks = 0;
  /** The look under way and its number; when the last one ended, and its number. */
  private running: Promise<void> | undefined;
  private runningLook = 0;
  private lastEndedMs = -Infinity;
  private lastEndedLook = 0;
  /** Core events about seats the model does not know yet, kept while a look may be adding them. */
  private held: CoreEvent[] = [];
  private stopped = false;

  constructor(private readonly deps: LiveDiscoveryDeps) {}

  /** A look on demand: at most once per minIntervalMs, sharing one under way. Never rejects. */
  discover(): Promise<void> {
    if (this.running) return this.running;
    if (Date.now() - this.lastEndedMs < this.deps.minIntervalMs) return Promise.resolve();
    return this.refresh();
  }

  /** A look now (the live.refreshEveryMs timer, tests). Never rejects. */
  refresh(): Promise<void> {
    if (this.running) return this.running;
    const look = ++this.looks;
    this.runningLook = look;
    this.running = this.addNew()
      .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'could not look for new branches and seats'))
      .finally(() => {
        this.running = undefined;
        this.lastEndedMs = Date.now();
        this.lastEndedLook = look;
        this.held = [];
      });
    return this.running;
  }

  /** The number of the latest look begun: rows read after it may name what only a later look finds. */
  get lookMark(): number {
    return this.looks;
  }

  /**
   * Resolves once a look begun after `mark` has ended, starting one if none has (not rate-limited:
   * the rows that ask name seats that exist, and a look begun after they were read finds them, so
   * a listing costs at most one look). Never rejects.
   */
  lookAfter(mark: number): Promise<void> {
    if (this.lastEndedLook > mark) return Promise.resolve();
    if (this.running && this.runningLook > mark) return this.running;
    if (this.running) return this.running.then(() => this.lookAfter(mark));
    return this.refresh();
  }

  /**
   * A committed change about to be applied to the model: kept as well when it names a seat the
   * model does not know while a look runs, since that look may be adding the seat.
   */
  holdIfUnknown(ev: CoreEvent): void {
    const seatId = ev.type === 'reservation' ? ev.reservation.seatId : ev.type === 'seatStatus' ? ev.seatId : undefined;
    if (seatId !== undefined && this.running && !this.deps.model.seat(seatId)) this.held.push(ev);
  }

  /** No new looks; resolves when the one under way has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async addNew(): Promise<void> {
    const { db, clock, bus, log, model, hub } = this.deps;
    if (!model.loaded || this.stopped) return;
    const data = await LiveSeats.loadAdded(db, clock.now(), model);
    if (!data || this.stopped) return;
    const newBranches = data.branches.map((b) => b.id);
    // The bus first: from here on it delivers their events, and the lines below run in the same
    // turn, so none can arrive before the model and the hub know the branch.
    const seqs = newBranches.length > 0 ? await bus.addBranches(newBranches) : new Map<number, number>();
    if (this.stopped) return;
    const now = clock.now();
    const touched = model.add(data, now);
    // Bookings committed between the load and now, for the seats just added.
    for (const ev of this.held) model.applyCoreEvent(ev, now);
    for (const id of touched) hub.addBranch(id, model.branches.get(id)!.name, seqs.get(id) ?? hub.seqOf(id), bus.seqEpoch);
    log.info({ branches: newBranches.length, seats: data.seats.length }, 'live seat model picked up branches and seats added since start');
  }
}

/**
 * The subscriber port's host: the hub, except that a subscribe naming a branch the hub does not
 * know looks for added branches first (`carrel db seed` on a running server), rate-limited by
 * LiveDiscovery.discover, and is answered after.
 */
export class LookingHub implements SubscriberHost {
  constructor(
    private readonly hub: Hub,
    private readonly discovery: LiveDiscovery,
  ) {}

  subscribe(sub: Subscriber, req: SubscribeRequest): void {
    if (this.hub.knows(req.branch)) return this.hub.subscribe(sub, req);
    void this.discovery.discover().then(() => {
      if (!sub.isClosed) this.hub.subscribe(sub, req);
    });
  }

  remove(sub: Subscriber): void {
    this.hub.remove(sub);
  }

  countDrop(sub: Subscriber, firstDrop: boolean): void {
    this.hub.countDrop(sub, firstDrop);
  }

  countSlowConsumer(sub: Subscriber): void {
    this.hub.countSlowConsumer(sub);
  }
}
