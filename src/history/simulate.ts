// `carrel db seed --history N` (docs/operations.md, "Seed data"): N days of made-up but plausible
// library life before today, so the utilization report (docs/reports.md) shows something real on a
// new machine. Set-based SQL in one transaction (generate_series, no row-by-row loop), deterministic
// for a given seed and database: every draw is a hash of (seat, day, block, what is drawn, seed).
//
// The model, per branch and local day the branch is open:
//
// - Demand: a weekday rhythm (busy Monday to Thursday, quieter Friday, light weekends), an hourly
//   rhythm (a morning rise, a lunch dip at 12-13, the afternoon peak, a long evening tail, nights
//   nearly empty where the branch never closes), exam weeks (the third and second weeks before
//   today) 30% busier, and each seat's own popularity.
// - Each seat's day is cut into blocks of 1-4 hours from opening; a block is booked with the
//   demand's probability, for its length less 0-30 minutes. 5% of bookings are cancelled before
//   they start; about 8% are no-shows (more before 9:00 and on Fridays), held until the check-in
//   grace ends (rules.checkInGraceMinutes), as the lifecycle does.
// - The rest arrive 0-12 minutes after the start (checked in by the sensor then); nearly half take
//   a break (most at lunch), and a break longer than presence.awayMinutes (an away hold) gets the booking
//   released, as the server does (the student may come back and sit on, unbooked: a walk-in in
//   all but name); a quarter leave early, half of those checking out, the others released after
//   presence.awayMinutes (an away hold); the rest leave in the last minutes. Some seats see far more no-shows
//   and early leavers than the rest (up to three times the rate).
// - Unbooked blocks get walk-ins: someone sits 20-90 minutes without a booking.
// - Sensors report all day, except on 4% of seats (no sensor at all: the report says so) and
//   during outages (on one day in twenty a branch loses one area's sensors for 1-4 hours).
//
// Days that already have bookings or sensor history for a branch are left alone, so running it
// again changes nothing, and real data is never mixed with made-up data. Simulated students
// (`sim00001` …) have no usable password.
import type pg from 'pg';
import { Db } from '../db/db.js';
import { parseLocalDate } from '../core/zonedTime.js';
import { addDays, formatDate, type LocalDate } from '../reports/reportTime.js';
import { rollUpDays, type BranchInfo, type SeatInfo } from '../reports/rollup.js';
import { namedSql } from './namedSql.js';

export interface SimulateOptions {
  /** Days before today (in each branch's zone) to fill, 1-366. */
  days: number;
  seed: number;
  nowMs: number;
  /** Only this branch (a name); every branch when absent. */
  branch?: string;
  slotMinutes: number;
  checkInGraceMinutes: number;
  awayHoldMs: number;
  /** For the sums: an open interval of a writer silent this long ended at its last mark. */
  staleAfterMs: number;
}

export interface SimulateResult {
  /** Branch-days filled (days that had data already are skipped). */
  days: number;
  /** Of them, summed up for the report (rollup.ts). */
  summed: number;
  bookings: number;
  noShows: number;
  walkIns: number;
  intervals: number;
}

const SIM_USERS = 3000;
export const MAX_SIMULATED_DAYS = 366;

/**
 * A uniform draw in [0, 1) from a key and the seed: the same arguments give the same number on
 * every run and every PostgreSQL (hashint8extended is what hash partitioning relies on).
 */
const rand = (key: string, salt: number) => `((hashint8extended((${key}) * 1000 + ${salt}, $seed::bigint) & 2147483647)::float8 / 2147483648)`;

/** Booking demand by local hour of the day (0-23): the shape of the heatmap. */
const HOURLY = [0.04, 0.03, 0.02, 0.02, 0.02, 0.03, 0.08, 0.25, 0.5, 0.8, 0.95, 0.9, 0.5, 0.7, 0.95, 1, 0.9, 0.7, 0.55, 0.5, 0.4, 0.3, 0.18, 0.1];
/** Demand by ISO weekday (1 = Monday … 7 = Sunday). */
const WEEKLY = [1, 1, 0.95, 0.9, 0.7, 0.45, 0.5];

export async function simulateHistory(pool: pg.Pool, o: SimulateOptions): Promise<SimulateResult> {
  if (!Number.isInteger(o.days) || o.days < 1 || o.days > MAX_SIMULATED_DAYS) throw new Error(`--history takes 1 to ${MAX_SIMULATED_DAYS} days`);
  const params: Record<string, unknown> = {
    seed: o.seed,
    now: new Date(o.nowMs),
    days: o.days,
    branch: o.branch ?? null,
    slot: o.slotMinutes,
    grace: o.checkInGraceMinutes,
    release: Math.round(o.awayHoldMs / 60_000),
    users: SIM_USERS,
  };
  const result = await new Db(pool).transaction(async (c) => {
    const run = (sql: string) => {
      const q = namedSql(sql, params);
      return c.query(q.text, q.values);
    };
    // A batch job, not a request: the pool's statement timeout is for requests.
    await c.query("SET LOCAL work_mem = '64MB'");
    await c.query('SET LOCAL statement_timeout = 0');
    for (const sql of STATEMENTS) await run(sql);
    const filled = await c.query<{ branch_id: number; days: string[] }>(
      "SELECT branch_id, array_agg(to_char(day, 'YYYY-MM-DD') ORDER BY day) AS days FROM sim_day GROUP BY branch_id",
    );
    const res = await c.query<Omit<SimulateResult, 'summed'>>(
      `SELECT (SELECT count(*) FROM sim_day)::int AS days,
              (SELECT count(*) FROM sim_booking)::int AS bookings,
              (SELECT count(*) FROM sim_booking WHERE status = 'NO_SHOW')::int AS "noShows",
              (SELECT count(*) FROM sim_walkin)::int AS "walkIns",
              (SELECT count(*) FROM sim_interval)::int AS intervals`,
    );
    return { ...res.rows[0]!, filled: filled.rows };
  });
  // Fresh statistics for what was just added in bulk: plans made against the empty tables would
  // read them the slow way (db/migrations/008).
  if (result.days > 0) await pool.query('ANALYZE seats, users, reservations, occupancy_history');
  // The days are over: summed up at once for the report, a week per transaction.
  let summed = 0;
  for (const { branch_id: id, days } of result.filled) {
    const branch = (await pool.query<BranchInfo>('SELECT id, name, timezone, hours FROM branches WHERE id = $1', [id])).rows[0]!;
    const seats = (await pool.query<SeatInfo>('SELECT id, label, area FROM seats WHERE branch_id = $1', [id])).rows;
    for (const run of consecutiveRuns(days, 7)) {
      if (await rollUpDays(pool, { branch, seats, from: run.from, days: run.days, nowMs: o.nowMs, staleAfterMs: o.staleAfterMs, statementTimeoutMs: 0 })) summed += run.days;
    }
  }
  const { filled: _, ...counts } = result;
  return { ...counts, summed };
}

/** Dates (YYYY-MM-DD, ascending) as runs of consecutive days, at most `max` long. */
function consecutiveRuns(dates: string[], max: number): Array<{ from: LocalDate; days: number }> {
  const runs: Array<{ from: LocalDate; days: number }> = [];
  for (const text of dates) {
    const d = parseLocalDate(text)!;
    const last = runs[runs.length - 1];
    if (last && last.days < max && formatDate(addDays(last.from, last.days)) === text) last.days++;
    else runs.push({ from: d, days: 1 });
  }
  return runs;
}

const STATEMENTS = [
  // The branch-days to fill: open that weekday, and with no bookings or history yet.
  `CREATE TEMP TABLE sim_day ON COMMIT DROP AS
   SELECT b.id AS branch_id, d.day, (d.day - date '2000-01-01') AS day_no,
          extract(isodow FROM d.day)::int AS dow,
          (d.day + (b.hours -> to_char(d.day, 'dy') ->> 'open')::time) AT TIME ZONE b.timezone AS opens,
          (d.day + (b.hours -> to_char(d.day, 'dy') ->> 'close')::time) AT TIME ZONE b.timezone AS closes,
          d.day::timestamp AT TIME ZONE b.timezone AS day_start,
          (d.day + 1)::timestamp AT TIME ZONE b.timezone AS day_end,
          b.timezone AS tz, b.padding_minutes AS padding,
          -- The third and second weeks before today are exam weeks.
          CASE WHEN d.day >= today - 21 AND d.day < today - 7 THEN 1.3 ELSE 1.0 END
            * (ARRAY[${WEEKLY.join(', ')}])[extract(isodow FROM d.day)::int]
            * (0.9 + 0.2 * ${rand('b.id::bigint * 100000 + (d.day - date \'2000-01-01\')', 1)}) AS demand
     FROM branches b
    CROSS JOIN LATERAL (SELECT ($now::timestamptz AT TIME ZONE b.timezone)::date AS today) t
    CROSS JOIN LATERAL (SELECT (t.today - g)::date AS day FROM generate_series(1, $days::int) g) d
    WHERE ($branch::text IS NULL OR b.name = $branch::text)
      AND jsonb_typeof(b.hours -> to_char(d.day, 'dy')) = 'object'
      AND NOT EXISTS (SELECT 1 FROM reservations r JOIN seats s ON s.id = r.seat_id
                       WHERE s.branch_id = b.id AND lower(r.during) >= d.day::timestamp AT TIME ZONE b.timezone - interval '1 day'
                         AND lower(r.during) < (d.day + 1)::timestamp AT TIME ZONE b.timezone
                         AND upper(r.during) > d.day::timestamp AT TIME ZONE b.timezone)
      AND NOT EXISTS (SELECT 1 FROM occupancy_history h JOIN seats s ON s.id = h.seat_id
                       WHERE s.branch_id = b.id AND h.since >= d.day::timestamp AT TIME ZONE b.timezone - interval '1 day'
                         AND h.since < (d.day + 1)::timestamp AT TIME ZONE b.timezone
                         AND h.until > d.day::timestamp AT TIME ZONE b.timezone)`,
  // One area per branch-day in twenty loses its sensors for 1-4 hours.
  `CREATE TEMP TABLE sim_outage ON COMMIT DROP AS
   SELECT d.branch_id, d.day_no, a.area,
          d.day_start + make_interval(hours => 7 + floor(12 * ${rand('d.branch_id::bigint * 100000 + d.day_no', 2)})::int) AS from_at,
          make_interval(hours => 1 + floor(4 * ${rand('d.branch_id::bigint * 100000 + d.day_no', 3)})::int) AS length
     FROM sim_day d
    CROSS JOIN LATERAL (SELECT s.area FROM seats s WHERE s.branch_id = d.branch_id GROUP BY s.area
                         ORDER BY ${rand("('x' || substr(md5(s.area), 1, 8))::bit(32)::int::bigint + d.day_no", 4)} LIMIT 1) a
    WHERE ${rand('d.branch_id::bigint * 100000 + d.day_no', 5)} < 0.05`,
  `CREATE TEMP TABLE sim_seat ON COMMIT DROP AS
   SELECT s.id AS seat_id, s.branch_id, s.area,
          (0.65 + 0.5 * ${rand('s.id::bigint', 6)} + CASE WHEN s.has_power THEN 0.1 ELSE 0 END) AS popularity,
          ${rand('s.id::bigint', 7)} >= 0.04 AS sensor,
          -- Some seats are booked and left empty far more than others (by the door, by the radiator).
          0.5 + 2.5 * power(${rand('s.id::bigint', 28)}, 3) AS flake
     FROM seats s WHERE s.branch_id IN (SELECT branch_id FROM sim_day) AND s.status = 'IN_SERVICE'`,
  // Blocks of 1-4 hours from opening (after a first gap of 0-1 hour), on slot boundaries.
  `CREATE TEMP TABLE sim_block ON COMMIT DROP AS
   SELECT x.*, x.start_at + x.length AS end_at
     FROM (SELECT s.seat_id, s.branch_id, s.popularity, s.flake, d.day_no, d.opens, d.closes, d.demand, d.tz, d.padding, k,
                  d.opens + make_interval(mins => 15 * floor(5 * ${rand('s.seat_id::bigint * 100000 + d.day_no', 8)})::int)
                    + coalesce(sum(len) OVER (PARTITION BY s.seat_id, d.day_no ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), interval '0') AS start_at,
                  len AS length
             FROM sim_seat s
             JOIN sim_day d ON d.branch_id = s.branch_id
            CROSS JOIN generate_series(1, 24) k
            CROSS JOIN LATERAL (SELECT make_interval(mins => (ARRAY[60, 90, 120, 120, 150, 180, 180, 240])[1 + floor(8 * ${rand('(s.seat_id::bigint * 100000 + d.day_no) * 32 + k', 9)})::int]) AS len) l) x
    WHERE x.start_at + x.length <= x.closes`,
  // Bookings, and what became of each (see the top of the file).
  `CREATE TEMP TABLE sim_booking ON COMMIT DROP AS
   WITH b AS (
     SELECT bl.*, (bl.seat_id::bigint * 100000 + bl.day_no) * 32 + bl.k AS key,
            extract(hour FROM bl.start_at AT TIME ZONE bl.tz)::int AS hour,
            bl.start_at AS bs,
            bl.end_at - make_interval(mins => 15 * floor(3 * ${rand('(bl.seat_id::bigint * 100000 + bl.day_no) * 32 + bl.k', 10)})::int) AS be
       FROM sim_block bl
      WHERE ${rand('(bl.seat_id::bigint * 100000 + bl.day_no) * 32 + bl.k', 11)}
            < least(0.97, 0.85 * bl.demand * bl.popularity
                    * (ARRAY[${HOURLY.join(', ')}])[1 + extract(hour FROM (bl.start_at + bl.length / 2) AT TIME ZONE bl.tz)::int])
   ), o AS (
     SELECT b.*,
            ${rand('b.key', 12)} < 0.05 AS cancelled,
            ${rand('b.key', 13)} < b.flake * (0.07 + CASE WHEN b.hour < 9 THEN 0.05 ELSE 0 END + CASE WHEN extract(isodow FROM b.bs AT TIME ZONE b.tz) = 5 THEN 0.03 ELSE 0 END) AS no_show,
            b.bs + make_interval(secs => 60 * (12 * power(${rand('b.key', 14)}, 2))) AS arrive,
            -- A break: most likely when the booking spans lunch.
            CASE WHEN ${rand('b.key', 15)} < CASE WHEN b.hour BETWEEN 10 AND 13 THEN 0.7 ELSE 0.35 END AND b.be - b.bs >= interval '90 minutes'
                 THEN b.bs + (b.be - b.bs) * (0.35 + 0.3 * ${rand('b.key', 16)}) END AS brk_start,
            make_interval(mins => 5 + floor(31 * ${rand('b.key', 17)})::int) AS brk_len,
            CASE WHEN ${rand('b.key', 18)} < 0.25 * b.flake THEN b.bs + (b.be - b.bs) * (0.5 + 0.4 * ${rand('b.key', 19)})
                 ELSE b.be - make_interval(secs => 60 * 10 * ${rand('b.key', 20)}) END AS leave,
            ${rand('b.key', 21)} < 0.5 AS checks_out
       FROM b
   ), r AS (
     -- When the server would have ended the booking early: a check-out by hand (at leaving),
     -- or a release after presence.awayMinutes (an away hold) empty (a long break, leaving without checking out).
     SELECT o.*,
            CASE WHEN o.cancelled OR o.no_show THEN NULL
                 WHEN o.brk_start IS NOT NULL AND o.brk_start < o.leave AND o.brk_len > make_interval(mins => $release::int)
                      AND o.brk_start + make_interval(mins => $release::int) < o.be
                   THEN o.brk_start + make_interval(mins => $release::int)
                 WHEN o.leave < o.be - make_interval(mins => $release::int) AND o.checks_out THEN o.leave
                 WHEN o.leave < o.be - make_interval(mins => $release::int) THEN o.leave + make_interval(mins => $release::int)
            END AS ended_at
       FROM o
   )
   SELECT r.*,
          CASE WHEN r.cancelled THEN 'CANCELLED' WHEN r.no_show THEN 'NO_SHOW' ELSE 'COMPLETED' END AS status,
          -- Ended early: at the first slot boundary after, never before the first slot's end (usedUntil).
          CASE WHEN r.ended_at IS NULL THEN r.be
               ELSE least(r.be, greatest(r.bs + make_interval(mins => $slot::int),
                          to_timestamp(ceil(extract(epoch FROM r.ended_at) / ($slot::int * 60)) * $slot::int * 60))) END AS held_until,
          CASE WHEN r.cancelled THEN r.bs - interval '1 hour' * (1 + 30 * ${rand('r.key', 22)})
               WHEN r.no_show THEN r.bs + make_interval(mins => $grace::int)
               ELSE coalesce(r.ended_at, r.be) END AS changed_at
     FROM r`,
  `CREATE TEMP TABLE sim_walkin ON COMMIT DROP AS
   SELECT x.seat_id, x.since, least(x.end_at, x.since + make_interval(mins => 20 + floor(71 * ${rand('x.key', 23)})::int)) AS until
     FROM (SELECT bl.*, (bl.seat_id::bigint * 100000 + bl.day_no) * 32 + bl.k AS key,
                  bl.start_at + make_interval(mins => 5 + floor(36 * ${rand('(bl.seat_id::bigint * 100000 + bl.day_no) * 32 + bl.k', 24)})::int) AS since
             FROM sim_block bl
            WHERE NOT EXISTS (SELECT 1 FROM sim_booking b WHERE b.seat_id = bl.seat_id AND b.day_no = bl.day_no AND b.k = bl.k)) x
    WHERE ${rand('x.key', 25)} < 0.3 * (ARRAY[${HOURLY.join(', ')}])[1 + extract(hour FROM x.since AT TIME ZONE x.tz)::int]
      AND x.since < x.end_at`,
  `INSERT INTO users (student_id, name, password_hash)
   SELECT 'sim' || lpad(i::text, 5, '0'), 'Simulated Student ' || i, '!' FROM generate_series(1, $users::int) i
   ON CONFLICT (student_id) DO NOTHING`,
  `CREATE TEMP TABLE sim_user ON COMMIT DROP AS
   SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM users WHERE student_id ~ '^sim[0-9]{5}$'`,
  `INSERT INTO reservations (seat_id, user_id, during, hold, status, checked_in_at, created_at, updated_at)
   SELECT b.seat_id, u.id, tstzrange(b.bs, b.held_until), tstzrange(b.bs, b.held_until + make_interval(mins => b.padding)), b.status,
          CASE WHEN b.status = 'COMPLETED' THEN b.arrive END,
          b.bs - interval '1 hour' * (2 + 70 * ${rand('b.key', 26)}), b.changed_at
     FROM sim_booking b
     JOIN sim_user u ON u.n = floor(${rand('b.key', 27)} * (SELECT count(*) FROM sim_user))::int`,
  // What the sensors saw: occupied while someone sat (arrival to the break, after it to leaving;
  // walk-ins), reported all day but for seats without a sensor and the outages.
  `CREATE TEMP TABLE sim_interval ON COMMIT DROP AS
   WITH occupied AS (
     SELECT b.seat_id, p.since, p.until
       FROM sim_booking b
      CROSS JOIN LATERAL (VALUES (b.arrive, coalesce(least(b.brk_start, b.leave), b.leave)),
                                 (b.brk_start + b.brk_len, CASE WHEN b.brk_start IS NOT NULL THEN b.leave END)) AS p(since, until)
      WHERE NOT b.cancelled AND NOT b.no_show AND p.since < p.until
     UNION ALL
     SELECT seat_id, since, until FROM sim_walkin
   ), observed AS (
     SELECT s.seat_id, p.since, p.until
       FROM sim_seat s JOIN sim_day d ON d.branch_id = s.branch_id
       LEFT JOIN sim_outage o ON o.branch_id = d.branch_id AND o.day_no = d.day_no AND o.area = s.area
      CROSS JOIN LATERAL (VALUES (d.day_start, coalesce(o.from_at, d.day_end)), (o.from_at + o.length, CASE WHEN o.from_at IS NOT NULL THEN d.day_end END)) AS p(since, until)
      WHERE s.sensor AND p.since < p.until
   )
   SELECT 'observed'::occupancy_kind AS kind, seat_id, since, until FROM observed
   UNION ALL
   SELECT 'occupied', o.seat_id, greatest(o.since, v.since), least(o.until, v.until)
     FROM occupied o JOIN observed v ON v.seat_id = o.seat_id AND v.since < o.until AND v.until > o.since`,
  `SELECT carrel_history_partitions((SELECT min(since) FROM sim_interval), (SELECT max(until) FROM sim_interval))
    WHERE EXISTS (SELECT 1 FROM sim_interval)`,
  `INSERT INTO occupancy_history (seat_id, kind, since, until)
   SELECT i.seat_id, i.kind, d.since, d.until FROM sim_interval i CROSS JOIN LATERAL carrel_utc_days(i.since, i.until) d`,
];
