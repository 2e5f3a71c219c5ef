// The utilization report's statements, EXPLAINed with their own parameters (as queryPlans.test.ts
// does for the booking core) over a database where the reported branch is a small part: a
// 1,200-seat branch with six weeks of history and bookings beside the Medical Library's simulated
// six weeks. A report must read only its branch's part of the months it covers: the history
// through the partitions' (seat_id, since) index, only the partitions its range touches, the
// bookings through reservations_start, and the days' sums through their primary keys — never a
// whole table (docs/reports.md, "How fast").
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { simulateHistory } from '../../src/history/simulate.js';
import { COMPUTE_SETTINGS } from '../../src/reports/rollup.js';
import { UtilizationReport } from '../../src/reports/utilization.js';
import { Db } from '../../src/db/db.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';

const NOW = Date.parse('2030-03-01T17:00:00Z');
let db: TestDatabase;

/** 1,200 seats, 42 days before NOW of bookings (three a day) and intervals (observed all day, three occupied). */
const LOAD = `
INSERT INTO branches (name, timezone, hours) VALUES ('Big Branch', 'UTC',
  '{"mon":{"open":"00:00","close":"24:00"},"tue":{"open":"00:00","close":"24:00"},"wed":{"open":"00:00","close":"24:00"},"thu":{"open":"00:00","close":"24:00"},"fri":{"open":"00:00","close":"24:00"},"sat":{"open":"00:00","close":"24:00"},"sun":{"open":"00:00","close":"24:00"}}');
INSERT INTO seats (branch_id, area, label) SELECT (SELECT id FROM branches WHERE name = 'Big Branch'), 'Hall ' || (n / 100), 'B-' || n FROM generate_series(1, 1200) n;
INSERT INTO users (student_id, name, password_hash) VALUES ('plan-user', 'Plan User', 'x');
SELECT carrel_history_partitions('2029-12-01T00:00:00Z', '2030-04-01T00:00:00Z');
INSERT INTO reservations (seat_id, user_id, during, hold, status, checked_in_at, created_at, updated_at)
SELECT s.id, u.id, r.during, r.during, 'COMPLETED', lower(r.during), lower(r.during), upper(r.during)
  FROM seats s JOIN branches b ON b.id = s.branch_id AND b.name = 'Big Branch'
 CROSS JOIN (SELECT id FROM users WHERE student_id = 'plan-user') u
 CROSS JOIN generate_series(1, 42) d CROSS JOIN generate_series(0, 2) k
 CROSS JOIN LATERAL (SELECT tstzrange(timestamptz '2030-03-01T08:00:00Z' - make_interval(days => d) + make_interval(hours => 4 * k),
                                      timestamptz '2030-03-01T10:00:00Z' - make_interval(days => d) + make_interval(hours => 4 * k)) AS during) r;
INSERT INTO occupancy_history (seat_id, kind, since, until)
SELECT s.id, 'observed'::occupancy_kind, timestamptz '2030-03-01T00:00:00Z' - make_interval(days => d), timestamptz '2030-03-02T00:00:00Z' - make_interval(days => d)
  FROM seats s JOIN branches b ON b.id = s.branch_id AND b.name = 'Big Branch' CROSS JOIN generate_series(1, 42) d
UNION ALL
SELECT s.id, 'occupied', timestamptz '2030-03-01T08:10:00Z' - make_interval(days => d) + make_interval(hours => 4 * k),
       timestamptz '2030-03-01T09:40:00Z' - make_interval(days => d) + make_interval(hours => 4 * k)
  FROM seats s JOIN branches b ON b.id = s.branch_id AND b.name = 'Big Branch' CROSS JOIN generate_series(1, 42) d CROSS JOIN generate_series(0, 2) k;
INSERT INTO occupancy_seat_days SELECT s.id, (date '2030-03-01' - d), 3, 0, 21600, 21600, 16200, 21600, 16200, 16200, 86400, 16200, 86400
  FROM seats s JOIN branches b ON b.id = s.branch_id AND b.name = 'Big Branch' CROSS JOIN generate_series(1, 42) d;
`;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}
const nodes = (p: PlanNode): PlanNode[] => [p, ...(p.Plans ?? []).flatMap(nodes)];

interface Recorded {
  text: string;
  values: unknown[];
}

/** The pool, with every statement its clients send remembered. */
function recording(pool: pg.Pool): { db: pg.Pool; seen: Recorded[] } {
  const seen: Recorded[] = [];
  const wrap = (c: pg.PoolClient): pg.PoolClient =>
    new Proxy(c, {
      get(target, prop) {
        if (prop === 'query') return (text: string, values?: unknown[]) => (seen.push({ text, values: values ?? [] }), target.query(text, values));
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  const db = new Proxy(pool, {
    get(target, prop) {
      if (prop === 'connect') return async () => wrap(await target.connect());
      if (prop === 'query') return (text: string, values?: unknown[]) => (seen.push({ text, values: values ?? [] }), target.query(text, values));
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { db, seen };
}

/** The plan of a statement as the report runs it: in its transaction, with its settings. */
async function plan(q: Recorded): Promise<PlanNode[]> {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    await c.query(COMPUTE_SETTINGS);
    const res = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${q.text}`, q.values);
    return nodes(res.rows[0]!['QUERY PLAN'][0]!.Plan);
  } finally {
    await c.query('ROLLBACK');
    c.release();
  }
}

const scans = (p: PlanNode[], table: RegExp) => p.filter((n) => n['Relation Name'] !== undefined && table.test(n['Relation Name']));

let seen: Recorded[];
beforeAll(async () => {
  db = await freshDatabase(4);
  await db.pool.query(LOAD);
  await simulateHistory(db.pool, {
    days: 42,
    seed: 5,
    nowMs: NOW,
    branch: 'Medical Library',
    slotMinutes: 15,
    checkInGraceMinutes: 15,
    awayHoldMs: 20 * 60_000,
    staleAfterMs: 60_000,
  });
  // The last three days not summed up yet, as if the maintenance had not come round: computed.
  await db.pool.query("DELETE FROM occupancy_rolled_days WHERE day >= '2030-02-26'");
  // Statistics from every row, so the plans are the same on every run.
  await db.pool.query('SET default_statistics_target = 1000; ANALYZE');
  const rec = recording(db.pool);
  const report = new UtilizationReport({ db: new Db(rec.db), clock: new FakeClock(NOW), staleAfterMs: 60_000 });
  await report.run({ branch: { name: 'Medical Library' }, from: '2030-02-10', to: '2030-03-01', by: 'area' });
  seen = rec.seen.filter((q) => /^\s*(SELECT|WITH)\b/.test(q.text));
}, 300_000);
afterAll(async () => db.drop());

describe('the utilization report\'s plans, over a database where its branch is a small part', () => {
  it('holds the data it is about', async () => {
    const r = await db.pool.query<{ h: number; r: number; d: number }>(
      'SELECT (SELECT count(*)::int FROM occupancy_history) AS h, (SELECT count(*)::int FROM reservations) AS r, (SELECT count(*)::int FROM occupancy_seat_days) AS d',
    );
    expect(r.rows[0]!.h).toBeGreaterThan(150_000);
    expect(r.rows[0]!.r).toBeGreaterThan(150_000);
    expect(r.rows[0]!.d).toBeGreaterThan(50_000);
  });

  it('computes the days not summed up from the branch\'s intervals through the (seat_id, since) index, in the partitions of its range only, and its bookings through reservations_start', async () => {
    const computed = seen.filter((q) => q.text.includes('hx AS MATERIALIZED'));
    expect(computed).toHaveLength(1);
    const p = await plan(computed[0]!);
    const history = scans(p, /^occupancy_history_/);
    expect(history.length).toBeGreaterThan(0);
    // 2030-02-26 to now, and a day before it: February and March only.
    expect(new Set(history.map((n) => n['Relation Name']))).toEqual(new Set(['occupancy_history_2030_02', 'occupancy_history_2030_03']));
    // February holds the range's weeks; March only today's hours (a handful of rows, read as they come).
    const feb = history.filter((n) => n['Relation Name'] === 'occupancy_history_2030_02');
    expect(feb.map((n) => n['Node Type'])).not.toContain('Seq Scan');
    expect(p.some((n) => n['Index Name']?.startsWith('occupancy_history_2030_02_seat_id_since'))).toBe(true);
    const res = scans(p, /^reservations$/);
    expect(res.map((n) => n['Node Type'])).not.toContain('Seq Scan');
    expect(p.some((n) => n['Index Name'] === 'reservations_start')).toBe(true);
  });

  it('reads the days\' sums through their primary keys (a small table may be read whole)', async () => {
    for (const re of [/FROM occupancy_rolled_days/, /FROM occupancy_branch_hours/, /FROM occupancy_seat_days/, /FROM occupancy_area_days/]) {
      const q = seen.find((x) => re.test(x.text));
      expect(q, `${re}`).toBeDefined();
      const p = await plan(q!);
      for (const n of p.filter((x) => x['Node Type'] === 'Seq Scan')) {
        const rows = await db.pool.query<{ n: number }>('SELECT reltuples::int AS n FROM pg_class WHERE relname = $1', [n['Relation Name']]);
        expect(rows.rows[0]!.n, `Seq Scan on ${n['Relation Name']}`).toBeLessThan(5_000);
      }
      // The one that grows with seats × days: one probe range per seat of the branch.
      if (re.source.includes('seat_days')) expect(p.some((n) => n['Index Name'] === 'occupancy_seat_days_pkey')).toBe(true);
    }
  });
});
