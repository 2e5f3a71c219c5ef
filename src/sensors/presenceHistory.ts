// The occupancy history's writer (docs/reports.md, "Where the figures come from"; the tables:
// db/migrations/013_occupancy_history.sql). The live model tells it each change of a seat's
// presence — occupied, empty, unknown (its sensor fell silent) — at the server's receipt time
// (docs/sensors.md, "Order: the server's receipt time"); the sensor coalescer has it write what
// it holds on each flush, in one statement, never a write per reading.
//
// Between two flushes only what lasted is kept, per seat: a state replaced less than
// sensors.flushEveryMs after it began (a blip) is dropped, the state before it going on — except
// that when the seat was unknown before it, the next state takes its start, so the time the
// sensor began to report is kept. A silence is never dropped. A seat holds at most MAX_STEPS
// changes; past them (the database away for long) the latest state replaces the last one kept.
// So the map is bounded by the number of seats however fast readings come, or however long the
// database is away, and a flapping sensor costs one change per seat per flush.
import type pg from 'pg';
import type { Presence } from '../core/liveSeats.js';
import type { Logger } from '../obs/log.js';
import { Db } from '../db/db.js';
import { timestampMicros } from './coalescer.js';

/** Changes one seat may hold between flushes (only a database outage lets more than two gather). */
export const MAX_STEPS = 16;

interface Step {
  presence: Presence;
  atMs: number;
}

interface PendingSeat {
  /** The seat's presence as the history last had it (before these steps). */
  from: Presence;
  steps: Step[];
}

/**
 * How long a writer may go without marking itself alive before its open intervals are taken to
 * have ended at its last mark: many flushes, and never under a minute (a busy event loop, a slow
 * statement must not cut anyone's interval).
 */
export function writerStaleAfterMs(flushEveryMs: number): number {
  return Math.max(60_000, 10 * flushEveryMs);
}

export interface PresenceHistoryOptions {
  /** This process, as occupancy_writers names it (the server's instance id). */
  instance: string;
  /**
   * An open interval whose writer has not marked itself alive for this long ended at its last
   * mark (the writer died); flushes mark this one alive.
   */
  staleAfterMs: number;
  /** A state replaced sooner than this after it began is dropped (sensors.flushEveryMs). */
  blipMs: number;
  now: () => number;
}

export interface PresenceHistoryStats {
  /** Seats with changes waiting for the next flush. */
  pending: number;
  /** Statements that wrote changes. */
  writes: number;
  /** Seat changes written. */
  changes: number;
  failures: number;
}

export class PresenceHistory {
  private pending = new Map<number, PendingSeat>();
  private writer: number | undefined;
  private failing = false;
  readonly stats: PresenceHistoryStats = { pending: 0, writes: 0, changes: 0, failures: 0 };

  constructor(
    private readonly opts: PresenceHistoryOptions,
    private readonly log: Logger,
  ) {}

  /** A change of a seat's presence (LiveSeatsHooks.onPresence), in the order received. */
  record(seatId: number, presence: Presence, atMs: number, previous: Presence): void {
    let seat = this.pending.get(seatId);
    if (!seat) {
      seat = { from: previous, steps: [] };
      this.pending.set(seatId, seat);
    }
    append(seat, presence, atMs, this.opts.blipMs);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Writes the changes held (and marks this writer alive) in one statement. A failed batch is
   * kept, merged under whatever was recorded meanwhile, for the next flush.
   */
  async write(db: pg.Pool): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    // Round r holds every seat's r-th change: one statement each, in order, in one transaction
    // when there is more than one (a flush usually has one round).
    const rounds: Array<{ seatIds: number[]; states: number[]; ats: string[] }> = [];
    let changes = 0;
    for (const [seatId, seat] of batch) {
      seat.steps.forEach((step, r) => {
        const round = (rounds[r] ??= { seatIds: [], states: [], ats: [] });
        round.seatIds.push(seatId);
        round.states.push(step.presence === null ? -1 : step.presence ? 1 : 0);
        round.ats.push(timestampMicros(step.atMs));
        changes++;
      });
    }
    const nowMs = this.opts.now();
    try {
      const writer = await this.writerId(db, nowMs);
      const mark = new Date(nowMs);
      if (rounds.length === 0) {
        await db.query('UPDATE occupancy_writers SET alive_at = greatest(alive_at, $2) WHERE id = $1', [writer, mark]);
      } else if (rounds.length === 1) {
        await db.query(WRITE, [rounds[0]!.seatIds, rounds[0]!.states, rounds[0]!.ats, writer, mark, this.opts.staleAfterMs]);
      } else {
        await new Db(db).transaction(async (c) => {
          for (const r of rounds) await c.query(WRITE, [r.seatIds, r.states, r.ats, writer, mark, this.opts.staleAfterMs]);
        });
      }
      if (changes > 0) {
        this.stats.writes++;
        this.stats.changes += changes;
      }
      if (this.failing) this.log.info({ changes }, 'occupancy history written again');
      this.failing = false;
    } catch (err) {
      this.stats.failures++;
      for (const [seatId, old] of batch) {
        const newer = this.pending.get(seatId);
        if (newer) for (const step of newer.steps) append(old, step.presence, step.atMs, this.opts.blipMs);
        this.pending.set(seatId, old);
      }
      if (!this.failing) this.log.warn({ err: (err as Error).message, changes }, 'could not write the occupancy history; will retry');
      this.failing = true;
    } finally {
      this.stats.pending = this.pending.size;
    }
  }

  /**
   * This process stops: what it held is written, then every interval it has open ends now
   * (nobody will say how the seats go on). After a crash the same happens at its last mark,
   * when another process's maintenance finds it silent.
   */
  async close(db: pg.Pool): Promise<void> {
    await this.write(db);
    if (this.writer === undefined) return;
    try {
      await db.query('SELECT carrel_history_close_writer($1, $2)', [this.writer, new Date(this.opts.now())]);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not close the open occupancy intervals at shutdown; they end at the last flush');
    }
  }

  private async writerId(db: pg.Pool, nowMs: number): Promise<number> {
    if (this.writer !== undefined) return this.writer;
    const res = await db.query<{ id: number }>(
      'INSERT INTO occupancy_writers (instance, started_at, alive_at) VALUES ($1, $2, $2) RETURNING id',
      [this.opts.instance, new Date(nowMs)],
    );
    this.writer = res.rows[0]!.id;
    return this.writer;
  }
}

/**
 * Adds a change to a seat's pending steps (see the top of the file): the last step, when known and
 * replaced within blipMs (or when the seat holds MAX_STEPS already), is dropped first.
 */
function append(seat: PendingSeat, presence: Presence, atMs: number, blipMs: number): void {
  const steps = seat.steps;
  const last = steps[steps.length - 1];
  if (last && last.presence !== null && (atMs - last.atMs < blipMs || steps.length >= MAX_STEPS)) {
    steps.pop();
    const before = steps.length > 0 ? steps[steps.length - 1]!.presence : seat.from;
    if (presence === before) return;
    steps.push({ presence, atMs: before === null && presence !== null ? last.atMs : atMs });
    return;
  }
  const before = last ? last.presence : seat.from;
  if (presence !== before) steps.push({ presence, atMs });
}

/**
 * One round of changes: per seat, the state it is in from `at` (-1 unknown, 0 empty, 1 occupied).
 * The seat's open interval ends where the change says; a change not later than the open
 * interval's start (another instance's, received earlier, flushed later) changes nothing, as
 * receipt order has it (docs/sensors.md). An open interval whose writer is not this one and has
 * been silent longer than $6 ms ended at that writer's last mark, and what follows starts afresh.
 * Ended intervals go to occupancy_history cut at midnight UTC; the writer's alive mark rides along.
 */
const WRITE = `
WITH t AS (
  SELECT * FROM unnest($1::int[], $2::int2[], $3::timestamptz[]) AS t(seat_id, state, at)
), mark AS (
  UPDATE occupancy_writers SET alive_at = greatest(alive_at, $5) WHERE id = $4
), o AS (
  SELECT o.seat_id, o.observed_since, o.occupied_since, t.state, t.at,
         CASE WHEN o.writer <> $4 AND w.alive_at < t.at - $6 * interval '1 millisecond' THEN w.alive_at END AS cut
    FROM t JOIN occupancy_open o ON o.seat_id = t.seat_id JOIN occupancy_writers w ON w.id = o.writer
   WHERE t.at > greatest(o.observed_since, o.occupied_since)
     FOR UPDATE OF o
), e AS (
  SELECT o.*,
         CASE WHEN o.cut IS NOT NULL THEN o.cut WHEN o.state = -1 THEN o.at END AS observed_until,
         CASE WHEN o.occupied_since IS NULL THEN NULL WHEN o.cut IS NOT NULL THEN o.cut WHEN o.state <> 1 THEN o.at END AS occupied_until
    FROM o
), ended AS (
  INSERT INTO occupancy_history (seat_id, kind, since, until)
  SELECT e.seat_id, k.kind, d.since, d.until
    FROM e
   CROSS JOIN LATERAL (VALUES ('observed'::occupancy_kind, e.observed_since, e.observed_until),
                              ('occupied'::occupancy_kind, e.occupied_since, e.occupied_until)) AS k(kind, since, until)
   CROSS JOIN LATERAL carrel_utc_days(k.since, k.until) AS d
   WHERE k.until IS NOT NULL
), gone AS (
  DELETE FROM occupancy_open x USING e WHERE x.seat_id = e.seat_id AND e.state = -1
), kept AS (
  UPDATE occupancy_open x
     SET observed_since = CASE WHEN e.cut IS NOT NULL THEN e.at ELSE x.observed_since END,
         occupied_since = CASE WHEN e.state <> 1 THEN NULL
                               WHEN e.cut IS NOT NULL OR x.occupied_since IS NULL THEN e.at
                               ELSE x.occupied_since END,
         writer = $4
    FROM e
   WHERE x.seat_id = e.seat_id AND e.state <> -1
)
INSERT INTO occupancy_open (seat_id, observed_since, occupied_since, writer)
SELECT t.seat_id, t.at, CASE WHEN t.state = 1 THEN t.at END, $4
  FROM t
 WHERE t.state <> -1 AND NOT EXISTS (SELECT 1 FROM occupancy_open x WHERE x.seat_id = t.seat_id)
ON CONFLICT (seat_id) DO NOTHING`;
