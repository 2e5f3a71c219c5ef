// What booking needs to know about a seat and its branch (its zone, hours and cleaning buffer),
// read once per booking and kept briefly: ReservationService asks for it on every booking (of a
// seat, or of the best free seat of a branch) and SeatService for seats.availability. It is a part of its own so the booking core can be built
// before the listings, which need the live model, which hands its sensor transitions to the
// booking core (docs/architecture.md, "The composition root").
import { CarrelError, ErrorCode } from '../errors.js';
import type { Db } from '../db/db.js';
import type { Deadline } from '../deadline.js';
import type { Clock } from './clock.js';
import type { BranchHours } from '../wire/hours.js';
import type { BranchRef } from '../wire/branchRef.js';
import { branchIdSql } from './branchRef.js';

/** What booking needs to know about a branch: its zone, hours and cleaning buffer. */
export interface BranchContext {
  branchId: number;
  timezone: string;
  hours: BranchHours;
  paddingMinutes: number;
}

/**
 * What booking needs to know about a seat and its branch. Whether the seat is in service is
 * not here: the booking statement checks that itself, at the moment it books.
 */
export interface SeatContext extends BranchContext {
  seatId: number;
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
  /** Branch ids by name, for names spelt exactly as stored: so at most one entry per branch. */
  private readonly branchIds = new Map<string, number>();
  /**
   * Reads under way, by what they look up: requests that miss together (the opening rush: thousands
   * of bookings of one branch in one second) share one read instead of queueing thousands at the
   * database gate. Bounded by the requests in flight.
   */
  private readonly reading = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: SeatContextsOptions) {}

  async seatContext(seatId: number, deadline?: Deadline): Promise<SeatContext> {
    const ttl = this.opts.contextCacheMs ?? 0;
    const now = this.opts.clock.now();
    const kept = this.known({ seatId });
    if (kept) return { seatId, ...kept };
    const res = await this.once(`seat:${seatId}`, () =>
      this.opts.db.query<{ id: number; branch_id: number; timezone: string; hours: BranchHours; padding_minutes: number }>(
        `SELECT s.id, s.branch_id, b.timezone, b.hours, b.padding_minutes
         FROM seats s JOIN branches b ON b.id = s.branch_id WHERE s.id = $1`,
        [seatId],
        deadline,
      ),
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
   * What seatContext or branchContext would give, when this instance has it now without a read
   * (their cached answer); undefined otherwise.
   */
  known(of: { seatId: number } | { branch: BranchRef }): BranchContext | undefined {
    const id = 'seatId' in of ? this.seatBranch.get(of.seatId) : 'id' in of.branch ? of.branch.id : this.branchIds.get(of.branch.name);
    const kept = id === undefined ? undefined : this.branchContexts.get(id);
    if (id === undefined || !kept || kept.untilMs <= this.opts.clock.now()) return undefined;
    return { branchId: id, timezone: kept.timezone, hours: kept.hours, paddingMinutes: kept.paddingMinutes };
  }

  /**
   * The branch a reference names, with what booking needs of it (a best-available booking names
   * a branch, not a seat), kept for contextCacheMs as a seat's is. NOT_FOUND for no such branch.
   */
  async branchContext(ref: BranchRef, deadline?: Deadline): Promise<BranchContext> {
    const ttl = this.opts.contextCacheMs ?? 0;
    const now = this.opts.clock.now();
    const kept = this.known({ branch: ref });
    if (kept) return kept;
    const named = branchIdSql(ref, '$1');
    const res = await this.once(`branch:${'id' in ref ? ref.id : `name:${ref.name}`}`, () =>
      this.opts.db.query<{ id: number; name: string; timezone: string; hours: BranchHours; padding_minutes: number }>(
        `SELECT id, name, timezone, hours, padding_minutes FROM branches WHERE id = ${named.sql}`,
        [named.value],
        deadline,
      ),
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
   * fetch's result, shared with whoever asks for the same key while it runs. Only a success is
   * shared: the first asker's failure (its deadline, its refusal at the gate) is not the others',
   * who then read for themselves.
   */
  private async once<T>(key: string, fetch: () => Promise<T>): Promise<T> {
    const pending = this.reading.get(key) as Promise<T> | undefined;
    if (pending) {
      try {
        return await pending;
      } catch {
        return fetch();
      }
    }
    const read = fetch();
    this.reading.set(key, read);
    try {
      return await read;
    } finally {
      this.reading.delete(key);
    }
  }

  /** The branch's hours changed here: its next booking reads them again. */
  forget(branchId: number): void {
    this.branchContexts.delete(branchId);
  }
}
