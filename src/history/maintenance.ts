// Keeps the occupancy history (docs/reports.md; db/migrations/013_occupancy_history.sql) in
// shape, at start and then hourly, on every instance (the database lets one at a time do it):
// monthly partitions made ahead of time, months past history.retentionDays dropped whole, the
// open intervals of a server process that died closed at its last sign of life; and the days of
// each branch summed up for the utilization report (src/reports/rollup.ts).
import { SessionLock } from '../db/lockKeys.js';
import type pg from 'pg';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import { localParts, zonedInstant } from '../core/zonedTime.js';
import { addDays, formatDate, type LocalDate } from '../reports/reportTime.js';
import { rollUpDays, type BranchInfo, type SeatInfo } from '../reports/rollup.js';

export const MAINTAIN_EVERY_MS = 3_600_000;
export const ROLL_FIRST_AFTER_MS = 5 * 60_000;
/** A local day is summed up once it has been over this long, and summed again each round for this long after. */
export const ROLL_AFTER_MS = 3_600_000;
export const REROLL_FOR_MS = 48 * 3_600_000;
/** Days not summed up yet, per branch and round, newest first: a backlog is worked off over the hours. */
export const ROLL_DAYS_PER_ROUND = 14;
/** A day's sums are one statement of their own, not a request: they may take longer. */
const ROLL_STATEMENT_TIMEOUT_MS = 120_000;

export interface HistoryMaintenanceOptions {
  db: pg.Pool;
  clock: Clock;
  log: Logger;
  retentionDays: number;
  /** A writer silent this long is taken to have died (writerStaleAfterMs). */
  staleAfterMs: number;
}

export interface MaintainResult {
  made: number;
  dropped: number;
  closed: number;
  /** Branch-days summed up for the report. */
  rolled: number;
}

export class HistoryMaintenance {
  private timer: NodeJS.Timeout | undefined;
  private first: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopping = false;

  constructor(private readonly opts: HistoryMaintenanceOptions) {}

  /**
   * Runs the partitions and the rest now (a failure is logged, not thrown: the next round tries
   * again), then every hour a round with the days' sums, the first of them ROLL_FIRST_AFTER_MS
   * after start (a start is busy enough; until then a report computes those days itself).
   */
  async start(): Promise<void> {
    await this.runLogged(false);
    this.first ??= setTimeout(() => void this.runLogged(true), ROLL_FIRST_AFTER_MS);
    this.first.unref();
    this.timer ??= setInterval(() => void this.runLogged(true), MAINTAIN_EVERY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.first) clearTimeout(this.first);
    this.timer = undefined;
    await this.running;
  }

  /** One round, sums included; tests call it with the clock where they want it. */
  async run(): Promise<MaintainResult> {
    const kept = await this.keep();
    return { ...kept, rolled: await this.rollUp(this.opts.clock.now()) };
  }

  /** Partitions, retention (of the history and of the days' sums), silent writers. */
  private async keep(): Promise<Omit<MaintainResult, 'rolled'>> {
    const nowMs = this.opts.clock.now();
    const res = await this.opts.db.query<Omit<MaintainResult, 'rolled'>>('SELECT made, dropped, closed FROM carrel_history_maintain($1, $2, $3, $4)', [
      new Date(nowMs),
      this.opts.retentionDays,
      new Date(nowMs - this.opts.staleAfterMs),
      SessionLock.historyMaintain,
    ]);
    // The days' sums go with the history they were made of: a day at a time.
    const cutoff = new Date(nowMs - this.opts.retentionDays * 86_400_000);
    await this.opts.db.query(
      `WITH a AS (DELETE FROM occupancy_seat_days WHERE day < $1::date), b AS (DELETE FROM occupancy_branch_hours WHERE hour < $1),
            c AS (DELETE FROM occupancy_area_days WHERE day < $1::date)
       DELETE FROM occupancy_rolled_days WHERE day < $1::date`,
      [cutoff],
    );
    return res.rows[0] ?? { made: 0, dropped: 0, closed: 0 };
  }

  /**
   * Sums up, for every branch, the local days that ended at least ROLL_AFTER_MS ago and are not
   * summed yet (at most ROLL_DAYS_PER_ROUND, newest first), and again those that ended less than
   * REROLL_FOR_MS ago (a late flush, a late no-show). One day, one transaction.
   */
  async rollUp(nowMs: number): Promise<number> {
    const { db } = this.opts;
    const branches = (await db.query<BranchInfo>('SELECT id, name, timezone, hours FROM branches ORDER BY id')).rows;
    let rolled = 0;
    for (const branch of branches) {
      const today = localParts(nowMs, branch.timezone);
      const lookback = Math.min(this.opts.retentionDays, 400);
      const candidates: LocalDate[] = [];
      for (let i = 1; i <= lookback; i++) candidates.push(addDays(today, -i));
      const done = new Map(
        (
          await db.query<{ day: string; rolled_at: Date }>(
            "SELECT to_char(day, 'YYYY-MM-DD') AS day, rolled_at FROM occupancy_rolled_days WHERE branch_id = $1 AND day >= $2::date",
            [branch.id, formatDate(candidates[candidates.length - 1]!)],
          )
        ).rows.map((r) => [r.day, r.rolled_at.getTime()]),
      );
      const due: LocalDate[] = [];
      let backlog = 0;
      for (const day of candidates) {
        const ends = endOfDay(day, branch.timezone);
        if (nowMs - ends < ROLL_AFTER_MS) continue;
        const at = done.get(formatDate(day));
        const recent = nowMs - ends < REROLL_FOR_MS;
        if (at === undefined && backlog < ROLL_DAYS_PER_ROUND) {
          due.push(day);
          backlog++;
        } else if (at !== undefined && recent) due.push(day);
      }
      if (due.length === 0) continue;
      const seats = (await db.query<SeatInfo>('SELECT id, label, area FROM seats WHERE branch_id = $1', [branch.id])).rows;
      for (const day of due) {
        if (this.stopping) return rolled;
        const done = await rollUpDays(db, { branch, seats, from: day, days: 1, nowMs, staleAfterMs: this.opts.staleAfterMs, statementTimeoutMs: ROLL_STATEMENT_TIMEOUT_MS });
        if (!done) break; // another instance is at this branch
        rolled++;
      }
    }
    return rolled;
  }

  private runLogged(withSums: boolean): Promise<void> {
    const log = this.opts.log;
    const report = (r: Partial<MaintainResult>) => {
      if (r.made || r.dropped || r.closed || r.rolled) log.info({ ...r }, 'occupancy history maintained (partitions made, months dropped, silent writers closed, days summed up)');
    };
    const failed = (err: unknown) => log.warn({ err: (err as Error).message }, 'occupancy history maintenance failed; it runs again within the hour');
    const kept = this.keep().then(report, failed);
    const sums = withSums ? kept.then(() => this.rollUp(this.opts.clock.now())).then((rolled) => report({ rolled }), failed) : kept;
    this.running = sums;
    return sums;
  }
}

/** When a local date ends in a zone (epoch ms): the next day's midnight. */
function endOfDay(day: LocalDate, timeZone: string): number {
  const next = addDays(day, 1);
  return zonedInstant(next.year, next.month, next.day, 0, timeZone);
}
