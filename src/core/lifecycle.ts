// The lifecycle worker (docs/protocol.md, "Reservation and waitlist statuses"): moves reservations
// along with time. CONFIRMED bookings nobody checked in to within the grace become NO_SHOW (and
// their slot goes to the waitlist), CHECKED_IN ones past their end become COMPLETED, lapsed offers
// are passed to the next waiter, and free slots are matched to waiters. One instance at a time runs
// it (a PostgreSQL advisory lock held by the tick's own session, SessionLock.lifecycle in
// db/lockKeys.ts); every step is a guarded UPDATE … WHERE status = …, so a repeated or
// overlapping tick changes nothing twice. Time comes from the caller (`tick(nowMs)`).
import type { Db } from '../db/db.js';
import { SessionLock } from '../db/lockKeys.js';
import type { Logger } from '../obs/log.js';
import type { Clock } from './clock.js';
import type { CoreEventSink } from './events.js';
import { RETURNING_COLUMNS, reservationToFact, type ReservationRow } from './reservationRow.js';
import type { Waitlist } from './waitlist.js';
import type { RulesConfig } from './rules.js';

export interface LifecycleConfig {
  // noShowGraceMinutes comes from rules.checkInGraceMinutes (the check-in window's close).
  enabled: boolean;
  tickMs: number;
  noShowGraceMinutes: number;
  batchSize: number;
}

export interface LifecycleDeps {
  db: Db;
  clock: Clock;
  events: CoreEventSink;
  waitlist: Waitlist;
  config: Readonly<LifecycleConfig>;
  /** rules.strikes: each NO_SHOW made here gives its user a strike (docs/rules.md, "Strikes and suspension"). */
  strikes: RulesConfig['strikes'];
  log: Logger;
}

export interface TickResult {
  /** False when another session held the lifecycle lock, so this tick did nothing. */
  ran: boolean;
  noShows: number;
  completed: number;
  offersExpired: number;
  offersMade: number;
  entriesExpired: number;
}

export class LifecycleWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(private readonly deps: LifecycleDeps) {}

  /** Starts ticking every tickMs; ticks never overlap within this process. */
  start(): void {
    if (this.stopped || this.timer) return;
    this.schedule();
  }

  /** Stops the timer and waits for a tick in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.tick(this.deps.clock.now())
        .catch((err: unknown) => this.deps.log.warn({ err }, 'lifecycle tick failed; retrying next tick'))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.schedule();
        });
    }, this.deps.config.tickMs);
    this.timer.unref();
  }

  /** One pass at time nowMs. Skips (ran: false) when another instance holds the lock. */
  async tick(nowMs: number = this.deps.clock.now()): Promise<TickResult> {
    const result: TickResult = { ran: false, noShows: 0, completed: 0, offersExpired: 0, offersMade: 0, entriesExpired: 0 };
    // After any failure the session may still hold the lock or an open transaction: Db.session
    // discards its connection then, which releases both.
    return this.deps.db.session(async (session) => {
      const lock = await session.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [SessionLock.lifecycle]);
      if (!lock.rows[0]?.ok) return result;
      result.ran = true;
      try {
        await this.steps(session, nowMs, result);
      } finally {
        await session.query('SELECT pg_advisory_unlock($1)', [SessionLock.lifecycle]);
      }
      return result;
    });
  }

  private async steps(session: Db, nowMs: number, result: TickResult): Promise<void> {
    const { waitlist, config } = this.deps;
    // Lapsed offers first: their slots go to the next waiters before anything else is matched.
    const offers = await waitlist.expireOffers(nowMs, config.batchSize, session);
    result.offersExpired = offers.expired;
    result.offersMade += offers.offered;
    const noShow = await this.markNoShows(session, nowMs);
    result.noShows = noShow.count;
    result.offersMade += noShow.offered;
    result.completed = await this.markCompleted(session, nowMs);
    result.entriesExpired = await waitlist.expireStaleEntries(nowMs, session);
    result.offersMade += await waitlist.matchWaiting(nowMs, config.batchSize, session);
  }

  /**
   * CONFIRMED bookings whose check-in window closed (start + grace) — or that ended, for
   * bookings shorter than the grace — become NO_SHOW; the rest of each slot goes to the waitlist.
   */
  private async markNoShows(session: Db, nowMs: number): Promise<{ count: number; offered: number }> {
    const now = new Date(nowMs);
    const cutoff = new Date(nowMs - this.deps.config.noShowGraceMinutes * 60_000);
    let count = 0;
    let offered = 0;
    for (;;) {
      const rows = await this.transition(
        session,
        `UPDATE reservations SET status = 'NO_SHOW', updated_at = $1
          WHERE id IN (SELECT id FROM reservations WHERE status = 'CONFIRMED' AND (lower(during) <= $2 OR upper(during) <= $1)
                        ORDER BY lower(during), id LIMIT $3)
            AND status = 'CONFIRMED' AND (lower(during) <= $2 OR upper(during) <= $1)
          RETURNING ${RETURNING_COLUMNS}`,
        [now, cutoff, this.deps.config.batchSize],
        (ids) => ({
          text: 'SELECT carrel_strike($1::bigint[], $2, $3, $4, $5, $6)',
          values: [ids, 'noShow', now, this.deps.strikes.limit, this.deps.strikes.windowDays, this.deps.strikes.suspendDays],
        }),
      );
      for (const row of rows) {
        const fact = reservationToFact(row);
        this.deps.events.emit({ type: 'reservation', cause: 'noShow', reservation: fact, at: now.toISOString() });
        this.deps.events.emit({ type: 'personal', userId: fact.userId, kind: 'noShow', reservation: fact, at: now.toISOString() });
      }
      for (const row of rows) {
        const freed = { seatId: row.seat_id, branchId: row.branch_id, start: row.start_at, end: row.end_at };
        offered += (await this.deps.waitlist.offerFreedSlot(freed, nowMs, session)).length;
      }
      count += rows.length;
      if (rows.length < this.deps.config.batchSize) return { count, offered };
    }
  }

  /** CHECKED_IN bookings past their end become COMPLETED. */
  private async markCompleted(session: Db, nowMs: number): Promise<number> {
    const now = new Date(nowMs);
    let count = 0;
    for (;;) {
      const rows = await this.transition(
        session,
        `UPDATE reservations SET status = 'COMPLETED', updated_at = $1
          WHERE id IN (SELECT id FROM reservations WHERE status = 'CHECKED_IN' AND upper(during) <= $1
                        ORDER BY upper(during), id LIMIT $2)
            AND status = 'CHECKED_IN' AND upper(during) <= $1
          RETURNING ${RETURNING_COLUMNS}`,
        [now, this.deps.config.batchSize],
      );
      for (const row of rows) {
        this.deps.events.emit({ type: 'reservation', cause: 'completed', reservation: reservationToFact(row), at: now.toISOString() });
      }
      count += rows.length;
      if (rows.length < this.deps.config.batchSize) return count;
    }
  }

  /**
   * One guarded UPDATE in its own transaction, with `then` (a statement over the ids it changed)
   * in the same transaction; events are emitted by the caller after commit.
   */
  private transition(session: Db, sql: string, values: unknown[], then?: (ids: number[]) => { text: string; values: unknown[] }): Promise<ReservationRow[]> {
    return session.transaction(async (c) => {
      const rows = (await c.query<ReservationRow>(sql, values)).rows;
      if (then && rows.length > 0) {
        const q = then(rows.map((r) => r.id));
        await c.query(q.text, q.values);
      }
      return rows;
    });
  }
}
