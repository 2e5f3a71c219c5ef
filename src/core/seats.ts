// Branches and seats (docs/protocol.md, "RPC methods"): the branch list with live counts, a seat's
// booked intervals, and the two admin changes (seat in/out of service, opening hours). Listing
// seats is seatListing.ts, because it is the hot path and carries a cache.
import { CarrelError, ErrorCode } from '../errors.js';
import type { Db } from '../db/db.js';
import type { Deadline } from '../deadline.js';
import type { Clock } from './clock.js';
import type { CoreEventSink } from './events.js';
import { ACTIVE_STATUSES_SQL, liveStateSql } from './liveState.js';
import type { RulesConfig } from './rules.js';
import type { SeatListing } from './seatListing.js';
import type { BranchRef } from '../wire/branchRef.js';
import type { BranchHours } from '../wire/hours.js';
import type { BranchWire, SeatWire } from '../wire/types.js';
import { branchIdSql } from './branchRef.js';
import type { LiveView } from './liveView.js';
import { localDayStart, parseLocalDate, zonedInstant } from './zonedTime.js';

export type { SeatCounts } from './liveView.js';

/**
 * What booking needs to know about a seat and its branch. Whether the seat is in service is
 * not here: the booking statement checks that itself, at the moment it books.
 */
export interface SeatContext extends BranchContext {
  seatId: number;
}

/** What booking needs to know about a branch: its zone, hours and cleaning buffer. */
export interface BranchContext {
  branchId: number;
  timezone: string;
  hours: BranchHours;
  paddingMinutes: number;
}

export interface SeatServiceOptions {
  db: Db;
  clock: Clock;
  rules: RulesConfig;
  events: CoreEventSink;
  listing: SeatListing;
  /**
   * The live state's owner: branch counts are its (sensors included) when it knows the branch;
   * the reservation-only SQL counts (liveState.ts) answer otherwise, e.g. before it has loaded.
   */
  live?: LiveView;
  /** How long a seat's booking context is reused (discovery.seatContextCacheMs); 0: never. */
  contextCacheMs?: number;
  /** How long the branch list is reused (discovery.branchListCacheMs); 0: never. */
  branchListCacheMs?: number;
}

interface BranchCountRow {
  id: number;
  name: string;
  timezone: string;
  hours: BranchHours;
  padding_minutes: number;
  total: number;
  free: number;
  reserved: number;
  occupied: number;
  unavailable: number;
}

/** A day or window asked of seats.availability is at most this long. */
export const MAX_AVAILABILITY_WINDOW_MS = 31 * 24 * 3600_000;

/**
 * The days seats.availability answers for, inclusive (docs/rules.md, "Dates"). Outside them
 * nothing can have been booked, and the time-zone data is no longer the modern offsets the
 * zone arithmetic relies on: `date: "0100-01-01"` gave a window starting in year -3501.
 */
export const AVAILABILITY_FIRST_DAY = '2000-01-01';
export const AVAILABILITY_LAST_DAY = '2100-12-31';
const AVAILABILITY_FROM_MS = Date.UTC(2000, 0, 1);
const AVAILABILITY_UNTIL_MS = Date.UTC(2101, 0, 1);

export class SeatService {
  /**
   * What bookings ask of seats and branches, so a booking costs one round trip (carrel_book).
   * A seat's branch never changes, so it is kept; a branch's zone, hours and padding are reused
   * for contextCacheMs. Safe because the booking statement re-checks the seat's status and takes
   * the padding from the branch row itself: a stale entry can only make the opening-hours check
   * use hours changed on another instance less than contextCacheMs ago. Changes made here clear
   * it at once. Bounded by the number of seats and branches (a missing seat is never stored).
   */
  private readonly seatBranch = new Map<number, number>();
  private readonly branchContexts = new Map<number, { timezone: string; hours: BranchHours; paddingMinutes: number; untilMs: number }>();
  /** Branch ids by name, for names spelt exactly as stored: so at most one entry per branch. */
  private readonly branchIds = new Map<string, number>();

  /**
   * branches.list needs no token, so it must not cost a query per call (docs/fairness.md): the
   * rows are kept for branchListCacheMs and while no seat or reservation changed (the listing's
   * generation), and concurrent calls share one read. Counts come from the live model when it
   * runs, so they are current on every call whatever the age of the rows.
   */
  private branchRowsKept: { gen: number; untilMs: number; rows: Promise<BranchCountRow[]> } | undefined;

  constructor(private readonly opts: SeatServiceOptions) {}

  /**
   * Every branch with its seats counted by live state: LiveView.counts when the live model knows
   * the branch, else the SQL counts of the same definition without sensors (liveState.ts).
   */
  async listBranches(ref?: BranchRef, deadline?: Deadline): Promise<BranchWire[]> {
    const rows = ref ? await this.branchRows(ref, deadline) : await this.allBranchRows(deadline);
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      timezone: r.timezone,
      hours: r.hours,
      paddingMinutes: r.padding_minutes,
      counts: this.opts.live?.counts(r.id, r.total) ?? { total: r.total, free: r.free, reserved: r.reserved, occupied: r.occupied, unavailable: r.unavailable },
    }));
  }

  private allBranchRows(deadline?: Deadline): Promise<BranchCountRow[]> {
    const ttl = this.opts.branchListCacheMs ?? 0;
    const now = this.opts.clock.now();
    const gen = this.opts.listing.generation;
    const kept = this.branchRowsKept;
    if (kept && kept.gen === gen && kept.untilMs > now) return kept.rows;
    const rows = this.branchRows(undefined, deadline);
    if (ttl > 0) {
      const entry = { gen, untilMs: now + ttl, rows };
      this.branchRowsKept = entry;
      // A failed read (this caller's deadline, its refusal) is nobody else's answer.
      rows.catch(() => {
        if (this.branchRowsKept === entry) this.branchRowsKept = undefined;
      });
    }
    return rows;
  }

  private async branchRows(ref: BranchRef | undefined, deadline?: Deadline): Promise<BranchCountRow[]> {
    const values: unknown[] = [new Date(this.opts.clock.now())];
    let where = '';
    if (ref) {
      const branch = branchIdSql(ref, '$2');
      values.push(branch.value);
      where = `WHERE b.id = ${branch.sql}`;
    }
    const res = await this.opts.db.query<BranchCountRow>(
      `SELECT b.id, b.name, b.timezone, b.hours, b.padding_minutes,
         count(s.id)::int AS total,
         count(s.id) FILTER (WHERE l.live = 'free')::int AS free,
         count(s.id) FILTER (WHERE l.live = 'reserved')::int AS reserved,
         count(s.id) FILTER (WHERE l.live = 'occupied')::int AS occupied,
         count(s.id) FILTER (WHERE l.live = 'unavailable')::int AS unavailable
       FROM branches b
       LEFT JOIN seats s ON s.branch_id = b.id
       LEFT JOIN LATERAL (SELECT ${liveStateSql('$1', this.opts.rules)} AS live) l ON s.id IS NOT NULL
       ${where}
       GROUP BY b.id
       ORDER BY b.id`,
      values,
      deadline,
    );
    return res.rows;
  }

  async getSeat(seatId: number, deadline?: Deadline): Promise<SeatWire> {
    const seat = await this.opts.listing.get(seatId, deadline);
    if (!seat) throw new CarrelError(ErrorCode.NOT_FOUND, `no seat ${seatId}`);
    return seat;
  }

  async seatContext(seatId: number, deadline?: Deadline): Promise<SeatContext> {
    const ttl = this.opts.contextCacheMs ?? 0;
    const now = this.opts.clock.now();
    const branchId = this.seatBranch.get(seatId);
    const branch = branchId === undefined ? undefined : this.branchContexts.get(branchId);
    if (branchId !== undefined && branch && branch.untilMs > now) {
      return { seatId, branchId, timezone: branch.timezone, hours: branch.hours, paddingMinutes: branch.paddingMinutes };
    }
    const res = await this.opts.db.query<{ id: number; branch_id: number; timezone: string; hours: BranchHours; padding_minutes: number }>(
      `SELECT s.id, s.branch_id, b.timezone, b.hours, b.padding_minutes
       FROM seats s JOIN branches b ON b.id = s.branch_id WHERE s.id = $1`,
      [seatId],
      deadline,
    );
    const r = res.rows[0];
    if (!r) throw new CarrelError(ErrorCode.NOT_FOUND, `no seat ${seatId}`);
    if (ttl > 0) {
      this.seatBranch.set(r.id, r.branch_id);
      this.branchContexts.set(r.branch_id, { timezone: r.timezone, hours: r.hours, paddingMinutes: r.padding_minutes, untilMs: now + ttl });
    }
    return { seatId: r.id, branchId: r.branch_id, timezone: r.timezone, hours: r.hours, paddingMinutes: r.padding_minutes };
  }

  /**
   * The branch a reference names, with what booking needs of it (a best-available booking names
   * a branch, not a seat), kept for contextCacheMs as a seat's is. NOT_FOUND for no such branch.
   */
  async branchContext(ref: BranchRef, deadline?: Deadline): Promise<BranchContext> {
    const ttl = this.opts.contextCacheMs ?? 0;
    const now = this.opts.clock.now();
    const id = 'id' in ref ? ref.id : this.branchIds.get(ref.name);
    const kept = id === undefined ? undefined : this.branchContexts.get(id);
    if (id !== undefined && kept && kept.untilMs > now) {
      return { branchId: id, timezone: kept.timezone, hours: kept.hours, paddingMinutes: kept.paddingMinutes };
    }
    const named = branchIdSql(ref, '$1');
    const res = await this.opts.db.query<{ id: number; name: string; timezone: string; hours: BranchHours; padding_minutes: number }>(
      `SELECT id, name, timezone, hours, padding_minutes FROM branches WHERE id = ${named.sql}`,
      [named.value],
      deadline,
    );
    const r = res.rows[0];
    if (!r) throw new CarrelError(ErrorCode.NOT_FOUND, `no branch ${'id' in ref ? ref.id : JSON.stringify(ref.name)}`);
    if (ttl > 0) {
      this.branchContexts.set(r.id, { timezone: r.timezone, hours: r.hours, paddingMinutes: r.padding_minutes, untilMs: now + ttl });
      if ('name' in ref && ref.name === r.name) this.branchIds.set(r.name, r.id);
    }
    return { branchId: r.id, timezone: r.timezone, hours: r.hours, paddingMinutes: r.padding_minutes };
  }

  /**
   * A seat's booked intervals in a window: a local day of the branch (default today there) or
   * an explicit [start, end). The intervals are the holds — the booking plus the branch's
   * cleaning buffer — because that is what another booking cannot overlap.
   */
  async availability(
    seatId: number,
    window: { date?: string } | { startMs: number; endMs: number },
    deadline?: Deadline,
  ): Promise<{ seatId: number; start: string; end: string; booked: Array<{ start: string; end: string }> }> {
    // The arguments are checked before the seat is looked up, so junk costs no query.
    let d: { year: number; month: number; day: number } | undefined;
    if ('startMs' in window) checkAvailabilityWindow(window.startMs, window.endMs);
    else if (window.date !== undefined) d = availabilityDate(window.date);
    const seat = await this.seatContext(seatId, deadline);
    let startMs: number;
    let endMs: number;
    if ('startMs' in window) {
      ({ startMs, endMs } = window);
    } else if (d) {
      startMs = zonedInstant(d.year, d.month, d.day, 0, seat.timezone);
      endMs = zonedInstant(d.year, d.month, d.day, 24 * 60, seat.timezone);
    } else {
      startMs = localDayStart(this.opts.clock.now(), seat.timezone);
      endMs = localDayStart(startMs + 12 * 3600_000, seat.timezone, 1);
    }
    const res = await this.opts.db.query<{ start_at: Date; end_at: Date }>(
      `SELECT lower(hold) AS start_at, upper(hold) AS end_at FROM reservations
       WHERE seat_id = $1 AND status IN ${ACTIVE_STATUSES_SQL} AND hold && tstzrange($2, $3)
       ORDER BY lower(hold)`,
      [seatId, new Date(startMs), new Date(endMs)],
      deadline,
    );
    return {
      seatId,
      start: new Date(startMs).toISOString(),
      end: new Date(endMs).toISOString(),
      booked: res.rows.map((r) => ({ start: r.start_at.toISOString(), end: r.end_at.toISOString() })),
    };
  }

  /** admin.seats.setStatus: existing bookings stay; new ones are refused while out of service. */
  async setSeatStatus(seatId: number, status: 'IN_SERVICE' | 'OUT_OF_SERVICE'): Promise<SeatWire> {
    const res = await this.opts.db.query<{ id: number; branch_id: number }>(
      'UPDATE seats SET status = $2 WHERE id = $1 RETURNING id, branch_id',
      [seatId, status],
    );
    const row = res.rows[0];
    if (!row) throw new CarrelError(ErrorCode.NOT_FOUND, `no seat ${seatId}`);
    this.opts.events.emit({
      type: 'seatStatus',
      cause: 'admin',
      seatId,
      branchId: row.branch_id,
      status,
      at: new Date(this.opts.clock.now()).toISOString(),
    });
    return this.getSeat(seatId);
  }

  /** admin.branches.setHours: the hours object has been validated (wire/hours.ts validateHours). */
  async setBranchHours(ref: BranchRef, hours: BranchHours): Promise<BranchWire> {
    const named = branchIdSql(ref, '$1');
    const res = await this.opts.db.query<{ id: number }>(
      `UPDATE branches SET hours = $2::jsonb WHERE id = ${named.sql} RETURNING id`,
      [named.value, JSON.stringify(hours)],
    );
    const row = res.rows[0];
    if (!row) throw new CarrelError(ErrorCode.NOT_FOUND, `no branch ${'id' in ref ? ref.id : JSON.stringify(ref.name)}`);
    this.branchContexts.delete(row.id);
    this.branchRowsKept = undefined;
    const [branch] = await this.listBranches({ id: row.id });
    return branch!;
  }
}

/** A seats.availability date: a real YYYY-MM-DD within the answered days, else INVALID_ARGUMENT naming `date`. */
function availabilityDate(text: string): { year: number; month: number; day: number } {
  const d = parseLocalDate(text);
  if (!d) throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'date must be a real YYYY-MM-DD', { field: 'date' });
  // YYYY-MM-DD compares as text in calendar order.
  if (text < AVAILABILITY_FIRST_DAY || text > AVAILABILITY_LAST_DAY) {
    throw new CarrelError(ErrorCode.INVALID_ARGUMENT, `date must be a day from ${AVAILABILITY_FIRST_DAY} to ${AVAILABILITY_LAST_DAY}`, {
      field: 'date',
    });
  }
  return d;
}

/** A seats.availability window: non-empty, at most 31 days, and within the answered days (UTC). */
function checkAvailabilityWindow(startMs: number, endMs: number): void {
  for (const [field, ms] of [['start', startMs], ['end', endMs]] as const) {
    if (!(ms >= AVAILABILITY_FROM_MS && ms <= AVAILABILITY_UNTIL_MS)) {
      throw new CarrelError(ErrorCode.INVALID_ARGUMENT, `${field} must lie between ${AVAILABILITY_FIRST_DAY} and ${AVAILABILITY_LAST_DAY} (UTC)`, {
        field,
      });
    }
  }
  if (endMs <= startMs) throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'end must be after start');
  if (endMs - startMs > MAX_AVAILABILITY_WINDOW_MS) {
    throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'the window may span at most 31 days');
  }
}
