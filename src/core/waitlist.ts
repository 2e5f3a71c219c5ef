// The waitlist (docs/protocol.md, "`waitlist.join`"): users wait for a seat, or
// any seat of a branch, for a window; when a slot frees, the first fitting waiter (seat-specific
// before branch-wide, then FIFO) gets an OFFERED reservation that holds the slot through the
// exclusion constraint until it is claimed or lapses. Every transition is a guarded UPDATE, so
// racing handlers cannot both win, and the database, not a read in Node, decides whether an offer
// fits.
import { suspendedError } from './strikes.js';
import { CarrelError, ErrorCode } from '../errors.js';
import type { Db } from '../db/db.js';
import { DbConflict } from '../db/errors.js';
import { LockClass } from '../db/lockKeys.js';
import type { Deadline } from '../deadline.js';
import type { Logger } from '../obs/log.js';
import type { Clock } from './clock.js';
import type { CoreEventSink, ReservationFact } from './events.js';
import {
  RESERVATION_COLUMNS,
  RETURNING_COLUMNS,
  reservationToFact,
  reservationToWire,
  type ReservationRow,
  type ReservationWire,
} from './reservationRow.js';
import { Rule, checkBookingWindow, checkWindowShape, ruleError, type RulesConfig } from './rules.js';
import type { BranchRef } from '../wire/branchRef.js';
import type { BranchHours } from '../wire/hours.js';
import type { WaitlistEntryWire, WaitlistStatus } from '../wire/types.js';
import { branchIdSql } from './branchRef.js';
import { periodParams, userRuleError, userRuleInputs } from './userRules.js';
import { refuseIfAccountGone } from './accountCheck.js';

export interface WaitlistConfig {
  offerMs: number;
  maxEntriesPerUser: number;
  /** Narrower than rules.maxDurationMinutes for waitlist windows, or null (the booking rule). */
  maxWindowMinutes: number | null;
  /** Narrower than rules.maxDaysAhead for waitlist windows, or null (the booking rule). */
  maxAheadDays: number | null;
}

/** A slot that became free on a seat: a cancellation, a no-show, an early check-out. */
export interface FreedSlot {
  seatId: number;
  /** The seat's branch; informational, the seat row in the database is authoritative. */
  branchId: number;
  start: Date;
  end: Date;
}

export type WaitlistTarget = { seatId: number } | { branch: BranchRef };

export interface JoinInput {
  target: WaitlistTarget;
  start: Date;
  end: Date;
}

export interface WaitlistDeps {
  db: Db;
  clock: Clock;
  events: CoreEventSink;
  config: Readonly<WaitlistConfig>;
  /**
   * The booking rules. A window must be one a booking could have (join), and a claim passes
   * the per-user rules a booking does. The slot: a window may begin in the slot under way, as
   * a booking may ("this seat, for the rest of this hour"); an entry whose window has begun is
   * offered what is left of it, and lapses when less than a slot is left.
   */
  rules: Readonly<RulesConfig>;
  log: Logger;
}

interface Caller {
  id: number;
}

const ACTIVE = `('CONFIRMED', 'CHECKED_IN', 'OFFERED')`;

/**
 * SQL: entry `w` can still be served — at least one slot of its window is left from the slot
 * under way (`floor`), so an entry that began in the past is offered the rest of its window.
 */
const SERVABLE = (w: string, floor: string, slotMinutes: string): string =>
  `upper(${w}.during) >= greatest(lower(${w}.during), ${floor}::timestamptz) + make_interval(mins => ${slotMinutes}::int)`;
/** Candidates tried per freed slot; more waiters than this for one slot wait for the next sweep. */
const MAX_CANDIDATES = 50;
const MINE_LIMIT = 100;

interface EntryRow {
  id: number;
  seat_id: number | null;
  branch_id: number;
  branch_name: string | null;
  start_at: Date;
  end_at: Date;
  status: WaitlistStatus;
  created_at: Date;
  position: number | null;
  reservation_id: number | null;
  offer_seat_id: number | null;
  offer_expires_at: Date | null;
}

/** What carrel_claim (db/functions/carrel_claim.sql) answers: an outcome, and the reservation when claimed. */
interface ClaimRow extends ReservationRow {
  outcome: 'claimed' | 'overlapsOwnBooking' | 'maxActive' | 'quota' | 'suspended' | 'noOffer';
  period: number | null;
  used: number | null;
  other_id: number | null;
}

interface ResolvedTarget {
  /** null for a branch-wide entry. */
  seatId: number | null;
  branchId: number;
  seatStatus: 'IN_SERVICE' | 'OUT_OF_SERVICE' | null;
  timezone: string;
  hours: BranchHours;
}

interface Candidate {
  id: number;
  user_id: number;
  start_at: Date;
  end_at: Date;
}

export class Waitlist {
  constructor(private readonly deps: WaitlistDeps) {}

  // ---- the four RPC operations ------------------------------------------------------------

  /**
   * Joins the waitlist for a window that a booking could have: the same checks as
   * reservations.create, in the same order and with the same rule names (slot granularity,
   * min/max duration, not in the past, how far ahead, opening hours in the branch's zone,
   * seat in service). Waiting for a window no booking could have would wait for an offer that
   * could never be claimed as a booking. The per-user rules (active limit, quotas) are not
   * checked here: they depend on what the user holds when the offer comes, so claim checks them.
   */
  async join(user: Caller, input: JoinInput, deadline?: Deadline): Promise<WaitlistEntryWire> {
    const { config, clock } = this.deps;
    const nowMs = clock.now();
    const startMs = input.start.getTime();
    const endMs = input.end.getTime();
    checkWindowShape(startMs, endMs);
    const target = await this.resolveTarget(input.target, deadline);
    checkBookingWindow({ startMs, endMs }, nowMs, this.windowRules, target);
    if (target.seatStatus === 'OUT_OF_SERVICE') throw ruleError(Rule.seatOutOfService, 'the seat is out of service');

    // Waiting for a slot that is free would wait forever: nothing will free it. Tell the user
    // to book it instead. (If it frees or fills right after this read, the lifecycle's sweep
    // still offers free slots to waiters, so the entry is never stranded.)
    const free = await this.deps.db.query<{ id: number }>(
      `SELECT s.id FROM seats s JOIN branches b ON b.id = s.branch_id
        WHERE ${target.seatId !== null ? 's.id = $1' : 's.branch_id = $1'} AND s.status = 'IN_SERVICE'
          AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.seat_id = s.id AND r.status IN ${ACTIVE}
                AND r.hold && tstzrange($2::timestamptz, $3::timestamptz + make_interval(mins => b.padding_minutes), '[)'))
        ORDER BY s.id LIMIT 1`,
      [target.seatId ?? target.branchId, input.start, input.end],
      deadline,
    );
    if (free.rows[0]) {
      throw ruleError(Rule.seatAvailable, 'a seat is free for that window; book it with reservations.create', { seatId: free.rows[0].id });
    }

    const id = await this.deps.db.transaction(async (c) => {
      // One joiner per user at a time, so the per-user limit cannot be overrun by racing joins.
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LockClass.waitlistJoin, user.id]);
      const dup = await c.query<{ id: number }>(
        `SELECT id FROM waitlist WHERE user_id = $1 AND status IN ('WAITING', 'OFFERED')
            AND seat_id IS NOT DISTINCT FROM $2 AND branch_id IS NOT DISTINCT FROM $3 AND during = tstzrange($4, $5, '[)')`,
        [user.id, target.seatId, target.seatId === null ? target.branchId : null, input.start, input.end],
      );
      if (dup.rows[0]) return dup.rows[0].id;
      const open = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM waitlist WHERE user_id = $1 AND status IN ('WAITING', 'OFFERED')`,
        [user.id],
      );
      if ((open.rows[0]?.n ?? 0) >= config.maxEntriesPerUser) {
        throw ruleError(Rule.waitlistLimit, `at most ${config.maxEntriesPerUser} open waitlist entries per user`, {
          limit: config.maxEntriesPerUser,
        });
      }
      // A token whose user is gone trips waitlist_user_id_fkey: UNAUTHENTICATED (db/errors.ts).
      const ins = await c.query<{ id: number }>(
        `INSERT INTO waitlist (user_id, seat_id, branch_id, during, created_at, updated_at)
         VALUES ($1, $2, $3, tstzrange($4, $5, '[)'), $6, $6) RETURNING id`,
        [user.id, target.seatId, target.seatId === null ? target.branchId : null, input.start, input.end, new Date(nowMs)],
      );
      return ins.rows[0]!.id;
    }, deadline);
    const [entry] = await this.entries(user.id, nowMs, id, deadline);
    return entry!;
  }

  /** The caller's open entries and the closed ones whose window has not ended, by start. */
  async mine(user: Caller, deadline?: Deadline): Promise<WaitlistEntryWire[]> {
    const entries = await this.entries(user.id, this.deps.clock.now(), undefined, deadline);
    // Nothing is also what a deleted account's token would see: UNAUTHENTICATED (core/accountCheck.ts).
    if (entries.length === 0) await refuseIfAccountGone(this.deps.db, user.id, deadline);
    return entries;
  }

  /**
   * Leaves the waitlist. Leaving an OFFERED entry declines the offer: the held slot is
   * released and passed to the next waiter. Leaving twice, or after the entry lapsed, is a no-op.
   */
  async leave(user: Caller, id: number, deadline?: Deadline): Promise<Record<string, never>> {
    const now = new Date(this.deps.clock.now());
    // Guarded UPDATEs in the order reservations → waitlist (the lifecycle's order), retried
    // when the entry moved between our read and our write (e.g. it was just offered).
    for (let attempt = 0; attempt < 5; attempt++) {
      const status = await this.entryStatus(user.id, id, deadline);
      if (status === null) throw await notFoundFor(this.deps.db, user.id, id, deadline);
      if (status === 'LEFT' || status === 'EXPIRED') return {};
      if (status === 'CLAIMED') {
        throw ruleError(Rule.alreadyClaimed, 'the offer was claimed; cancel the reservation instead');
      }
      const outcome = await this.deps.db.transaction(async (c) => {
        let declined: ReservationRow | undefined;
        if (status === 'OFFERED') {
          const res = await c.query<ReservationRow>(
            `UPDATE reservations SET status = 'CANCELLED', updated_at = $2
              WHERE waitlist_id = $1 AND status = 'OFFERED' RETURNING ${RETURNING_COLUMNS}`,
            [id, now],
          );
          declined = res.rows[0];
          if (!declined) return null;
        }
        const w = await c.query(
          `UPDATE waitlist SET status = 'LEFT', updated_at = $3 WHERE id = $1 AND user_id = $2 AND status = $4`,
          [id, user.id, now, status],
        );
        if (w.rowCount === 0) throw new Retry();
        return { declined };
      }, deadline).catch((err: unknown) => {
        if (err instanceof Retry) return null;
        throw err;
      });
      if (outcome === null) continue;
      if (outcome.declined) {
        this.emitReservation('reservation.cancelled', outcome.declined, now);
        // The leave has committed; passing the slot on is best effort (the sweep backs it up).
        const d = outcome.declined;
        await this.onSlotFreed({ seatId: d.seat_id, branchId: d.branch_id, start: d.start_at, end: d.end_at }, deadline);
      }
      return {};
    }
    throw new CarrelError(ErrorCode.CONFLICT, 'the entry kept changing; try again');
  }

  /**
   * Turns the caller's offer into a CONFIRMED reservation, before the offer lapses. Idempotent.
   * The per-user rules a booking passes (one seat at a time, active limit, daily and weekly quotas) hold here too,
   * checked in one statement under the same per-user lock as reservations.create (carrel_claim,
   * db/functions/carrel_claim.sql), so a claim and a booking cannot together pass a limit. A
   * refused claim leaves the offer as it is: it holds the slot until it lapses, and the user may
   * make room (cancel a booking) and claim again.
   */
  async claim(user: Caller, id: number, deadline?: Deadline): Promise<ReservationWire> {
    const { rules } = this.deps;
    const nowMs = this.deps.clock.now();
    const now = new Date(nowMs);
    // The offered time and its branch's zone, for the quota periods (Node owns the zones).
    const offer = await this.deps.db.query<{ start_at: Date; end_at: Date; timezone: string; offer_expires_at: Date }>(
      `SELECT lower(r.during) AS start_at, upper(r.during) AS end_at, b.timezone, r.offer_expires_at
         FROM reservations r JOIN seats s ON s.id = r.seat_id JOIN branches b ON b.id = s.branch_id
        WHERE r.waitlist_id = $1 AND r.user_id = $2 AND r.status = 'OFFERED' AND r.offer_expires_at > $3`,
      [id, user.id, now],
      deadline,
    );
    const o = offer.rows[0];
    if (o) {
      const limits = userRuleInputs({ startMs: o.start_at.getTime(), endMs: o.end_at.getTime() }, o.timezone, rules);
      const res = await this.deps.db.query<ClaimRow>(
        (lockTimeoutMs) => ({
          name: 'carrel.claim',
          text: 'SELECT * FROM carrel_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
          values: [id, user.id, now, LockClass.userBooking, rules.maxActivePerUser, rules.oneSeatAtATime, ...periodParams(limits), lockTimeoutMs],
        }),
        deadline,
      );
      const r = res.rows[0]!;
      if (r.outcome === 'claimed') {
        this.emitReservation('reservation.created', r, now);
        return reservationToWire(r);
      }
      if (r.outcome === 'suspended') throw await suspendedError(this.deps.db, user.id, deadline);
      if (r.outcome === 'overlapsOwnBooking' || r.outcome === 'maxActive' || r.outcome === 'quota') {
        throw userRuleError({ outcome: r.outcome, period: r.period, used: r.used, otherId: r.other_id }, limits, rules, {
          offerExpiresAt: o.offer_expires_at.toISOString(),
        });
      }
      // noOffer: it lapsed or was claimed since the read; say which below.
    }
    return reservationToWire(await this.whyNoOffer(user, id, deadline));
  }

  /** A claim that found no live offer: the earlier claim's reservation, or why there is none. */
  private async whyNoOffer(user: Caller, id: number, deadline?: Deadline): Promise<ReservationRow> {
    const status = await this.entryStatus(user.id, id, deadline);
    switch (status) {
      case null:
        throw await notFoundFor(this.deps.db, user.id, id, deadline);
      case 'CLAIMED': {
        const prev = await this.deps.db.query<ReservationRow>(
          `SELECT ${RESERVATION_COLUMNS} FROM reservations r JOIN seats s ON s.id = r.seat_id
            WHERE r.waitlist_id = $1 AND r.user_id = $2 ORDER BY r.id DESC LIMIT 1`,
          [id, user.id],
          deadline,
        );
        if (!prev.rows[0]) throw notFound(id);
        return prev.rows[0];
      }
      case 'OFFERED':
      case 'EXPIRED':
        throw ruleError(Rule.offerExpired, 'the offer has expired');
      case 'WAITING':
        throw ruleError(Rule.noOffer, 'there is no offer for this entry yet');
      case 'LEFT':
        throw ruleError(Rule.entryLeft, 'you left this waitlist entry');
    }
  }

  // ---- freed slots and offers -------------------------------------------------------------

  /**
   * The hook for code that frees a slot (cancel, no-show, check-out), called after its commit:
   * offers the freed time on that seat to the next fitting waiters. Never rejects: a failure
   * is logged and the lifecycle's sweep offers the slot on its next tick. Resolves with the
   * number of offers made.
   */
  /**
   * The start of the slot under way. A window that has begun is still served from here on:
   * its offer covers [max(window start, this), window end), as long as a slot of it is left.
   */
  private slotFloor(nowMs: number): Date {
    const slotMs = this.deps.rules.slotMinutes * 60_000;
    return new Date(Math.floor(nowMs / slotMs) * slotMs);
  }

  readonly onSlotFreed = async (slot: FreedSlot, deadline?: Deadline): Promise<number> => {
    try {
      return (await this.offerFreedSlot(slot, this.deps.clock.now(), this.deps.db, deadline)).length;
    } catch (err) {
      this.deps.log.warn({ err, seatId: slot.seatId }, 'offering a freed slot failed; the lifecycle sweep will retry');
      return 0;
    }
  };

  /**
   * Offers the part of `slot` after now to waiters whose window overlaps it and is free on
   * that seat (the INSERT's exclusion constraint has the last word), seat-specific entries
   * first, then branch-wide ones, each FIFO. Several waiters with disjoint windows can each
   * get an offer from one large freed slot. On `db`: the lifecycle's session, or the pool's
   * connections within the request's deadline.
   */
  async offerFreedSlot(slot: FreedSlot, nowMs: number, db: Db, deadline?: Deadline): Promise<ReservationFact[]> {
    const startMs = Math.max(slot.start.getTime(), nowMs);
    const endMs = slot.end.getTime();
    if (!Number.isFinite(startMs) || !Number.isFinite(endMs) || startMs >= endMs) return [];
    const seat = await db.query<{ branch_id: number; status: string; padding_minutes: number }>(
      `SELECT s.branch_id, s.status, b.padding_minutes FROM seats s JOIN branches b ON b.id = s.branch_id WHERE s.id = $1`,
      [slot.seatId],
      deadline,
    );
    const s = seat.rows[0];
    if (!s || s.status !== 'IN_SERVICE') return [];
    const candidates = await db.query<Candidate>(
      `SELECT w.id, w.user_id, greatest(lower(w.during), $5) AS start_at, upper(w.during) AS end_at FROM waitlist w
        WHERE w.status = 'WAITING' AND (w.seat_id = $1 OR w.branch_id = $2)
          AND w.during && tstzrange($3, $4, '[)') AND ${SERVABLE('w', '$5', '$7')}
          AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.seat_id = $1 AND r.status IN ${ACTIVE}
                AND r.hold && tstzrange(greatest(lower(w.during), $5), upper(w.during) + make_interval(mins => $6::int), '[)'))
        ORDER BY (w.seat_id IS NULL), w.created_at, w.id
        LIMIT ${MAX_CANDIDATES}`,
      [slot.seatId, s.branch_id, new Date(startMs), new Date(endMs), this.slotFloor(nowMs), s.padding_minutes, this.deps.rules.slotMinutes],
      deadline,
    );
    const made: ReservationFact[] = [];
    for (const cand of candidates.rows) {
      // Skip what an offer made a moment ago already covers; the constraint would refuse it anyway.
      const clash = made.some((m) => Date.parse(m.start) < cand.end_at.getTime() && cand.start_at.getTime() < Date.parse(m.end));
      if (clash) continue;
      const fact = await this.tryOffer(cand, slot.seatId, s.padding_minutes, nowMs, db, deadline);
      if (fact) made.push(fact);
    }
    return made;
  }

  /**
   * Moves one entry WAITING → OFFERED and inserts its OFFERED reservation in one transaction,
   * holding the seat's booking lock (LockClass.seatBooking) from its start: every writer of a new
   * hold takes it, so a booking batch never waits inside the exclusion constraint for this insert
   * (docs/architecture.md, "Lock order"). It is taken first, while the transaction holds nothing.
   * The guarded UPDATE makes two racing handlers offer at most once; an INSERT that hits the
   * exclusion constraint (someone booked part of the window first) rolls the entry back to
   * WAITING and yields null, so the caller tries the next waiter; so does a deadlock with a
   * racing offer that the retries did not clear.
   */
  private async tryOffer(
    cand: Candidate,
    seatId: number,
    paddingMinutes: number,
    nowMs: number,
    db: Db,
    deadline?: Deadline,
  ): Promise<ReservationFact | null> {
    const now = new Date(nowMs);
    // An offer never outlives the window it offers.
    const expires = new Date(Math.min(nowMs + this.deps.config.offerMs, cand.end_at.getTime()));
    let row: ReservationRow | null;
    try {
      row = await db.transaction(
        async (c) => {
          await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LockClass.seatBooking, seatId]);
          const guard = await c.query(`UPDATE waitlist SET status = 'OFFERED', updated_at = $2 WHERE id = $1 AND status = 'WAITING'`, [
            cand.id,
            now,
          ]);
          if (guard.rowCount === 0) return null;
          const ins = await c.query<ReservationRow>(
            `INSERT INTO reservations (seat_id, user_id, during, hold, status, waitlist_id, offer_expires_at, created_at, updated_at)
             VALUES ($1, $2, tstzrange($3::timestamptz, $4::timestamptz, '[)'),
                     tstzrange($3::timestamptz, $4::timestamptz + make_interval(mins => $5::int), '[)'),
                     'OFFERED', $6, $7, $8, $8)
             RETURNING ${RETURNING_COLUMNS}`,
            [seatId, cand.user_id, cand.start_at, cand.end_at, paddingMinutes, cand.id, expires, now],
          );
          return ins.rows[0] ?? null;
        },
        deadline,
      );
    } catch (err) {
      if (err instanceof DbConflict && (err.reason === 'overlap' || err.reason === 'contention')) return null;
      throw err;
    }
    if (!row) return null;
    const fact = reservationToFact(row);
    this.deps.events.emit({ type: 'reservation', cause: 'offer', reservation: fact, at: now.toISOString() });
    // The waiter needs the entry id to claim (waitlist.claim {id}) and the time to do it by.
    this.deps.events.emit({
      type: 'personal',
      userId: fact.userId,
      kind: 'offer',
      reservation: fact,
      waitlistId: cand.id,
      offerExpiresAt: expires.toISOString(),
      at: now.toISOString(),
    });
    return fact;
  }

  // ---- lifecycle steps (called by the lifecycle worker under its advisory lock) ------------

  /**
   * Lapses offers whose offer_expires_at has passed (reservation → CANCELLED, entry → EXPIRED),
   * tells each user, and passes each slot to the next waiter. Returns counts.
   */
  async expireOffers(nowMs: number, batchSize: number, db: Db = this.deps.db): Promise<{ expired: number; offered: number }> {
    const now = new Date(nowMs);
    let expired = 0;
    let offered = 0;
    for (;;) {
      const rows = await db.transaction(async (c) => {
        const res = await c.query<ReservationRow>(
          `UPDATE reservations SET status = 'CANCELLED', updated_at = $1
            WHERE id IN (SELECT id FROM reservations WHERE status = 'OFFERED' AND offer_expires_at <= $1
                          ORDER BY offer_expires_at, id LIMIT $2)
              AND status = 'OFFERED' AND offer_expires_at <= $1
            RETURNING ${RETURNING_COLUMNS}`,
          [now, batchSize],
        );
        const ids = res.rows.map((r) => r.waitlist_id).filter((x): x is number => x !== null);
        if (ids.length > 0) {
          await c.query(`UPDATE waitlist SET status = 'EXPIRED', updated_at = $2 WHERE id = ANY($1::bigint[]) AND status = 'OFFERED'`, [
            ids,
            now,
          ]);
        }
        return res.rows;
      });
      for (const row of rows) {
        const fact = this.emitReservation('reservation.cancelled', row, now);
        this.deps.events.emit({
          type: 'personal',
          userId: fact.userId,
          kind: 'offerExpired',
          reservation: fact,
          ...(row.waitlist_id !== null ? { waitlistId: row.waitlist_id } : {}),
          at: now.toISOString(),
        });
      }
      for (const row of rows) offered += (await this.passOn(row, nowMs, db)).length;
      expired += rows.length;
      if (rows.length < batchSize) return { expired, offered };
    }
  }

  /**
   * WAITING entries whose window has begun without an offer can no longer be served. OFFERED
   * entries whose reservation is no longer OFFERED were closed by other code (a cancellation
   * of the offered row): the waitlist's own transitions always move both rows together.
   */
  async expireStaleEntries(nowMs: number, db: Db = this.deps.db): Promise<number> {
    const now = new Date(nowMs);
    const stale = await db.query(
      `UPDATE waitlist w SET status = 'EXPIRED', updated_at = $1
        WHERE w.status = 'WAITING' AND NOT ${SERVABLE('w', '$2', '$3')}`,
      [now, this.slotFloor(nowMs), this.deps.rules.slotMinutes],
    );
    const orphaned = await db.query(
      `UPDATE waitlist w SET status = 'EXPIRED', updated_at = $1
        WHERE w.status = 'OFFERED'
          AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.waitlist_id = w.id AND r.status = 'OFFERED')`,
      [now],
    );
    return (stale.rowCount ?? 0) + (orphaned.rowCount ?? 0);
  }

  /**
   * The safety net behind onSlotFreed: offers free slots to WAITING entries whatever freed
   * them (a hook that failed, a seat back in service, a join that raced a cancellation, the
   * rest of a window once a smaller offer lapsed). Seat-specific entries first, then
   * branch-wide ones with the lowest-numbered free seat of their branch, each FIFO.
   */
  async matchWaiting(nowMs: number, batchSize: number, db: Db = this.deps.db): Promise<number> {
    const floor = this.slotFloor(nowMs);
    const slot = this.deps.rules.slotMinutes;
    let offered = 0;
    const seatEntries = await db.query<Candidate & { seat_id: number; padding_minutes: number }>(
      `SELECT w.id, w.user_id, w.seat_id, greatest(lower(w.during), $1) AS start_at, upper(w.during) AS end_at, b.padding_minutes
         FROM waitlist w JOIN seats s ON s.id = w.seat_id JOIN branches b ON b.id = s.branch_id
        WHERE w.status = 'WAITING' AND w.seat_id IS NOT NULL AND s.status = 'IN_SERVICE' AND ${SERVABLE('w', '$1', '$3')}
          AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.seat_id = w.seat_id AND r.status IN ${ACTIVE}
                AND r.hold && tstzrange(greatest(lower(w.during), $1), upper(w.during) + make_interval(mins => b.padding_minutes), '[)'))
        ORDER BY w.created_at, w.id LIMIT $2`,
      [floor, batchSize, slot],
    );
    for (const e of seatEntries.rows) {
      if (await this.tryOffer(e, e.seat_id, e.padding_minutes, nowMs, db)) offered++;
    }
    const branchEntries = await db.query<Candidate & { seat_id: number; padding_minutes: number }>(
      `SELECT w.id, w.user_id, free.id AS seat_id, greatest(lower(w.during), $1) AS start_at, upper(w.during) AS end_at, b.padding_minutes
         FROM waitlist w JOIN branches b ON b.id = w.branch_id
         CROSS JOIN LATERAL (
           SELECT s.id FROM seats s
            WHERE s.branch_id = w.branch_id AND s.status = 'IN_SERVICE'
              AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.seat_id = s.id AND r.status IN ${ACTIVE}
                    AND r.hold && tstzrange(greatest(lower(w.during), $1), upper(w.during) + make_interval(mins => b.padding_minutes), '[)'))
            ORDER BY s.id LIMIT 1) free
        WHERE w.status = 'WAITING' AND w.branch_id IS NOT NULL AND ${SERVABLE('w', '$1', '$3')}
        ORDER BY w.created_at, w.id LIMIT $2`,
      [floor, batchSize, slot],
    );
    for (const e of branchEntries.rows) {
      if (await this.tryOffer(e, e.seat_id, e.padding_minutes, nowMs, db)) offered++;
    }
    return offered;
  }

  // ---- helpers ----------------------------------------------------------------------------

  private passOn(row: ReservationRow, nowMs: number, db: Db): Promise<ReservationFact[]> {
    return this.offerFreedSlot({ seatId: row.seat_id, branchId: row.branch_id, start: row.start_at, end: row.end_at }, nowMs, db);
  }

  private emitReservation(
    cause: 'reservation.cancelled' | 'reservation.created',
    row: ReservationRow,
    at: Date,
  ): ReservationFact {
    const fact = reservationToFact(row);
    this.deps.events.emit({ type: 'reservation', cause, reservation: fact, at: at.toISOString() });
    return fact;
  }

  /**
   * The booking rules as they apply to a waitlist window: waitlist.maxWindowMinutes and
   * .maxAheadDays can only narrow rules.maxDurationMinutes and .maxDaysAhead, never widen them.
   */
  private get windowRules(): RulesConfig {
    const { rules, config } = this.deps;
    return {
      ...rules,
      maxDurationMinutes: Math.min(rules.maxDurationMinutes, config.maxWindowMinutes ?? Infinity),
      maxDaysAhead: Math.min(rules.maxDaysAhead, config.maxAheadDays ?? Infinity),
    };
  }

  /** The seat or branch waited for, with what the window rules need of its branch. */
  private async resolveTarget(target: WaitlistTarget, deadline?: Deadline): Promise<ResolvedTarget> {
    if ('seatId' in target) {
      const res = await this.deps.db.query<{ branch_id: number; status: 'IN_SERVICE' | 'OUT_OF_SERVICE'; timezone: string; hours: BranchHours }>(
        `SELECT s.branch_id, s.status, b.timezone, b.hours FROM seats s JOIN branches b ON b.id = s.branch_id WHERE s.id = $1`,
        [target.seatId],
        deadline,
      );
      const seat = res.rows[0];
      if (!seat) throw new CarrelError(ErrorCode.NOT_FOUND, `no seat ${target.seatId}`);
      return { seatId: target.seatId, branchId: seat.branch_id, seatStatus: seat.status, timezone: seat.timezone, hours: seat.hours };
    }
    const ref = branchIdSql(target.branch, '$1');
    const res = await this.deps.db.query<{ id: number; timezone: string; hours: BranchHours }>(
      `SELECT id, timezone, hours FROM branches WHERE id = ${ref.sql}`,
      [ref.value],
      deadline,
    );
    const branch = res.rows[0];
    if (!branch) throw new CarrelError(ErrorCode.NOT_FOUND, `no branch ${JSON.stringify(ref.value)}`);
    return { seatId: null, branchId: branch.id, seatStatus: null, timezone: branch.timezone, hours: branch.hours };
  }

  private async entryStatus(userId: number, id: number, deadline?: Deadline): Promise<WaitlistStatus | null> {
    const res = await this.deps.db.query<{ status: WaitlistStatus }>(`SELECT status FROM waitlist WHERE id = $1 AND user_id = $2`, [id, userId], deadline);
    return res.rows[0]?.status ?? null;
  }

  private async entries(userId: number, nowMs: number, onlyId?: number, deadline?: Deadline): Promise<WaitlistEntryWire[]> {
    const res = await this.deps.db.query<EntryRow>(
      `SELECT w.id, w.seat_id, coalesce(w.branch_id, s.branch_id) AS branch_id, b.name AS branch_name,
              lower(w.during) AS start_at, upper(w.during) AS end_at, w.status, w.created_at,
              CASE WHEN w.status = 'WAITING' THEN 1 + (
                SELECT count(*)::int FROM waitlist o
                 WHERE o.status = 'WAITING' AND o.seat_id IS NOT DISTINCT FROM w.seat_id
                   AND o.branch_id IS NOT DISTINCT FROM w.branch_id AND o.during && w.during
                   AND (o.created_at, o.id) < (w.created_at, w.id)) END AS position,
              r.id AS reservation_id, r.seat_id AS offer_seat_id, r.offer_expires_at
         FROM waitlist w
         LEFT JOIN seats s ON s.id = w.seat_id
         LEFT JOIN branches b ON b.id = w.branch_id
         LEFT JOIN LATERAL (
           SELECT id, seat_id, offer_expires_at FROM reservations
            WHERE waitlist_id = w.id ORDER BY id DESC LIMIT 1) r ON w.status IN ('OFFERED', 'CLAIMED')
        WHERE w.user_id = $1 AND ${onlyId === undefined ? `(w.status IN ('WAITING', 'OFFERED') OR upper(w.during) > $2)` : 'w.id = $2'}
        ORDER BY lower(w.during), w.id
        LIMIT ${MINE_LIMIT}`,
      onlyId === undefined ? [userId, new Date(nowMs)] : [userId, onlyId],
      deadline,
    );
    return res.rows.map(entryToWire);
  }

}

/** Thrown inside a transaction to roll it back and re-read (leave's entry moved under it). */
class Retry extends Error {}

function notFound(id: number): CarrelError {
  // Someone else's entry is indistinguishable from a missing one: never leak another user's data.
  return new CarrelError(ErrorCode.NOT_FOUND, `no waitlist entry ${id}`);
}

/** NOT_FOUND, unless the caller's account is gone: then UNAUTHENTICATED (core/accountCheck.ts). */
async function notFoundFor(db: Db, userId: number, id: number, deadline?: Deadline): Promise<CarrelError> {
  await refuseIfAccountGone(db, userId, deadline);
  return notFound(id);
}

function entryToWire(row: EntryRow): WaitlistEntryWire {
  const wire: WaitlistEntryWire = {
    id: row.id,
    position: row.position,
    branchId: row.branch_id,
    start: row.start_at.toISOString(),
    end: row.end_at.toISOString(),
    status: row.status,
    createdAt: row.created_at.toISOString(),
  };
  if (row.seat_id !== null) wire.seatId = row.seat_id;
  if (row.branch_name !== null) wire.branch = row.branch_name;
  if (row.status === 'OFFERED' && row.reservation_id !== null && row.offer_expires_at && row.offer_seat_id !== null) {
    wire.offer = { reservationId: row.reservation_id, seatId: row.offer_seat_id, offerExpiresAt: row.offer_expires_at.toISOString() };
  }
  if (row.status === 'CLAIMED' && row.reservation_id !== null) wire.reservationId = row.reservation_id;
  return wire;
}
