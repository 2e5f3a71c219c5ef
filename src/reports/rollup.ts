// The utilization figures of whole local days of a branch, computed from the bookings and the
// occupancy history (docs/reports.md, "Where the figures come from"), and kept as sums
// (db/migrations/014_occupancy_rollups.sql): per seat and day, per hour of the branch, and the
// peaks per area and day. The maintenance sums up each day an hour after it ends and again every
// hour for two days; a report computes the days not summed yet with the same statement.
//
// How: every booking and every sensor interval is cut into pieces that lie within one local day
// (an instant's local day comes from the calendar of reportTime.ts, without asking PostgreSQL for
// the time zone row by row); bookings are joined with the sensor pieces of the same seat and day
// to find where they overlap; the pieces are cut again at local hours for the hourly sums. Every
// figure is a sum of piece lengths, except the peak, which counts the seats occupied at each whole
// minute.
import type pg from 'pg';
import type { Tx } from '../db/db.js';
import { LockClass } from '../db/lockKeys.js';
import { namedSql } from '../history/namedSql.js';
import { reportCalendar, type LocalDate } from './reportTime.js';
import type { BranchHours } from '../wire/hours.js';

/** The sums (seconds, counts) every bucket of a report is made of. */
export interface Sums {
  bookings: number;
  no_shows: number;
  booked: number;
  booked_observed: number;
  attended: number;
  booked_observed_in: number;
  attended_in: number;
  occupied: number;
  observed: number;
  open_occupied: number;
  open_observed: number;
}

export const SUM_KEYS = [
  'bookings',
  'no_shows',
  'booked',
  'booked_observed',
  'attended',
  'booked_observed_in',
  'attended_in',
  'occupied',
  'observed',
  'open_occupied',
  'open_observed',
] as const satisfies ReadonlyArray<keyof Sums>;

export function zeroSums(): Sums {
  return { bookings: 0, no_shows: 0, booked: 0, booked_observed: 0, attended: 0, booked_observed_in: 0, attended_in: 0, occupied: 0, observed: 0, open_occupied: 0, open_observed: 0 };
}

export function addInto(into: Sums, s: Partial<Sums>): Sums {
  for (const k of SUM_KEYS) into[k] += Number(s[k] ?? 0);
  return into;
}

export interface BranchInfo {
  id: number;
  name: string;
  timezone: string;
  hours: BranchHours;
}

export interface SeatInfo {
  id: number;
  label: string;
  area: string;
}

/**
 * Settings for the transaction computeDays runs in (docs/reports.md, "How fast"): memory enough
 * to hash the bookings of the days instead of sorting them to disk; no merge joins, whose sorts of
 * every interval cost several times the hash join; no JIT, whose compiling of this long statement
 * took seconds, more than running it.
 */
export const COMPUTE_SETTINGS = "SET LOCAL work_mem = '32MB'; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off";

/** What computeDays finds for a run of days: day and hour are local, `day` a date, `hour` an instant. */
export interface DaySums {
  seatDays: Array<Sums & { seatId: number; day: string }>;
  hours: Array<Sums & { hour: string; peak: number }>;
  areaDays: Array<{ area: string; day: string; peak: number }>;
}

export interface ComputeOptions {
  branch: BranchInfo;
  seats: SeatInfo[];
  from: LocalDate;
  days: number;
  /** Figures stop here (epoch ms): now, for a day under way. */
  untilMs: number;
  nowMs: number;
  /** An open interval of a writer silent this long ended at its last mark (writerStaleAfterMs). */
  staleAfterMs: number;
}

interface RawRow extends Sums {
  kind: 'seat' | 'hour' | 'area';
  seat_id: number | null;
  k: number;
  area: string | null;
  peak: number | null;
}

/** The figures of `days` local days from `from`, up to untilMs, from the bookings and the history. */
export async function computeDays(client: Tx, o: ComputeOptions): Promise<DaySums> {
  const cal = reportCalendar(o.from, o.days, o.branch.timezone, o.branch.hours);
  const startS = cal.dayStarts[0]!;
  const endS = Math.max(startS, Math.min(cal.dayStarts[o.days]!, o.untilMs / 1000));
  const out: DaySums = { seatDays: [], hours: [], areaDays: [] };
  if (endS <= startS || o.seats.length === 0) return out;
  const q = namedSql(
    DAY_SUMS,
    {
      seats: o.seats.map((s) => s.id),
      areas: o.seats.map((s) => s.area),
      start: startS,
      end: endS,
      startTs: new Date(startS * 1000),
      endTs: new Date(endS * 1000),
      nowTs: new Date(o.nowMs),
      staleMs: o.staleAfterMs,
      q0: cal.q0,
      offs: cal.offsets,
      day0: cal.localDay0,
      hour0: cal.localHour0,
      days: o.days,
      dayStarts: cal.dayStarts,
      hourStarts: cal.hourStarts,
      opens: cal.opens,
      closes: cal.closes,
    },
    PARAM_TYPES,
  );
  const rows = (await client.query<RawRow>(q.text, q.values)).rows;
  for (const r of rows) {
    if (r.kind === 'seat') out.seatDays.push({ ...sumsOf(r), seatId: r.seat_id!, day: cal.days[r.k]! });
    else if (r.kind === 'hour') out.hours.push({ ...sumsOf(r), hour: new Date(cal.hourStarts[r.k]! * 1000).toISOString(), peak: r.peak ?? 0 });
    else out.areaDays.push({ area: r.area!, day: cal.days[r.k]!, peak: r.peak ?? 0 });
  }
  return out;
}

function sumsOf(r: Partial<Sums>): Sums {
  return addInto(zeroSums(), r);
}

/** `$n::int[], $n+1::float8[], …` for the sums' columns, from parameter `first` on. */
function sumArrays(first: number): string {
  return SUM_KEYS.map((k, i) => `$${first + i}::${k === 'bookings' || k === 'no_shows' ? 'int' : 'float8'}[]`).join(', ');
}

const sumColumns = (rows: Array<Partial<Sums>>): unknown[] => SUM_KEYS.map((k) => rows.map((r) => r[k] ?? 0));


/**
 * Sums up `days` whole local days of the branch from `from` and records them as summed, replacing
 * what those days had. One transaction, with its own statement timeout (it is no request). False
 * when another instance is summing up this branch's days just now (it will have done these too, or
 * the next round will).
 */
export async function rollUpDays(pool: pg.Pool, o: Omit<ComputeOptions, 'untilMs'> & { statementTimeoutMs: number }): Promise<boolean> {
  const client = await pool.connect();
  let failed = false;
  try {
    await client.query('BEGIN');
    const locked = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1, $2) AS ok', [LockClass.branchRollup, o.branch.id]);
    if (!locked.rows[0]!.ok) {
      await client.query('ROLLBACK');
      return false;
    }
    await client.query(`SET LOCAL statement_timeout = ${Math.trunc(o.statementTimeoutMs)}`);
    await client.query(COMPUTE_SETTINGS);
    const cal = reportCalendar(o.from, o.days, o.branch.timezone, o.branch.hours);
    const sums = await computeDays(client, { ...o, untilMs: cal.dayStarts[o.days]! * 1000 });
    const days = cal.days;
    const cols = SUM_KEYS.join(', ');
    await client.query('DELETE FROM occupancy_seat_days WHERE seat_id = ANY($1::int[]) AND day = ANY($2::date[])', [o.seats.map((s) => s.id), days]);
    await client.query('DELETE FROM occupancy_branch_hours WHERE branch_id = $1 AND hour >= $2 AND hour < $3', [
      o.branch.id,
      new Date(cal.dayStarts[0]! * 1000),
      new Date(cal.dayStarts[o.days]! * 1000),
    ]);
    await client.query('DELETE FROM occupancy_area_days WHERE branch_id = $1 AND day = ANY($2::date[])', [o.branch.id, days]);
    await client.query(`INSERT INTO occupancy_seat_days (seat_id, day, ${cols}) SELECT * FROM unnest($1::int[], $2::date[], ${sumArrays(3)})`, [
      sums.seatDays.map((r) => r.seatId),
      sums.seatDays.map((r) => r.day),
      ...sumColumns(sums.seatDays),
    ]);
    await client.query(`INSERT INTO occupancy_branch_hours (branch_id, hour, peak, ${cols}) SELECT $1::int, * FROM unnest($2::timestamptz[], $3::int[], ${sumArrays(4)})`, [
      o.branch.id,
      sums.hours.map((r) => r.hour),
      sums.hours.map((r) => r.peak),
      ...sumColumns(sums.hours),
    ]);
    await client.query('INSERT INTO occupancy_area_days (branch_id, area, day, peak) SELECT $1::int, * FROM unnest($2::text[], $3::date[], $4::int[])', [
      o.branch.id,
      sums.areaDays.map((r) => r.area),
      sums.areaDays.map((r) => r.day),
      sums.areaDays.map((r) => r.peak),
    ]);
    await client.query(
      `INSERT INTO occupancy_rolled_days (branch_id, day, rolled_at) SELECT $1::int, d, $3 FROM unnest($2::date[]) AS d
       ON CONFLICT (branch_id, day) DO UPDATE SET rolled_at = EXCLUDED.rolled_at`,
      [o.branch.id, days, new Date(o.nowMs)],
    );
    await client.query('COMMIT');
    return true;
  } catch (err) {
    failed = true;
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release(failed ? true : undefined);
  }
}

// --- the statement ------------------------------------------------------------------------------

const PARAM_TYPES = {
  seats: 'int[]',
  areas: 'text[]',
  start: 'float8',
  end: 'float8',
  startTs: 'timestamptz',
  endTs: 'timestamptz',
  nowTs: 'timestamptz',
  staleMs: 'int',
  q0: 'float8',
  offs: 'int[]',
  day0: 'int',
  hour0: 'int',
  days: 'int',
  dayStarts: 'float8[]',
  hourStarts: 'float8[]',
  opens: 'float8[]',
  closes: 'float8[]',
};

/** An instant (epoch seconds, SQL expression) as local epoch seconds of the branch. */
const local = (t: string): string => `(${t} + $offs[floor((${t} - $q0) / 900)::int + 1])`;
/** Its local day, 0 = the report's first. */
const dayOf = (t: string): string => `(floor(${local(t)} / 86400)::int - $day0)`;
/** Its local hour, 0 = the report's first. */
const hourOf = (t: string): string => `(floor(${local(t)} / 3600)::int - $hour0)`;
/** The part of piece (a, b) within day d's opening hours. */
const openPart = (a: string, b: string, d: string): string => `greatest(0, least(${b}, $closes[${d} + 1]) - greatest(${a}, $opens[${d} + 1]))`;

/**
 * Sensor pieces (hx), booking pieces (bx) and their overlaps (px), each within one local day d,
 * clipped to the range [start, end). A booking holds its seat over `during`, except a NO_SHOW, which
 * held it until it was marked (updated_at). `counted` marks a booking's first piece when it starts
 * in the range: bookings and no-shows are counted where they start. `ai` is where the checked-in
 * part of an overlap begins (Infinity: never checked in).
 */
const PIECES = `
hx AS MATERIALIZED (
  SELECT x.seat_id, x.occupied, x.d0 + i.n AS d,
         greatest(x.a, $dayStarts[x.d0 + i.n + 1]) AS a, least(x.b, $dayStarts[x.d0 + i.n + 2]) AS b
    FROM (SELECT y.*, ${dayOf('y.a')} AS d0, ${dayOf('y.b - 0.000001')} AS d1
            FROM (SELECT h.seat_id, h.kind = 'occupied' AS occupied,
                         greatest(date_part('epoch', h.since), $start) AS a, least(date_part('epoch', h.until), $end) AS b
                    FROM occupancy_history h
                   WHERE h.seat_id = ANY($seats) AND h.since >= $startTs - interval '1 day' AND h.since < $endTs AND h.until > $startTs
                  UNION ALL
                  SELECT o.seat_id, k.occupied, date_part('epoch', u.since), date_part('epoch', u.until)
                    FROM occupancy_open o JOIN occupancy_writers w ON w.id = o.writer
                   CROSS JOIN LATERAL (VALUES (false, o.observed_since), (true, o.occupied_since)) AS k(occupied, since)
                   CROSS JOIN LATERAL carrel_utc_days(greatest(k.since, $startTs),
                          least($endTs, CASE WHEN w.alive_at < $nowTs - $staleMs * interval '1 millisecond' THEN w.alive_at ELSE $nowTs END)) AS u
                   WHERE o.seat_id = ANY($seats) AND k.since IS NOT NULL
                  OFFSET 0) y
           WHERE y.b > y.a OFFSET 0) x
   CROSS JOIN (VALUES (0), (1), (2)) AS i(n)
   WHERE i.n <= x.d1 - x.d0
), bx AS MATERIALIZED (
  SELECT x.seat_id, x.no_show, x.counted AND i.n = 0 AS counted, x.d0 + i.n AS d,
         greatest(x.a, $dayStarts[x.d0 + i.n + 1]) AS a, greatest(x.a, least(x.b, $dayStarts[x.d0 + i.n + 2])) AS b, x.ci
    FROM (SELECT y.*, ${dayOf('y.a')} AS d0, ${dayOf('greatest(y.a, y.b - 0.000001)')} AS d1
            FROM (SELECT r.seat_id, r.status = 'NO_SHOW' AS no_show, lower(r.during) >= $startTs AS counted,
                         greatest(date_part('epoch', lower(r.during)), $start) AS a,
                         least(date_part('epoch', CASE WHEN r.status = 'NO_SHOW' THEN least(upper(r.during), greatest(lower(r.during), r.updated_at))
                                                       ELSE upper(r.during) END), $end) AS b,
                         date_part('epoch', r.checked_in_at) AS ci
                    FROM reservations r
                   WHERE r.seat_id = ANY($seats) AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'COMPLETED', 'NO_SHOW')
                     AND lower(r.during) >= $startTs - interval '1 day' AND lower(r.during) < $endTs
                  OFFSET 0) y
           WHERE y.b > y.a OR y.counted OFFSET 0) x
   CROSS JOIN (VALUES (0), (1), (2)) AS i(n)
   WHERE i.n <= x.d1 - x.d0
), px AS (
  SELECT b.seat_id, b.d, h.occupied, greatest(b.a, h.a) AS a, least(b.b, h.b) AS b,
         greatest(b.a, h.a, coalesce(b.ci, 'Infinity')) AS ai
    FROM bx b JOIN hx h ON h.seat_id = b.seat_id AND h.d = b.d AND h.a < b.b AND h.b > b.a
)`;

/** The same pieces cut again at each local hour (by=hour): `k` is the hour. */
const HOURLY = (src: string, extra: string) => `(
  SELECT ${extra}, x.d, g.k, greatest(x.a, $hourStarts[g.k + 1]) AS a, least(x.b, $hourStarts[g.k + 2]) AS b
    FROM ${src} x CROSS JOIN LATERAL generate_series(${hourOf('x.a')}, greatest(${hourOf('x.a')}, ${hourOf('x.b - 0.000001')})) AS g(k))`;

/** Occupied seats at each whole minute (from ceil(a) to before ceil(b)) of the pieces in `source`, per `part`. */
const minuteSeries = (part: string, source: string, markers: string) => `(
  SELECT part, m, sum(sum(delta)) OVER (PARTITION BY part ORDER BY m) AS n
    FROM (SELECT ${part} AS part, ceil(hx.a / 60) * 60 AS m, 1 AS delta FROM ${source} WHERE hx.occupied
          UNION ALL SELECT ${part}, ceil(hx.b / 60) * 60, -1 FROM ${source} WHERE hx.occupied
          ${markers}) e
   GROUP BY part, m)`;

/**
 * Per seat and day, per hour (with the peak), and the peak per area and day, as rows of one
 * result: kind 'seat' (seat_id, k = day), 'hour' (k = hour), 'area' (area, k = day).
 */
const DAY_SUMS = `
WITH ${PIECES},
seat_h AS (SELECT seat_id, d AS k,
                  sum(b - a) FILTER (WHERE occupied) AS occupied, sum(b - a) FILTER (WHERE NOT occupied) AS observed,
                  sum(${openPart('a', 'b', 'd')}) FILTER (WHERE occupied) AS open_occupied,
                  sum(${openPart('a', 'b', 'd')}) FILTER (WHERE NOT occupied) AS open_observed
             FROM hx GROUP BY 1, 2),
seat_b AS (SELECT seat_id, d AS k, sum(b - a) AS booked,
                  count(*) FILTER (WHERE counted)::int AS bookings, count(*) FILTER (WHERE counted AND no_show)::int AS no_shows
             FROM bx GROUP BY 1, 2),
seat_p AS (SELECT seat_id, d AS k,
                  sum(b - a) FILTER (WHERE occupied) AS attended, sum(b - a) FILTER (WHERE NOT occupied) AS booked_observed,
                  sum(greatest(0, b - greatest(a, ai))) FILTER (WHERE occupied) AS attended_in,
                  sum(greatest(0, b - greatest(a, ai))) FILTER (WHERE NOT occupied) AS booked_observed_in
             FROM px GROUP BY 1, 2),
hour_h AS (SELECT k,
                  sum(b - a) FILTER (WHERE occupied) AS occupied, sum(b - a) FILTER (WHERE NOT occupied) AS observed,
                  sum(${openPart('a', 'b', 'd')}) FILTER (WHERE occupied) AS open_occupied,
                  sum(${openPart('a', 'b', 'd')}) FILTER (WHERE NOT occupied) AS open_observed
             FROM ${HOURLY('hx', 'x.occupied')} x GROUP BY 1),
hour_b AS (SELECT k, sum(b - a) AS booked,
                  count(*) FILTER (WHERE counted)::int AS bookings, count(*) FILTER (WHERE counted AND no_show)::int AS no_shows
             FROM ${HOURLY('bx', `x.no_show, x.counted AND g.k = ${hourOf('x.a')} AS counted`)} x GROUP BY 1),
hour_p AS (SELECT k,
                  sum(b - a) FILTER (WHERE occupied) AS attended, sum(b - a) FILTER (WHERE NOT occupied) AS booked_observed,
                  sum(greatest(0, b - greatest(a, ai))) FILTER (WHERE occupied) AS attended_in,
                  sum(greatest(0, b - greatest(a, ai))) FILTER (WHERE NOT occupied) AS booked_observed_in
             FROM ${HOURLY('px', 'x.occupied, x.ai')} x GROUP BY 1),
-- The hours' starts are zero-change minutes, so an hour with no change inside still has the count it starts with.
branch_minutes AS ${minuteSeries('0', 'hx', 'UNION ALL SELECT 0, ceil(s / 60) * 60, 0 FROM unnest($hourStarts) AS s')},
hour_peak AS (SELECT ${hourOf('m')} AS k, max(n)::int AS peak FROM branch_minutes WHERE m >= $start AND m < $end GROUP BY 1),
seat_area AS (SELECT * FROM unnest($seats, $areas) AS sa(seat_id, area)),
area_minutes AS ${minuteSeries(
  'sa.area',
  'hx JOIN seat_area sa ON sa.seat_id = hx.seat_id',
  'UNION ALL SELECT a.area, ceil(s / 60) * 60, 0 FROM (SELECT DISTINCT area FROM seat_area) a CROSS JOIN unnest($dayStarts[1:$days]) AS s',
)},
area_peak AS (SELECT part AS area, ${dayOf('m')} AS k, max(n)::int AS peak FROM area_minutes WHERE m >= $start AND m < $end GROUP BY 1, 2)
SELECT 'seat' AS kind, coalesce(h.seat_id, b.seat_id, p.seat_id) AS seat_id, coalesce(h.k, b.k, p.k) AS k, NULL::text AS area,
       b.bookings, b.no_shows, b.booked, p.booked_observed, p.attended, p.booked_observed_in, p.attended_in,
       h.occupied, h.observed, h.open_occupied, h.open_observed, NULL::int AS peak
  FROM seat_h h
  FULL JOIN seat_b b ON b.seat_id = h.seat_id AND b.k = h.k
  LEFT JOIN seat_p p ON p.seat_id = b.seat_id AND p.k = b.k
UNION ALL
SELECT 'hour', NULL, g.k, NULL, b.bookings, b.no_shows, b.booked, p.booked_observed, p.attended, p.booked_observed_in, p.attended_in,
       h.occupied, h.observed, h.open_occupied, h.open_observed, coalesce(pk.peak, 0)
  FROM generate_series(0, $days * 24 - 1) AS g(k)
  LEFT JOIN hour_h h ON h.k = g.k LEFT JOIN hour_b b ON b.k = g.k LEFT JOIN hour_p p ON p.k = g.k LEFT JOIN hour_peak pk ON pk.k = g.k
 WHERE $hourStarts[g.k + 1] < $end
UNION ALL
SELECT 'area', NULL, k, area, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, peak FROM area_peak`;
