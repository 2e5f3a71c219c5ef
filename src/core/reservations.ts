// Booking and the reservation lifecycle driven by people and sensors (docs/rules.md; the
// invariants kept here: docs/architecture.md, "Invariants and where they are enforced").
//
// - No double booking: a booking is an INSERT that the exclusion constraint on `hold` accepts
//   or refuses (a clash with the interval the constraint names, which is CONFLICT, or the padding
//   rule when only a cleaning buffer is in the way: bufferClash.ts). Node never reads-then-writes a
//   seat's bookings; the constraint decides every clash.
// - Every booking goes through the booking queue (bookingQueue.ts): the bookings waiting when a
//   database connection is free go together in one statement, carrel_book_batch
//   (db/functions/carrel_book_batch.sql), each in a subtransaction of its own. For each, under a
//   per-user advisory lock (tried: held elsewhere means the same user's other booking is in
//   flight), it checks the idempotency key and the rules that read the user's other rows (one seat
//   at a time, the active limit, the quotas: carrel_user_rules), then tries the seat's lock and
//   inserts. Why a lock and not one INSERT … SELECT … WHERE count < n: under READ COMMITTED two
//   such statements for the same user each see a snapshot without the other's uncommitted row, so
//   both would pass. The function's statements each take a fresh snapshot, so the checks after the
//   lock see whatever the previous holder committed. docs/architecture.md, "Lock order", says why
//   batches cannot deadlock.
// - Best-available (no seatId): the batch walks the branch's matching seats in a stable order
//   and books the first it can lock that is free; where the walk found its seat, and which
//   searches found nothing free, is remembered (seatSearches.ts), so a full branch is answered
//   CONFLICT noSeatFree without a round trip until something frees seat time in it.
// - A user has at most one booking in flight on this instance (inFlight); a further one waits
//   behind it, and its connection is not read meanwhile (docs/fairness.md, "The opening rush").
//   Bookings this instance made lately are remembered (ownBookings.ts): an overlapping one is
//   overlapsOwnBooking without a round trip.
// - Every transition is one guarded UPDATE … WHERE id AND user AND status = … RETURNING, so two
//   racing transitions cannot both win; the loser is told why (FAILED_PRECONDITION with
//   details.rule) or NOT_FOUND when the reservation is not theirs. Sensors use the same guards
//   through checkInBySensor / releaseBySensor.
// - A cancel before the start costs nothing. A cancel after the start (not checked in) ends
//   the booking as NO_SHOW for the part that has passed, through the slot under way, and frees
//   the rest (docs/rules.md, "Cancelling"): when it cost nothing, cancelling a started booking
//   and booking again from the same slot start held a seat without touching the quotas, again
//   and again. That part counts toward the quotas as a no-show does.
// - A token whose account is gone is UNAUTHENTICATED here too: a booking's INSERT trips the
//   user_id foreign key (db/errors.ts); "not found" and an empty list ask the users table
//   (accountCheck.ts), only on those outcomes.
// - Time comes from the injected Clock; events go out on the CoreEventSink after commit.
// - Methods called for an RPC request take its Deadline and hand it to Db (db/db.ts): every wait
//   for a pooled connection ends there, and the booking's lock waits too, so a request the client
//   was told DEADLINE_EXCEEDED about does not go on to book.
import { CarrelError, ErrorCode } from '../errors.js';
import type { Config } from '../config/schema.js';
import type { Db } from '../db/db.js';
import { DbConflict, accountGone, overlapConflict } from '../db/errors.js';
import type { Deadline } from '../deadline.js';
import type { BranchRef } from '../wire/branchRef.js';
import type { Logger } from '../obs/log.js';
import type { Clock } from './clock.js';
import { ACTIVE_STATUSES_SQL, type CoreEvent, type CoreEventSink, type ReservationEvent, type ReservationFact } from './events.js';
import { BookingQueue, type SeatSearch } from './bookingQueue.js';
import { SeatSearches } from './seatSearches.js';
import { OwnBookings } from './ownBookings.js';
import {
  RESERVATION_COLUMNS,
  reservationToFact,
  reservationToWire,
  returningColumnsFor,
  type ReservationRow,
  type ReservationWire,
} from './reservationRow.js';
import { Rule, bookingOpensAt, ceilToSlot, checkBookingWindow, floorToSlot, openUntil, ruleError, type BookingWindow, type RulesConfig } from './rules.js';
import { overlapsOwnBookingError, periodParams, userRuleError, userRuleInputs } from './userRules.js';
import { refuseIfAccountGone } from './accountCheck.js';
import { onlyBufferClashes, paddingRuleError } from './bufferClash.js';
import type { BranchContext, SeatContexts } from './seatContexts.js';
import { strikeCall, suspendedError } from './strikes.js';
import { LockClass } from '../db/lockKeys.js';

export type BookingConfig = Config['booking'];

/** A stretch of a seat that became bookable again (after a cancel or an early check-out). */
export interface FreedSlot {
  seatId: number;
  branchId: number;
  start: Date;
  end: Date;
}

/** Given the request's deadline, when there is one: the hook's waits end there too. */
export type SlotFreedHandler = (slot: FreedSlot, deadline?: Deadline) => Promise<unknown>;

export interface ReservationServiceOptions {
  db: Db;
  clock: Clock;
  rules: RulesConfig;
  events: CoreEventSink;
  /** A seat's branch, zone, hours and padding, read once per booking. */
  seats: SeatContexts;
  log: Logger;
  /** Called after a cancel or an early check-out commits (the waitlist offers the slot). */
  onSlotFreed?: SlotFreedHandler;
  /** Group commit and the memory of searches (config booking). */
  booking: BookingConfig;
  /** The opening lottery's shuffle: a number in [0, 1); crypto-random by default (tests seed it). */
  random?: () => number;
}

/** Best-available: the branch, the filters (as seats.list reads them), and a seat to be near. */
export interface SeatChoice {
  branch: BranchRef;
  area?: string;
  hasPower?: boolean;
  hasMonitor?: boolean;
  near?: number;
}

/** A booking: of seatId, or of the best free seat `choose` describes (exactly one of the two). */
export interface CreateInput {
  seatId?: number;
  choose?: SeatChoice;
  startMs: number;
  endMs: number;
  idempotencyKey?: string;
}

export interface Caller {
  id: number;
  role: 'student' | 'admin';
}

export type MineScope = 'upcoming' | 'history';

const MINUTE = 60_000;

/** Collects positional parameters while a statement is assembled. */
class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

type Guard = (p: Params, a: string, nowMs: number) => string;

export class ReservationService {
  /**
   * The users with a booking in flight on this instance, each with the turns of those waiting
   * behind it, first come first (bounded by the requests in flight: a waiting request leaves its
   * connection unread).
   */
  private readonly inFlight = new Map<number, Array<() => void>>();
  private readonly searches: SeatSearches;
  private readonly own: OwnBookings;
  private readonly queue: BookingQueue;
  private readonly stats = { inFlightRefusals: 0, knownFull: 0, waitedBehind: 0, knownOwn: 0 };

  constructor(private readonly opts: ReservationServiceOptions) {
    const { booking, clock, rules } = opts;
    this.searches = new SeatSearches({ maxEntries: booking.knownFullMaxEntries, keepMs: booking.knownFullMs, now: () => clock.now() });
    this.own = new OwnBookings({ maxEntries: booking.knownFullMaxEntries, keepMs: booking.knownFullMs, now: () => clock.now() });
    this.queue = new BookingQueue({
      db: opts.db,
      clock,
      rules,
      searches: this.searches,
      maxBatch: booking.maxBatch,
      maxBatchesInFlight: booking.maxBatchesInFlight,
      random: opts.random,
    });
  }

  // --- guards: the conditions under which each transition may happen, on alias `a` --------

  private readonly cancelGuard: Guard = (p, a, nowMs) =>
    `${a}.status = 'CONFIRMED' AND upper(${a}.during) > ${p.add(new Date(nowMs))}`;

  /** Check-in window: opens checkInOpensBeforeMinutes before start, closes at start + grace (or the end). */
  private readonly checkInGuard: Guard = (p, a, nowMs) => {
    const now = p.add(new Date(nowMs));
    const before = Math.trunc(this.opts.rules.checkInOpensBeforeMinutes);
    const grace = Math.trunc(this.opts.rules.checkInGraceMinutes);
    return `${a}.status = 'CONFIRMED'
      AND ${now}::timestamptz >= lower(${a}.during) - interval '${before} minutes'
      AND ${now}::timestamptz < lower(${a}.during) + interval '${grace} minutes'
      AND ${now}::timestamptz < upper(${a}.during)`;
  };

  private readonly checkOutGuard: Guard = (_p, a) => `${a}.status = 'CHECKED_IN'`;

  // --- booking ------------------------------------------------------------------------------

  /**
   * Books a seat — the one named, or the best free one that matches (docs/rules.md, "Booking any
   * free seat") — through the booking queue: one of the batches carrel_book_batch runs. A user has
   * at most one booking in flight on this instance: a further one, on any connection, waits
   * behind it (first come, first served), and `waiting` is told what it waits for, so that the
   * request's connection is left unread meanwhile (docs/fairness.md, "The opening rush"). Then an
   * overlapping time that the one before booked is overlapsOwnBooking without a round trip.
   */
  async create(user: Caller, input: CreateInput, deadline?: Deadline, waiting?: (turn: Promise<void>) => void): Promise<ReservationWire> {
    this.refuseIfKnown(user, input);
    const line = this.inFlight.get(user.id);
    if (line) {
      // Behind the user's booking in flight, in line: handed the turn by the one before (one
      // wake-up each, however many wait).
      this.stats.waitedBehind++;
      const turn = new Promise<void>((resolve) => line.push(resolve));
      waiting?.(turn);
      await turn;
    } else this.inFlight.set(user.id, []);
    try {
      return await this.book(user, input, deadline);
    } finally {
      const next = this.inFlight.get(user.id)!.shift();
      if (next) next();
      else this.inFlight.delete(user.id);
    }
  }

  private async book(user: Caller, input: CreateInput, deadline?: Deadline): Promise<ReservationWire> {
    const { rules } = this.opts;
    const nowMs = this.opts.clock.now();
    const key = input.idempotencyKey;
    const where = await this.target(input, deadline);
    let search: SeatSearch | undefined;
    if (input.choose) {
      const c = input.choose;
      const shape = { branchId: where.branchId, area: c.area, hasPower: c.hasPower, hasMonitor: c.hasMonitor, startMs: input.startMs, endMs: input.endMs };
      search = { shape, key: SeatSearches.key(shape), near: c.near };
    }
    try {
      checkBookingWindow(input, nowMs, rules, where);
      // What the booking ahead of it (if it waited) made, or found.
      this.answerKnown(user, input, search?.key);
    } catch (err) {
      // A retry of a booking that succeeded is answered whatever the rules or the seats say now
      // (the slot started, the branch filled with this very booking): only on this refusal path
      // is the key looked up outside the batch, which checks it first under the user's lock.
      if (key !== undefined && err instanceof CarrelError) {
        const existing = await this.findByKey(user.id, key, deadline);
        if (existing) return reservationToWire(sameRequest(existing, input, where.branchId));
      }
      throw err;
    }
    const limits = userRuleInputs(input, where.timezone, rules);
    const opensAt = bookingOpensAt(input.startMs, where.timezone, rules);
    const drawAtMs = opensAt !== null && rules.openingLotteryMs > 0 && nowMs < opensAt + rules.openingLotteryMs ? opensAt + rules.openingLotteryMs : undefined;
    const out = await this.queue.submit(
      { userId: user.id, seatId: input.seatId, search, startMs: input.startMs, endMs: input.endMs, idempotencyKey: key, limits, deadline },
      drawAtMs,
    );
    if (out.row && (out.outcome === 'created' || out.outcome === 'existing') && (out.row.status === 'CONFIRMED' || out.row.status === 'CHECKED_IN')) {
      this.own.remember(user.id, { id: Number(out.row.id), startMs: out.row.start_at.getTime(), endMs: out.row.end_at.getTime() });
    }
    switch (out.outcome) {
      case 'created':
        this.emit('reservation.created', out.row!, nowMs);
        return reservationToWire(out.row!);
      case 'existing':
        return reservationToWire(sameRequest(out.row!, input, where.branchId));
      case 'overlapsOwnBooking':
      case 'maxActive':
      case 'quota':
        throw userRuleError({ outcome: out.outcome, period: out.period, used: out.used, otherId: out.otherId }, limits, rules);
      case 'suspended':
        throw await suspendedError(this.opts.db, user.id, deadline);
      case 'outOfService':
        throw ruleError(Rule.seatOutOfService, `seat ${input.seatId} is out of service`);
      case 'clash':
        // A clash with only a cleaning buffer is the padding rule, not a double booking (explainClash).
        return this.explainClash(overlapConflict(out.detail ?? undefined), { seatId: input.seatId!, ...input }, where.paddingMinutes, deadline);
      case 'noSeatFree':
        throw noSeatFree();
      case 'userBusy':
        throw this.bookingInFlight('another booking or waitlist claim of yours is in flight; wait for its answer');
      case 'deadline':
        throw new CarrelError(ErrorCode.DEADLINE_EXCEEDED, "the request's deadline passed while it waited for a lock; nothing was changed");
      case 'accountGone':
        throw accountGone();
    }
  }

  /**
   * What this instance knows without a read, answered synchronously and before waiting in line,
   * so that a script's pipelined creates are answered together — in the order book() checks
   * them: the window's rules, one seat at a time from the bookings it made lately (ownBookings.ts),
   * a best-available search known full (seatSearches.ts). A window that is exactly the one a
   * remembered booking or full verdict was reached for passed the window's rules then, and still
   * does while its start slot has not begun to pass (the only rule that turns with time against a
   * booking: the others only ever open up), so it skips them — they are a fifth of the cost of
   * such an answer. Without the seat's or branch's context at hand, with a key (it may name a
   * booking made with it) or with `near` (its seat is checked first), the request takes the usual
   * path, which gives the same answers.
   */
  private refuseIfKnown(user: Caller, input: CreateInput): void {
    if (input.idempotencyKey !== undefined || input.choose?.near !== undefined) return;
    const { rules, clock } = this.opts;
    const now = clock.now();
    const c = input.choose;
    const where = this.opts.seats.known(c ? { branch: c.branch } : { seatId: input.seatId! });
    if (!where) return;
    const own = rules.oneSeatAtATime ? this.own.overlapping(user.id, input.startMs, input.endMs) : undefined;
    const key = c && SeatSearches.key({ branchId: where.branchId, area: c.area, hasPower: c.hasPower, hasMonitor: c.hasMonitor, startMs: input.startMs, endMs: input.endMs });
    if (!own && !(key !== undefined && this.searches.isFull(key))) return;
    const sameWindow = !own || (own.startMs === input.startMs && own.endMs === input.endMs);
    if (!sameWindow || input.startMs < floorToSlot(now, rules.slotMinutes)) checkBookingWindow(input, now, rules, where);
    this.answerKnown(user, input, key);
  }

  /**
   * After the window's rules, in book()'s order: one seat at a time from what this instance
   * booked lately (not with a key: the database answers that), then a search known full.
   */
  private answerKnown(user: Caller, input: CreateInput, searchKey: string | undefined): void {
    const own = this.opts.rules.oneSeatAtATime && input.idempotencyKey === undefined ? this.own.overlapping(user.id, input.startMs, input.endMs) : undefined;
    if (own) {
      this.stats.knownOwn++;
      throw overlapsOwnBookingError(own.id);
    }
    if (searchKey !== undefined && this.searches.isFull(searchKey)) {
      this.stats.knownFull++;
      throw noSeatFree();
    }
  }

  /**
   * RESOURCE_EXHAUSTED bookingInFlight, with retryAfterMs: about when the booking in flight will
   * have been answered. The dispatcher reads nothing more from the connection until then, so a
   * script that pipelines creates costs one refusal per interval, not one per request
   * (docs/fairness.md, "The opening rush").
   */
  private bookingInFlight(message: string): CarrelError {
    this.stats.inFlightRefusals++;
    return new CarrelError(ErrorCode.RESOURCE_EXHAUSTED, message, { reason: 'bookingInFlight', retryAfterMs: this.queue.retryAfterMs(), per: 'user' });
  }

  /** The branch a booking is in, with what its rules need: the seat's (and `near`'s), or the one named. */
  private async target(input: CreateInput, deadline?: Deadline): Promise<BranchContext> {
    if (input.seatId !== undefined) return this.opts.seats.seatContext(input.seatId, deadline);
    const c = input.choose!;
    const branch = await this.opts.seats.branchContext(c.branch, deadline);
    if (c.near !== undefined) {
      const near = await this.opts.seats.seatContext(c.near, deadline).catch((err: unknown) => {
        if (err instanceof CarrelError && err.code === ErrorCode.NOT_FOUND) return undefined;
        throw err;
      });
      if (near?.branchId !== branch.branchId) {
        throw new CarrelError(ErrorCode.INVALID_ARGUMENT, `near must be a seat of the branch (${branch.branchId})`, { field: 'near' });
      }
    }
    return branch;
  }

  /** Where the memories of searches and of own bookings are fed: every committed change, here and elsewhere. */
  readonly onCoreEvent = (ev: CoreEvent): void => {
    this.searches.onCoreEvent(ev);
    this.own.onCoreEvent(ev);
  };

  /** The booking queue's and the searches' counters (metrics): knownFull counts the refusals here and the queue's. */
  bookingStats() {
    const q = this.queue.stats;
    return {
      batches: q.batches,
      sent: q.sent,
      busy: q.busy,
      expired: q.expired,
      ...this.queue.depth,
      inFlightRefusals: this.stats.inFlightRefusals,
      waitedBehind: this.stats.waitedBehind,
      knownOwn: this.stats.knownOwn,
      knownFull: this.stats.knownFull + q.knownFull,
      searches: this.searches.size,
      ownBookings: this.own.size,
    };
  }

  /**
   * What the exclusion constraint's refusal means for this booking (bufferClash.ts): CONFLICT, as
   * the database said, unless the hold it names clashes only through a cleaning buffer — then the
   * padding rule. The constraint names one clashing hold, and another booking may still overlap
   * the time itself: then the honest answer is CONFLICT with that booking's hold. One indexed
   * probe, on this failure path only.
   */
  private async explainClash(err: unknown, input: BookingWindow & { seatId: number }, paddingMinutes: number, deadline: Deadline | undefined): Promise<never> {
    if (!(err instanceof DbConflict) || err.reason !== 'overlap' || !err.clash) throw err;
    if (!onlyBufferClashes(err.clash, input, paddingMinutes)) throw err;
    const res = await this.opts.db.query<{ start_at: Date; end_at: Date }>(
      `SELECT lower(hold) AS start_at, upper(hold) AS end_at FROM reservations
        WHERE seat_id = $1 AND status IN ${ACTIVE_STATUSES_SQL} AND hold && tstzrange($2, $3) AND during && tstzrange($2, $3)
        ORDER BY lower(hold) LIMIT 1`,
      [input.seatId, new Date(input.startMs), new Date(input.endMs)],
      deadline,
    );
    const other = res.rows[0];
    if (!other) throw paddingRuleError(err.clash, paddingMinutes);
    throw new CarrelError(ErrorCode.CONFLICT, 'the seat is already booked for part of that time', {
      conflict: { start: other.start_at.toISOString(), end: other.end_at.toISOString() },
    });
  }

  // --- reads --------------------------------------------------------------------------------

  /** The reservation when the caller owns it or is an admin; NOT_FOUND otherwise (never "forbidden"). */
  async get(user: Caller, id: number, deadline?: Deadline): Promise<ReservationWire> {
    return reservationToWire(await this.fetchVisible(user, id, deadline));
  }

  /**
   * The caller's reservations, keyset-paginated. upcoming: active (CONFIRMED, CHECKED_IN,
   * OFFERED) and not yet ended, soonest first; history: everything else, latest first.
   */
  async mine(
    userId: number,
    opts: { scope: MineScope; limit: number; cursor?: string },
    deadline?: Deadline,
  ): Promise<{ reservations: ReservationWire[]; nextCursor: string | null }> {
    const p = new Params();
    const uid = p.add(userId);
    const now = p.add(new Date(this.opts.clock.now()));
    const upcoming = opts.scope === 'upcoming';
    const current = `r.status IN ${ACTIVE_STATUSES_SQL} AND upper(r.during) > ${now}`;
    let after = '';
    if (opts.cursor !== undefined) {
      const c = decodeCursor(opts.cursor, opts.scope);
      after = `AND (lower(r.during), r.id) ${upcoming ? '>' : '<'} (${p.add(new Date(c.startMs))}, ${p.add(c.id)})`;
    }
    const dir = upcoming ? 'ASC' : 'DESC';
    const res = await this.opts.db.query<ReservationRow>(
      `SELECT ${RESERVATION_COLUMNS}
       FROM reservations r JOIN seats s ON s.id = r.seat_id
       WHERE r.user_id = ${uid} AND ${upcoming ? current : `NOT (${current})`} ${after}
       ORDER BY lower(r.during) ${dir}, r.id ${dir}
       LIMIT ${p.add(opts.limit + 1)}`,
      p.values,
      deadline,
    );
    // An empty page is what a token of a deleted account would see: say so instead.
    if (res.rows.length === 0) await refuseIfAccountGone(this.opts.db, userId, deadline);
    const rows = res.rows.slice(0, opts.limit);
    const last = rows[rows.length - 1];
    const nextCursor = res.rows.length > opts.limit && last ? encodeCursor(opts.scope, last.start_at.getTime(), last.id) : null;
    return { reservations: rows.map(reservationToWire), nextCursor };
  }

  // --- transitions by people ----------------------------------------------------------------

  /**
   * By the owner, before the end: CONFIRMED → CANCELLED before the start; after it, CONFIRMED →
   * NO_SHOW cut to the part that has passed (usedUntil), which the quotas count — the module
   * comment says why. Either way the seat is free again from the slot under way.
   */
  async cancel(user: Caller, id: number, deadline?: Deadline): Promise<ReservationWire> {
    const nowMs = this.opts.clock.now();
    const p = new Params();
    const now = p.add(new Date(nowMs));
    const started = `lower(o.during) <= ${now}`;
    const endAt = this.usedUntil(p, 'o', nowMs);
    const res = await this.opts.db.query<ReservationRow & { old_end: Date }>(
      `UPDATE reservations r SET updated_at = ${now},
         status = CASE WHEN ${started} THEN 'NO_SHOW' ELSE 'CANCELLED' END,
         during = CASE WHEN ${started} THEN tstzrange(lower(o.during), ${endAt}) ELSE o.during END,
         hold = CASE WHEN ${started} THEN tstzrange(lower(o.hold), ${endAt} + (upper(o.hold) - upper(o.during))) ELSE o.hold END
       FROM reservations o
       WHERE o.id = r.id AND r.id = ${p.add(id)} AND r.user_id = ${p.add(user.id)} AND ${this.cancelGuard(p, 'r', nowMs)}
       RETURNING ${returningColumnsFor('r')}, upper(o.during) AS old_end`,
      p.values,
      deadline,
    );
    const row = res.rows[0];
    if (!row) throw await this.whyNot(user, id, 'CONFIRMED', nowMs, deadline);
    this.emit('reservation.cancelled', row, nowMs);
    const from = Math.max(row.start_at.getTime(), floorToSlot(nowMs, this.opts.rules.slotMinutes));
    await this.slotFreed(row, from, row.old_end.getTime(), deadline);
    return reservationToWire(row);
  }

  /** CONFIRMED → CHECKED_IN, by the owner, inside the check-in window. */
  async checkIn(user: Caller, id: number, deadline?: Deadline): Promise<ReservationWire> {
    const nowMs = this.opts.clock.now();
    const row = await this.checkInWhere((p, a) => `${a}.id = ${p.add(id)} AND ${a}.user_id = ${p.add(user.id)}`, nowMs, deadline);
    if (!row) throw await this.whyNot(user, id, 'CONFIRMED', nowMs, deadline);
    return reservationToWire(row);
  }

  /** CHECKED_IN → COMPLETED, by the owner: the booking ends at the next slot boundary. */
  async checkOut(user: Caller, id: number, deadline?: Deadline): Promise<ReservationWire> {
    const nowMs = this.opts.clock.now();
    const row = await this.checkOutWhere((p, a) => `${a}.id = ${p.add(id)} AND ${a}.user_id = ${p.add(user.id)}`, nowMs, deadline);
    if (!row) throw await this.whyNot(user, id, 'CHECKED_IN', nowMs, deadline);
    return reservationToWire(row);
  }

  // --- transitions by sensors (the same guarded UPDATEs) -------------------------------------

  /**
   * Someone sat down in `seatId` at atMs: the seat's CONFIRMED reservation whose check-in
   * window contains atMs is checked in. Returns its fact, or null when there is none.
   */
  async checkInBySensor(seatId: number, atMs: number): Promise<ReservationFact | null> {
    const { checkInOpensBeforeMinutes: before, checkInGraceMinutes: grace } = this.opts.rules;
    // Inside the window, the start lies in (atMs - grace, atMs + before].
    const near: [number, number] = [atMs - grace * MINUTE, atMs + before * MINUTE];
    const row = await this.checkInWhere((p, a) => this.bySeat(p, a, seatId, atMs, this.checkInGuard, near), atMs);
    return row ? reservationToFact(row) : null;
  }

  /**
   * The seat's away reservation's hold ran out by atMs (docs/rules.md, "Presence: the state
   * machine"): it is checked out at atMs (cause checkOut), the rest of the slot is freed, the
   * owner hears of it (personal event `released`) and gets a strike, in the same statement
   * (carrel_strike). Returns its fact, or null when there is none (the owner came back first).
   */
  async releaseBySensor(seatId: number, atMs: number): Promise<ReservationFact | null> {
    // A checked-in booking that has not ended holds atMs, or starts within the check-in lead.
    const near: [number, number] = [atMs, atMs + this.opts.rules.checkInOpensBeforeMinutes * MINUTE];
    const heldOut: Guard = (p, a) => `${this.checkOutGuard(p, a, atMs)} AND ${a}.hold_until <= ${p.add(new Date(atMs))}`;
    const row = await this.checkOutWhere((p, a) => this.bySeat(p, a, seatId, atMs, heldOut, near), atMs, undefined, 'awayExpired');
    if (!row) return null;
    const fact = reservationToFact(row);
    this.opts.events.emit({ type: 'personal', userId: row.user_id, kind: 'released', reservation: fact, at: new Date(atMs).toISOString() });
    return fact;
  }

  // --- the shared guarded UPDATEs -----------------------------------------------------------

  private async checkInWhere(select: (p: Params, a: string) => string, nowMs: number, deadline?: Deadline): Promise<ReservationRow | null> {
    const row = await this.transition(
      (p, a) => `${select(p, a)} AND ${this.checkInGuard(p, a, nowMs)}`,
      (now) => `status = 'CHECKED_IN', checked_in_at = ${now}`,
      nowMs,
      deadline,
    );
    if (row) this.emit('checkIn', row, nowMs);
    return row;
  }

  /**
   * Check-out ends the booking at the first slot boundary at or after now (and never before
   * its first slot): bookings start on slot boundaries anyway, so nothing shorter could use
   * the remainder, and every stored interval stays slot-aligned. The row leaves the active
   * statuses, so the seat is bookable again at once.
   */
  private async checkOutWhere(
    select: (p: Params, a: string) => string,
    nowMs: number,
    deadline?: Deadline,
    strike?: 'awayExpired',
  ): Promise<ReservationRow | null> {
    const p = new Params();
    const endAt = this.usedUntil(p, 'o', nowMs);
    const update = `UPDATE reservations r SET status = 'COMPLETED', updated_at = ${p.add(new Date(nowMs))},
         during = tstzrange(lower(o.during), ${endAt}),
         hold = tstzrange(lower(o.hold), ${endAt} + (upper(o.hold) - upper(o.during)))
       FROM reservations o
       WHERE o.id = r.id AND ${select(p, 'r')} AND ${this.checkOutGuard(p, 'r', nowMs)}
       RETURNING ${returningColumnsFor('r')}, upper(o.during) AS old_end`;
    // A release that earns a strike gives it in the same statement (docs/rules.md, "Strikes and suspension").
    const text = strike ? `WITH done AS (${update}) SELECT done.*, ${strikeCall(p, 'done.id', strike, nowMs, this.opts.rules)} AS struck FROM done` : update;
    const res = await this.opts.db.query<ReservationRow & { old_end: Date }>(text, p.values, deadline);
    const row = res.rows[0];
    if (!row) return null;
    this.emit('checkOut', row, nowMs);
    await this.slotFreed(row, row.end_at.getTime(), row.old_end.getTime(), deadline);
    return row;
  }

  /**
   * Where a booking on alias `a` that ends early at nowMs ends: the first slot boundary at or
   * after now, never before the end of its first slot, never past its own end. Check-out and a
   * cancel after the start both cut a booking here.
   */
  private usedUntil(p: Params, a: string, nowMs: number): string {
    const slot = this.opts.rules.slotMinutes;
    return `least(upper(${a}.during), greatest(${p.add(new Date(ceilToSlot(nowMs, slot)))}::timestamptz, lower(${a}.during) + interval '${Math.trunc(slot)} minutes'))`;
  }

  /** One guarded UPDATE … RETURNING; `set` gets the parameter that holds now. */
  private async transition(
    where: (p: Params, a: string) => string,
    set: (now: string) => string,
    nowMs: number,
    deadline?: Deadline,
  ): Promise<ReservationRow | null> {
    const p = new Params();
    const now = p.add(new Date(nowMs));
    const res = await this.opts.db.query<ReservationRow>(
      `UPDATE reservations r SET ${set(now)}, updated_at = ${now}
       WHERE ${where(p, 'r')}
       RETURNING ${returningColumnsFor('r')}`,
      p.values,
      deadline,
    );
    return res.rows[0] ?? null;
  }

  /**
   * Selects the seat's one reservation that passes the guard at atMs (the earliest, if two).
   * `near` is a hold window implied by the guard, so the probe uses the GiST index on
   * (seat_id, hold) instead of reading the seat's whole history.
   */
  private bySeat(p: Params, a: string, seatId: number, atMs: number, guard: Guard, near: [number, number]): string {
    return `${a}.id = (SELECT q.id FROM reservations q
      WHERE q.seat_id = ${p.add(seatId)} AND q.hold && tstzrange(${p.add(new Date(near[0]))}, ${p.add(new Date(near[1]))}, '[]')
        AND ${guard(p, 'q', atMs)}
      ORDER BY lower(q.during) LIMIT 1) AND ${guard(p, a, atMs)}`;
  }

  // --- helpers ------------------------------------------------------------------------------

  /**
   * The reservation when the caller owns it, or when the caller is an admin — by the users
   * table, not only the token's claim, so a demoted admin's token sees only its own at once
   * (the same rule as admin.*; in the same statement, no extra round trip).
   */
  private async fetchVisible(user: Caller, id: number, deadline?: Deadline): Promise<ReservationRow> {
    const res = await this.opts.db.query<ReservationRow>(
      `SELECT ${RESERVATION_COLUMNS} FROM reservations r JOIN seats s ON s.id = r.seat_id
       WHERE r.id = $1 AND (r.user_id = $2 OR ($3 AND EXISTS (SELECT 1 FROM users u WHERE u.id = $2 AND u.role = 'admin')))`,
      [id, user.id, user.role === 'admin'],
      deadline,
    );
    const row = res.rows[0];
    if (!row) {
      // Nobody's reservation, or the caller is nobody any more: the second is UNAUTHENTICATED.
      await refuseIfAccountGone(this.opts.db, user.id, deadline);
      throw new CarrelError(ErrorCode.NOT_FOUND, `no reservation ${id}`);
    }
    return row;
  }

  /** Explains a transition that matched no row: not yours, wrong status, or outside its time. */
  private async whyNot(user: Caller, id: number, expected: string, nowMs: number, deadline?: Deadline): Promise<CarrelError> {
    const row = await this.fetchVisible({ id: user.id, role: 'student' }, id, deadline);
    if (row.status !== expected) {
      return ruleError(Rule.status, `reservation ${id} is ${row.status}, not ${expected}`, { status: row.status });
    }
    if (row.end_at.getTime() <= nowMs) return ruleError(Rule.ended, `reservation ${id} has ended`);
    const opens = row.start_at.getTime() - this.opts.rules.checkInOpensBeforeMinutes * MINUTE;
    const closes = Math.min(row.start_at.getTime() + this.opts.rules.checkInGraceMinutes * MINUTE, row.end_at.getTime());
    return ruleError(Rule.checkInWindow, `check-in is open from ${new Date(opens).toISOString()} until ${new Date(closes).toISOString()}`, {
      opensAt: new Date(opens).toISOString(),
      closesAt: new Date(closes).toISOString(),
    });
  }

  private async findByKey(userId: number, key: string, deadline: Deadline | undefined): Promise<ReservationRow | null> {
    const res = await this.opts.db.query<ReservationRow>(
      `SELECT ${RESERVATION_COLUMNS} FROM reservations r JOIN seats s ON s.id = r.seat_id
       WHERE r.user_id = $1 AND r.idempotency_key = $2`,
      [userId, key],
      deadline,
    );
    return res.rows[0] ?? null;
  }

  private emit(cause: ReservationEvent['cause'], row: ReservationRow, atMs: number): void {
    this.opts.events.emit({ type: 'reservation', cause, reservation: reservationToFact(row), at: new Date(atMs).toISOString() });
  }

  /** Tells the waitlist; its failure is logged, never turned into the caller's failure. */
  private async slotFreed(row: ReservationRow, startMs: number, endMs: number, deadline?: Deadline): Promise<void> {
    const onSlotFreed = this.opts.onSlotFreed;
    if (!onSlotFreed || endMs <= startMs) return;
    const slot = { seatId: row.seat_id, branchId: row.branch_id, start: new Date(startMs), end: new Date(endMs) };
    try {
      await onSlotFreed(slot, deadline);
    } catch (err) {
      this.opts.log.error({ err, slot }, 'onSlotFreed failed');
    }
  }

  // --- walk-ins -----------------------------------------------------------------------------

  /**
   * Someone at a free seat books it and is checked in, in one statement (carrel_walk_in,
   * db/functions/carrel_walk_in.sql; docs/rules.md, "Walk-ins"): from the slot under way for
   * rules.walkInMinutes, cut at the branch's closing, at rules.maxDurationMinutes and at the
   * seat's next booking with its cleaning buffer. The same locks, in the same order, and the same
   * per-user rules as create; a refusal leaves nothing. The events are a create's and a check-in's.
   */
  async walkIn(user: Caller, seatId: number, deadline?: Deadline): Promise<ReservationWire> {
    const { rules } = this.opts;
    const nowMs = this.opts.clock.now();
    const seat = await this.opts.seats.seatContext(seatId, deadline);
    const startMs = floorToSlot(nowMs, rules.slotMinutes);
    const closesMs = openUntil(startMs, nowMs, seat.timezone, seat.hours);
    if (closesMs === null) {
      throw ruleError(Rule.openingHours, 'the branch is closed now', { timezone: seat.timezone });
    }
    const maxEndMs = Math.min(
      startMs + rules.walkInMinutes * MINUTE,
      startMs + rules.maxDurationMinutes * MINUTE,
      floorToSlot(closesMs, rules.slotMinutes),
    );
    if (maxEndMs - startMs < rules.minDurationMinutes * MINUTE) {
      throw ruleError(Rule.openingHours, `the branch closes at ${new Date(closesMs).toISOString()}, too soon for a booking of ${rules.minDurationMinutes} minutes`, {
        timezone: seat.timezone,
        closesAt: new Date(closesMs).toISOString(),
      });
    }
    const limits = userRuleInputs({ startMs, endMs: maxEndMs }, seat.timezone, rules);
    const res = await this.opts.db.query<WalkInRow>(
      (lockTimeoutMs) => ({
        name: 'carrel.walkIn',
        text: 'SELECT * FROM carrel_walk_in($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)',
        values: [
          seatId, user.id, new Date(startMs), new Date(maxEndMs), new Date(nowMs), rules.slotMinutes, rules.minDurationMinutes,
          LockClass.userBooking, rules.maxActivePerUser, rules.oneSeatAtATime, ...periodParams(limits), lockTimeoutMs,
        ],
      }),
      deadline,
    );
    const r = res.rows[0]!;
    switch (r.outcome) {
      case 'created':
        break;
      case 'taken':
        throw new CarrelError(ErrorCode.CONFLICT, 'the seat is taken now, or booked again too soon for a walk-in', {
          conflict: { start: r.start_at.toISOString(), end: r.end_at.toISOString() },
        });
      case 'overlapsOwnBooking':
      case 'maxActive':
      case 'quota':
        throw userRuleError({ outcome: r.outcome, period: r.period, used: r.used }, limits, rules);
      case 'suspended':
        throw await suspendedError(this.opts.db, user.id, deadline);
      default:
        throw ruleError(Rule.seatOutOfService, `seat ${seatId} is out of service`);
    }
    // What a create and a check-in would have said, in that order: subscribers see it booked, then sat in.
    this.emit('reservation.created', { ...r, status: 'CONFIRMED', checked_in_at: null }, nowMs);
    this.emit('checkIn', r, nowMs);
    return reservationToWire(r);
  }
}

/** What carrel_walk_in answers: an outcome, and the reservation when there is one. */
interface WalkInRow extends ReservationRow {
  outcome: 'created' | 'taken' | 'overlapsOwnBooking' | 'maxActive' | 'quota' | 'suspended' | 'outOfService';
  period: number | null;
  used: number | null;
}

/** CONFLICT noSeatFree: no seat that matches is free for the window. */
function noSeatFree(): CarrelError {
  return new CarrelError(ErrorCode.CONFLICT, 'no seat that matches is free for that time', { reason: 'noSeatFree' });
}

/**
 * A retried key must name the same seat (or, choosing the seat, the same branch) and start;
 * otherwise the client reused a key.
 */
function sameRequest(row: ReservationRow, input: CreateInput, branchId: number): ReservationRow {
  const samePlace = input.seatId !== undefined ? row.seat_id === input.seatId : row.branch_id === branchId;
  if (!samePlace || row.start_at.getTime() !== input.startMs) {
    throw ruleError(Rule.idempotencyKeyReused, 'that idempotencyKey was used for a different booking', {
      reservationId: row.id,
    });
  }
  return row;
}

function encodeCursor(scope: MineScope, startMs: number, id: number): string {
  return Buffer.from(`${scope === 'upcoming' ? 'u' : 'h'}.${startMs}.${id}`).toString('base64url');
}

function decodeCursor(cursor: string, scope: MineScope): { startMs: number; id: number } {
  const m = /^([uh])\.(-?\d{1,16})\.(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m || m[1] !== (scope === 'upcoming' ? 'u' : 'h')) {
    throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'cursor is not one this scope returned');
  }
  const startMs = Number(m[2]);
  const id = Number(m[3]);
  if (!Number.isSafeInteger(startMs) || Math.abs(startMs) > 8.64e15 || !Number.isSafeInteger(id)) {
    throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'cursor is not one this scope returned');
  }
  return { startMs, id };
}
