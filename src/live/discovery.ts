// Branches and seats added to the database while the server runs (docs/architecture.md, "The
// live-state model"): found on demand — a subscribe naming an unknown branch, a reading for an
// unknown seat, branch counts that disagree — at most every live.refreshMinIntervalMs, and every
// live.refreshEveryMs. What is found joins the bus, then the model, then the hub, in that order.
import type pg from 'pg';
import type { Logger } from '../obs/log.js';
import type { Clock } from '../core/clock.js';
import type { CoreEvent } from '../core/events.js';
import { LiveSeats } from '../core/liveSeats.js';
import type { LiveView } from '../core/liveView.js';
import type { EventBus } from '../bus/bus.js';
import type { Hub } from '../pubsub/hub.js';

export interface LiveDiscoveryDeps {
  db: pg.Pool;
  clock: Clock;
  bus: EventBus;
  log: Logger;
  /** live.refreshMinIntervalMs: the least time between two looks asked for on demand. */
  minIntervalMs: number;
  /** The model, once loaded (nothing is looked for before). */
  live: LiveView;
  hub: Hub;
  /** Told of every branch whose seats were added to, so listing caches forget it. */
  onBranchChanged?: (branchId: number) => void;
}

export class LiveDiscovery {
  /** Looks made since start (server.stats, tests). */
  looks = 0;
  /** The look under way; and when the last one ended. */
  private running: Promise<void> | undefined;
  private lastEndedMs = -Infinity;
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
    this.looks++;
    this.running = this.addNew()
      .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'could not look for new branches and seats'))
      .finally(() => {
        this.running = undefined;
        this.lastEndedMs = Date.now();
        this.held = [];
      });
    return this.running;
  }

  /**
   * A committed change about to be applied to the model: kept as well when it names a seat the
   * model does not know while a look runs, since that look may be adding the seat.
   */
  holdIfUnknown(ev: CoreEvent, model: LiveSeats): void {
    const seatId = ev.type === 'reservation' ? ev.reservation.seatId : ev.type === 'seatStatus' ? ev.seatId : undefined;
    if (seatId !== undefined && this.running && !model.seat(seatId)) this.held.push(ev);
  }

  /** No new looks; resolves when the one under way has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async addNew(): Promise<void> {
    const { db, clock, bus, log, live, hub } = this.deps;
    const model = live.loadedModel;
    if (!model || this.stopped) return;
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
    if (touched.size > 0) live.changedAll();
    for (const id of touched) {
      const b = model.branches.get(id)!;
      hub.addBranch(id, b.name, seqs.get(id) ?? hub.seqOf(id), model.seatsOf(id), bus.seqEpoch);
      this.deps.onBranchChanged?.(id);
    }
    log.info({ branches: newBranches.length, seats: data.seats.length }, 'live seat model picked up branches and seats added since start');
  }
}
