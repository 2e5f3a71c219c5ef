// The one answer to "what is this seat's live state?" for everything that is not the live model
// itself: seats.list, seats.get and branches.list ask here (docs/architecture.md, "The
// live-state model"). The answer is the live model's, sensors included, once it has loaded and
// knows the seat; before that, or for a seat added since, the caller keeps its bookings-only SQL
// state (liveState.ts), which is the same definition without sensors.
//
// Listings are cached (seatListing.ts), and a sensor changes a seat's state without any booking
// changing: `version` advances with every live change of a branch, so a cached listing can tell
// it is out of date without the booking generation (which the branch rows cache keys on)
// moving under a flood of readings.
import type { Clock } from './clock.js';
import type { LiveSeats } from './liveSeats.js';
import type { LiveState } from './liveState.js';

export interface SeatCounts {
  total: number;
  free: number;
  reserved: number;
  occupied: number;
  unavailable: number;
}

export class LiveView {
  private model: LiveSeats | undefined;
  private readonly versions = new Map<number, number>();
  /** Bumped by every change anywhere: what a listing of all branches keys on. */
  private anyVersion = 0;
  /** Bumped when every seat may have changed at once. */
  private resets = 0;
  private readonly missListeners: Array<() => void> = [];

  constructor(private readonly clock: Clock) {}

  /** The live model, once loaded: from here on every answer is its. */
  attach(model: LiveSeats): void {
    this.model = model;
    this.changedAll();
  }

  /** The model itself, for the live half that keeps it current; undefined until it has loaded. */
  get loadedModel(): LiveSeats | undefined {
    return this.model;
  }

  /** The seat's live state per the model, or undefined: the caller falls back to SQL. */
  stateOf(seatId: number): LiveState | undefined {
    return this.current()?.seat(seatId)?.state;
  }

  /**
   * The model, having first fired what the clock made due (a booking that began, a sensor gone
   * silent): the timer that does so runs up to a second late, and an answer must hold for the
   * moment it is given, as the SQL state does. Nothing due costs one comparison.
   */
  private current(): LiveSeats | undefined {
    this.model?.tick(this.clock.now());
    return this.model;
  }

  /**
   * A branch's seats counted by live state — the one place that counts them — once the model
   * knows the branch with as many seats as the database says (`sqlTotal`); otherwise undefined,
   * and the live half is told to look for what was added (it rate-limits the look).
   */
  counts(branchId: number, sqlTotal?: number): SeatCounts | undefined {
    const model = this.current();
    if (!model) return undefined;
    const seats = model.seatsOf(branchId);
    if (!model.branches.has(branchId) || (sqlTotal !== undefined && sqlTotal !== seats.length)) {
      for (const l of this.missListeners) l();
      return undefined;
    }
    const counts = { total: seats.length, free: 0, reserved: 0, occupied: 0, unavailable: 0 };
    for (const seat of seats) counts[seat.state]++;
    return counts;
  }

  /** Advances whenever a seat of the branch may read differently; null: any branch. */
  version(branchId: number | null): number {
    return branchId === null ? this.anyVersion : (this.versions.get(branchId) ?? 0) + this.resets;
  }

  /** The model changed a seat of the branch (a reading, a booking, another instance's event). */
  changed(branchId: number): void {
    this.versions.set(branchId, (this.versions.get(branchId) ?? 0) + 1);
    this.anyVersion++;
  }

  /** Every seat may read differently (the model loaded, reloaded or grew). */
  changedAll(): void {
    this.resets++;
    this.anyVersion++;
  }

  /** Called when a count was asked of a branch or seat count the model does not know. */
  onMiss(listener: () => void): void {
    this.missListeners.push(listener);
  }
}
