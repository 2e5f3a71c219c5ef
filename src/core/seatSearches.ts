// What this instance knows of best-available searches (docs/rules.md, "Booking any free seat"),
// so that the opening rush does not walk a full branch again and again:
//
// - a search — its shape: the branch, the filters and the window — that found no free seat is
//   FULL: the next request of that shape is answered CONFLICT noSeatFree at once, without a
//   round trip to the database;
// - otherwise, where the last walk found its seat: the next walk starts there (carrel_book_batch
//   walks from it to the end, then from the beginning up to it), instead of re-reading every seat
//   booked before.
//
// Both are only as good as the news: anything that frees seat time in a branch — a cancellation, a
// check-out, a no-show, a lapsed or declined offer, a seat back in service — on this instance or,
// through the bus, on another, forgets everything known of that branch at once (a new generation
// of the branch), and a verdict reached by a walk that began before such news is not kept. What
// no event reports (seats added by SQL behind the server's back) is corrected after
// booking.knownFullMs, when a verdict lapses. The table is bounded: booking.knownFullMaxEntries
// shapes, the least recently learnt forgotten first. Forgetting is always safe: it only costs
// the next request of that shape a walk.
import type { CoreEvent } from './events.js';

/** One best-available search: where, which seats, when. */
export interface SearchShape {
  branchId: number;
  area?: string;
  hasPower?: boolean;
  hasMonitor?: boolean;
  startMs: number;
  endMs: number;
}

/** A seat in the walk's order (area, label, id): where a walk starts. */
export interface WalkStart {
  area: string;
  label: string;
  seatId: number;
}

export interface SeatSearchesOptions {
  maxEntries: number;
  /** How long a verdict is kept without news from its branch. */
  keepMs: number;
  now: () => number;
}

interface Entry {
  branchId: number;
  gen: number;
  untilMs: number;
  full: boolean;
  from: WalkStart | null;
}

const FREEING_CAUSES: ReadonlySet<string> = new Set(['reservation.cancelled', 'checkOut', 'noShow', 'completed']);

/** True when ev may have freed seat time in its branch. */
export function freesSeatTime(ev: CoreEvent): boolean {
  if (ev.type === 'reservation') return FREEING_CAUSES.has(ev.cause);
  if (ev.type === 'seatStatus') return ev.status === 'IN_SERVICE';
  return false;
}

export class SeatSearches {
  private readonly entries = new Map<string, Entry>();
  /** Per branch, the number of freeing events seen; a verdict is kept only for the generation it began in. */
  private readonly generations = new Map<number, number>();

  constructor(private readonly opts: SeatSearchesOptions) {}

  /** The table's key of a shape (the filters a client may send are bounded by the method's schema). */
  static key(s: SearchShape): string {
    const flag = (b: boolean | undefined) => (b === undefined ? '' : b ? '1' : '0');
    return `${s.branchId}|${s.startMs}|${s.endMs}|${flag(s.hasPower)}|${flag(s.hasMonitor)}|${s.area ?? ''}`;
  }

  generation(branchId: number): number {
    return this.generations.get(branchId) ?? 0;
  }

  /** True when a walk of this shape found nothing free, and no news since says otherwise. */
  isFull(key: string): boolean {
    const e = this.current(key);
    return e !== undefined && e.full;
  }

  /** Where the next walk of this shape starts; null: at the beginning. */
  walkStart(key: string): WalkStart | null {
    return this.current(key)?.from ?? null;
  }

  /**
   * A walk that began in generation `gen` of the branch found the shape full, or its seat (its
   * next start). Kept only if no news from the branch came since the walk began.
   */
  learn(key: string, branchId: number, gen: number, verdict: { full: true } | { from: WalkStart }): void {
    if (gen !== this.generation(branchId)) return;
    this.entries.delete(key);
    this.entries.set(key, {
      branchId,
      gen,
      untilMs: this.opts.now() + this.opts.keepMs,
      full: 'full' in verdict,
      from: 'from' in verdict ? verdict.from : null,
    });
    while (this.entries.size > this.opts.maxEntries) {
      this.entries.delete(this.entries.keys().next().value!);
    }
  }

  /** A committed change here or on another instance: one that may free seat time forgets the branch. */
  readonly onCoreEvent = (ev: CoreEvent): void => {
    if (!freesSeatTime(ev)) return;
    const branchId = ev.type === 'reservation' ? ev.reservation.branchId : ev.type === 'seatStatus' ? ev.branchId : undefined;
    if (branchId !== undefined) this.generations.set(branchId, this.generation(branchId) + 1);
  };

  /** Shapes remembered now (a gauge; entries of past generations leave as they are met or evicted). */
  get size(): number {
    return this.entries.size;
  }

  private current(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.gen !== this.generation(e.branchId) || e.untilMs <= this.opts.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }
}
