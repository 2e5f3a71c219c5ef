// What this instance knows a user holds (docs/fairness.md, "The opening rush"): the bookings it
// made lately, so that a further booking of an overlapping time — a script pipelining the same
// create two thousand times, a double click — is answered FAILED_PRECONDITION overlapsOwnBooking
// (rules.oneSeatAtATime) at once, without a round trip to the database.
//
// Like SeatSearches, it is only as good as the news: a booking is forgotten as soon as any change
// of it is heard — here or, through the bus, from another instance — that leaves it neither
// CONFIRMED nor CHECKED_IN (a cancel, a check-out, a no-show, completion), and every booking after
// booking.knownFullMs without news. The table is bounded (booking.knownFullMaxEntries users, the
// least recently booked forgotten first). Forgetting is always safe: it only costs the next
// booking of that user a round trip, where carrel_user_rules decides as before.
import type { CoreEvent } from './events.js';

export interface OwnBooking {
  id: number;
  startMs: number;
  endMs: number;
}

interface Held extends OwnBooking {
  untilMs: number;
}

/** A user remembers at most this many bookings (one seat at a time: an overlap needs only one). */
const PER_USER = 4;

export class OwnBookings {
  private readonly users = new Map<number, Held[]>();

  constructor(private readonly opts: { maxEntries: number; keepMs: number; now: () => number }) {}

  /** A booking made (or found by its key) for the user. */
  remember(userId: number, b: OwnBooking): void {
    const untilMs = this.opts.now() + this.opts.keepMs;
    const held = (this.users.get(userId) ?? []).filter((h) => h.id !== b.id && h.untilMs > this.opts.now());
    held.push({ ...b, untilMs });
    if (held.length > PER_USER) held.shift();
    this.users.delete(userId);
    this.users.set(userId, held);
    while (this.users.size > this.opts.maxEntries) this.users.delete(this.users.keys().next().value!);
  }

  /** One of the user's remembered bookings whose time overlaps [startMs, endMs), if any. */
  overlapping(userId: number, startMs: number, endMs: number): OwnBooking | undefined {
    const held = this.users.get(userId);
    if (!held) return undefined;
    const now = this.opts.now();
    return held.find((h) => h.untilMs > now && h.startMs < endMs && startMs < h.endMs);
  }

  /** Any change of a remembered booking that leaves it not holding forgets it. */
  readonly onCoreEvent = (ev: CoreEvent): void => {
    if (ev.type !== 'reservation') return;
    const r = ev.reservation;
    const held = this.users.get(r.userId);
    if (!held || (r.status === 'CONFIRMED' || r.status === 'CHECKED_IN')) return;
    const left = held.filter((h) => h.id !== r.id);
    if (left.length === 0) this.users.delete(r.userId);
    else this.users.set(r.userId, left);
  };

  /** Users remembered now (a gauge). */
  get size(): number {
    return this.users.size;
  }
}
