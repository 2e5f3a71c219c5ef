// Branches and seats (docs/protocol.md, "RPC methods"): the branch list with live counts, a seat's
// booked intervals, and the two admin changes (seat in/out of service, opening hours). Listing
// seats is seatListing.ts, because it is the hot path and carries a cache.
import { CarrelError, ErrorCode } from '../errors.js';
import type { Db } from '../db/db.js';
import type { Deadline } from '../deadline.js';
import type { Clock } from './clock.js';
import { ACTIVE_STATUSES_SQL, type CoreEventSink } from './events.js';
import type { SeatListing } from './seatListing.js';
import type { BranchRef } from '../wire/branchRef.js';
import type { BranchHours } from '../wire/hours.js';
import type { BranchWire, SeatWire } from '../wire/types.js';
import { branchIdSql } from './branchRef.js';
import type { LiveView } from './liveView.js';
import type { SeatContexts } from './seatContexts.js';
import { localDayStart, parseLocalDate, zonedInstant } from './zonedTime.js';

export type { SeatCounts } from '../wire/types.js';


export interface SeatServiceOptions {
  db: Db;
  clock: Clock;
  events: CoreEventSink;
  listing: SeatListing;
  /** Branch counts: the live model's answers (sensors included). */
  live: LiveView;
  /** A seat's branch, zone, hours and padding (seats.availability). */
  contexts: SeatContexts;
  /** How long the branch list is reused (discovery.branchListCacheMs); 0: never. */
  branchListCacheMs?: number;
}

interface BranchRows {
  rows: BranchCountRow[];
  mark: number;
}

interface BranchCountRow {
  id: number;
  name: string;
  timezone: string;
  hours: BranchHours;
  padding_minutes: number;
  /** Seats of the branch in the database: the live model looks for added ones when it knows fewer. */
  total: number;
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
   * branches.list needs no token, so it must not cost a query per call (docs/fairness.md): the
   * rows are kept for branchListCacheMs and while no seat or reservation changed (the listing's
   * generation) and the live model found no branch or seat added (its layout version), and
   * concurrent calls share one read. Counts come from the live model, so they are current on
   * every call whatever the age of the rows.
   */
  private branchRowsKept: { gen: string; untilMs: number; rows: Promise<BranchRows> } | undefined;

  constructor(private readonly opts: SeatServiceOptions) {}

  /** Every branch with its seats counted by live state (LiveView.countsOf). */
  async listBranches(ref?: BranchRef, deadline?: Deadline): Promise<BranchWire[]> {
    const { rows, mark } = ref ? await this.branchRows(ref, deadline) : await this.allBranchRows(deadline);
    const counts = await this.opts.live.countsOf(rows, mark);
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      timezone: r.timezone,
      hours: r.hours,
      paddingMinutes: r.padding_minutes,
      counts: counts.get(r.id)!,
    }));
  }

  private allBranchRows(deadline?: Deadline): Promise<BranchRows> {
    const ttl = this.opts.branchListCacheMs ?? 0;
    const now = this.opts.clock.now();
    const gen = `${this.opts.listing.generation}|${this.opts.live.layoutVersion}`;
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

  /** The branch rows, with the LiveView mark taken before they were read (LiveView.countsOf). */
  private async branchRows(ref: BranchRef | undefined, deadline?: Deadline): Promise<BranchRows> {
    const mark = this.opts.live.lookMark;
    const values: unknown[] = [];
    let where = '';
    if (ref) {
      const branch = branchIdSql(ref, '$1');
      values.push(branch.value);
      where = `WHERE b.id = ${branch.sql}`;
    }
    const res = await this.opts.db.query<BranchCountRow>(
      `SELECT b.id, b.name, b.timezone, b.hours, b.padding_minutes, count(s.id)::int AS total
       FROM branches b
       LEFT JOIN seats s ON s.branch_id = b.id
       ${where}
       GROUP BY b.id
       ORDER BY b.id`,
      values,
      deadline,
    );
    return { rows: res.rows, mark };
  }

  async getSeat(seatId: number, deadline?: Deadline): Promise<SeatWire> {
    const seat = await this.opts.listing.get(seatId, deadline);
    if (!seat) throw new CarrelError(ErrorCode.NOT_FOUND, `no seat ${seatId}`);
    return seat;
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
    const seat = await this.opts.contexts.seatContext(seatId, deadline);
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
    this.opts.contexts.forget(row.id);
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
