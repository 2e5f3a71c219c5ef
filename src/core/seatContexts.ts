// What booking needs to know about a seat and its branch (its zone, hours and cleaning buffer),
// read once per booking and kept briefly: ReservationService asks for it on every booking and
// SeatService for seats.availability. It is a part of its own so the booking core can be built
// before the listings, which need the live model, which hands its sensor transitions to the
// booking core (docs/architecture.md, "The composition root").
import { CarrelError, ErrorCode } from '../errors.js';
import type { Db } from '../db/db.js';
import type { Deadline } from '../deadline.js';
import type { Clock } from './clock.js';
import type { BranchHours } from '../wire/hours.js';

/**
 * What booking needs to know about a seat and its branch. Whether the seat is in service is
 * not here: the booking statement checks that itself, at the moment it books.
 */
export interface SeatContext {
  seatId: number;
  branchId: number;
  timezone: string;
  hours: BranchHours;
  paddingMinutes: number;
}

export interface SeatContextsOptions {
  db: Db;
  clock: Clock;
  /** How long a seat's booking context is reused (discovery.seatContextCacheMs); 0: never. */
  contextCacheMs?: number;
}

export class SeatContexts {
  /**
   * A seat's branch never changes, so it is kept; a branch's zone, hours and padding are reused
   * for contextCacheMs. Safe because the booking statement re-checks the seat's status and takes
   * the padding from the branch row itself: a stale entry can only make the opening-hours check
   * use hours changed on another instance less than contextCacheMs ago. Changes made here clear
   * it at once (forget). Bounded by the number of seats and branches (a missing seat is never stored).
   */
  private readonly seatBranch = new Map<number, number>();
  private readonly branchContexts = new Map<number, { timezone: string; hours: BranchHours; paddingMinutes: number; untilMs: number }>();

  constructor(private readonly opts: SeatContextsOptions) {}

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

  /** The branch's hours changed here: its next booking reads them again. */
  forget(branchId: number): void {
    this.branchContexts.delete(branchId);
  }
}
