// The listings' answer to "what is this seat's live state?": seats.list, seats.get and
// branches.list ask here (docs/architecture.md, "The live-state model"). Every answer is the live
// model's (LiveSeats), sensors included; the listings keep no live state and compute none. Rows
// the listings read from the database may name a seat or branch added since the model loaded:
// then the model is made to look for what was added (src/live/discovery.ts) before the answer.
//
// Listings are cached (seatListing.ts), and a sensor changes a seat's state without any booking
// changing: `version` advances with every live change of a branch, so a cached listing can tell
// it is out of date without the booking generation (which the branch rows cache keys on)
// moving under a flood of readings.
import { CarrelError, ErrorCode } from '../errors.js';
import type { Clock } from './clock.js';
import { countStates, type LiveSeats, type LiveState } from './liveSeats.js';

import type { SeatCounts } from '../wire/types.js';

export type { SeatCounts };

/** Finds branches and seats added to the database since the model loaded, and adds them to it. */
export interface AddedSeatsFinder {
  /** Take it before reading rows from the database, and pass it to lookAfter. */
  readonly lookMark: number;
  /** Resolves once a look begun after `mark` has ended, starting one if none has. Never rejects. */
  lookAfter(mark: number): Promise<void>;
}

export class LiveView {
  /**
   * `finder`: how the model learns seats added since it loaded; without one (tests of the
   * listings alone) such a seat is UNAVAILABLE.
   */
  constructor(
    private readonly model: LiveSeats,
    private readonly clock: Clock,
    private readonly finder?: AddedSeatsFinder,
  ) {}

  /** Take it before reading rows that may name seats added since start; see known(), countsOf(). */
  get lookMark(): number {
    return this.finder?.lookMark ?? 0;
  }

  /** The seat's live state, or undefined while the model does not know the seat. */
  stateOf(seatId: number): LiveState | undefined {
    return this.current().seat(seatId)?.state;
  }

  /**
   * Resolves when the model knows every one of these seats, read from the database after `mark`:
   * after a look for added seats if it did not (one look, shared, begun after the rows were read).
   * UNAVAILABLE if it still does not (the look failed, or the model has not loaded).
   */
  async known(seatIds: Iterable<number>, mark: number): Promise<void> {
    const unknown = (): number | undefined => {
      for (const id of seatIds) if (!this.model.seat(id)) return id;
      return undefined;
    };
    if (unknown() === undefined) return;
    await this.finder?.lookAfter(mark);
    const still = unknown();
    if (still !== undefined) throw new CarrelError(ErrorCode.UNAVAILABLE, `the live state of seat ${still} is not known yet; try again`);
  }

  /**
   * Each branch's seats counted by live state — countStates, the one function that counts them —
   * for branches read from the database after `mark` with `total` seats there. A branch the model
   * does not know, or with fewer seats than the database counts, makes the model look first.
   * UNAVAILABLE if it still does not know a branch.
   */
  async countsOf(branches: ReadonlyArray<{ id: number; total: number }>, mark: number): Promise<Map<number, SeatCounts>> {
    const behind = () => branches.some((b) => !this.model.branches.has(b.id) || this.model.seatsOf(b.id).length < b.total);
    if (behind()) await this.finder?.lookAfter(mark);
    const out = new Map<number, SeatCounts>();
    for (const b of branches) {
      const counts = this.counts(b.id);
      if (!counts) throw new CarrelError(ErrorCode.UNAVAILABLE, `the live state of branch ${b.id} is not known yet; try again`);
      out.set(b.id, counts);
    }
    return out;
  }

  /** A branch's seats counted by live state, or undefined while the model does not know the branch. */
  counts(branchId: number): SeatCounts | undefined {
    const model = this.current();
    if (!model.branches.has(branchId)) return undefined;
    const { total, free, reserved, occupied, away, unavailable } = countStates(model.seatsOf(branchId));
    return { total, free, reserved, occupied, away, unavailable };
  }

  /** Advances whenever a seat of the branch may read differently; null: any branch. */
  version(branchId: number | null): number {
    return this.model.version(branchId);
  }

  /** Advances when branches or seats are added to the model. */
  get layoutVersion(): number {
    return this.model.layoutVersion;
  }

  /**
   * The model, having first fired what the clock made due (a booking that began, a sensor gone
   * silent): the timer that does so runs up to a second late, and an answer must hold for the
   * moment it is given. Nothing due costs one comparison.
   */
  private current(): LiveSeats {
    this.model.tick(this.clock.now());
    return this.model;
  }
}
