// Indexes for the main queries, with their plans checked (db/migrations/002-003):
// ~45,000 reservations over 60 days of history and two weeks ahead, 2,000 users and 3,000
// waitlist entries are generated in SQL; then the statements the code really sends — recorded
// from the services running against that data — are EXPLAINed with their own parameters, and
// no plan may read `reservations` with a Seq Scan; each main query must use the index meant for
// it. The per-user rules inside carrel_user_rules (PL/pgSQL, whose plans EXPLAIN of the call
// does not show) are checked as extracted statements, tied to the function's source text so
// that a change there fails here until the copy is updated, and as generic plans too, because
// PL/pgSQL caches them.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { FakeClock } from '../../src/core/clock.js';
import { discardEvents } from '../../src/core/events.js';
import { LifecycleWorker } from '../../src/core/lifecycle.js';
import { LiveSeats } from '../../src/core/liveSeats.js';
import { LiveView } from '../../src/core/liveView.js';
import { ReservationService } from '../../src/core/reservations.js';
import { SeatContexts } from '../../src/core/seatContexts.js';
import { SeatListing } from '../../src/core/seatListing.js';
import { SeatService } from '../../src/core/seats.js';
import { Waitlist } from '../../src/core/waitlist.js';
import { Db } from '../../src/db/db.js';
import { silentLogger } from '../../src/obs/log.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';

const NOW = Date.parse('2030-01-07T15:00:00Z'); // Monday 10:00 in New York
const config = configSchema.parse({});
const rules = config.rules;
let db: TestDatabase;

/** Reservations: per seat, four 2-hour bookings a day from 60 days back to 13 days ahead. */
const LOAD = `
INSERT INTO users (student_id, name, password_hash) SELECT 'plan-' || i, 'Plan ' || i, 'x' FROM generate_series(1, 2000) i;
-- Bulk load without the indexes and foreign keys, then rebuild them from their own definitions:
-- maintaining seven indexes and two foreign-key checks row by row costs seconds.
CREATE TEMP TABLE plan_ddl AS
  SELECT 'ALTER TABLE reservations ADD CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid) AS ddl,
         'ALTER TABLE reservations DROP CONSTRAINT ' || quote_ident(conname) AS undo
    FROM pg_constraint WHERE conrelid = 'reservations'::regclass AND contype IN ('f', 'x')
  UNION ALL
  SELECT pg_get_indexdef(i.indexrelid), 'DROP INDEX ' || quote_ident(c.relname)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE i.indrelid = 'reservations'::regclass AND NOT i.indisprimary
     AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid);
DO $$ DECLARE r record; BEGIN FOR r IN SELECT undo FROM plan_ddl LOOP EXECUTE r.undo; END LOOP; END $$;
INSERT INTO reservations (seat_id, user_id, during, hold, status, checked_in_at, created_at, updated_at)
SELECT s.id,
       -- One booking in five goes to 40 frequent users (~200 rows each), the rest spread over all.
       u0.id + CASE WHEN ((s.id + d) % 5 + 5) % 5 = 0 THEN s.id % 40 ELSE ((s.id * 7 + d * 13 + k * 31) % 2000 + 2000) % 2000 END,
       r.during, r.during,
       CASE WHEN upper(r.during) <= $1 THEN (ARRAY['COMPLETED', 'COMPLETED', 'COMPLETED', 'NO_SHOW', 'CANCELLED'])[1 + ((s.id + d + k) % 5 + 5) % 5]
            WHEN lower(r.during) <= $1 THEN 'CHECKED_IN'
            ELSE (ARRAY['CONFIRMED', 'CONFIRMED', 'CONFIRMED', 'CANCELLED'])[1 + ((s.id + d + k) % 4 + 4) % 4] END,
       CASE WHEN lower(r.during) <= $1 AND upper(r.during) > $1 THEN lower(r.during) END,
       lower(r.during) - interval '2 days', lower(r.during) - interval '2 days'
FROM seats s
CROSS JOIN (SELECT min(id) AS id FROM users WHERE student_id LIKE 'plan-%') u0
CROSS JOIN generate_series(-60, 13) d
CROSS JOIN generate_series(0, 3) k
CROSS JOIN LATERAL (SELECT tstzrange(timestamptz '2030-01-07T12:00:00Z' + make_interval(days => d, hours => 3 * k),
                                     timestamptz '2030-01-07T14:00:00Z' + make_interval(days => d, hours => 3 * k)) AS during) r;
DO $$ DECLARE r record; BEGIN FOR r IN SELECT ddl FROM plan_ddl LOOP EXECUTE r.ddl; END LOOP; END $$;
-- Waiters for the gaps between bookings (17:00-18:00 UTC), seat-specific and branch-wide,
-- and 200 of them with an OFFERED hold, some lapsed by now.
INSERT INTO waitlist (user_id, seat_id, branch_id, during, status, created_at, updated_at)
SELECT u0.id + i % 2000, CASE WHEN i % 3 = 0 THEN NULL ELSE s.id END, CASE WHEN i % 3 = 0 THEN s.branch_id END,
       tstzrange(timestamptz '2030-01-07T17:00:00Z' + make_interval(days => 1 + i % 12), timestamptz '2030-01-07T18:00:00Z' + make_interval(days => 1 + i % 12)),
       CASE WHEN i <= 200 THEN 'OFFERED' ELSE 'WAITING' END, $1::timestamptz - make_interval(mins => i), $1::timestamptz - make_interval(mins => i)
FROM generate_series(1, 3000) i
CROSS JOIN (SELECT min(id) AS id FROM users WHERE student_id LIKE 'plan-%') u0
JOIN seats s ON s.id = (SELECT min(id) FROM seats) + i % 150;
INSERT INTO reservations (seat_id, user_id, during, hold, status, waitlist_id, offer_expires_at, created_at, updated_at)
SELECT w.seat_id, w.user_id, w.during, w.during, 'OFFERED', w.id, $1::timestamptz + make_interval(mins => w.id::int % 20 - 2), w.created_at, w.created_at
FROM waitlist w WHERE w.status = 'OFFERED' AND w.seat_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.seat_id = w.seat_id AND r.hold && w.during AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED'));
-- Statistics from every row, not a random sample, so the plans are the same on every run.
SET LOCAL default_statistics_target = 1000;
ANALYZE;
`;

interface Recorded {
  text: string;
  values: unknown[];
}

/** Passes every statement through to the pool, and remembers it (text and parameters). */
function recording(pool: pg.Pool): { db: pg.Pool; take(): Recorded[] } {
  let seen: Recorded[] = [];
  const note = (config: string | pg.QueryConfig, values?: unknown[]) => {
    if (typeof config === 'string') seen.push({ text: config, values: values ?? [] });
    else seen.push({ text: config.text, values: config.values ?? [] });
  };
  const client = (c: pg.PoolClient): pg.PoolClient =>
    new Proxy(c, {
      get(target, prop) {
        if (prop === 'query') return (cfg: string | pg.QueryConfig, values?: unknown[]) => (note(cfg, values), target.query(cfg as string, values));
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  const db = new Proxy(pool, {
    get(target, prop) {
      if (prop === 'query') return (cfg: string | pg.QueryConfig, values?: unknown[]) => (note(cfg, values), target.query(cfg as string, values));
      if (prop === 'connect') return async () => client(await target.connect());
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return {
    db,
    take: () => {
      const out = seen;
      seen = [];
      return out;
    },
  };
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

async function explain(text: string, values: unknown[] = []): Promise<PlanNode[]> {
  const res = await db.pool.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${text}`, values);
  return nodes(res.rows[0]!['QUERY PLAN'][0]!.Plan);
}

/** Index names used on reservations; fails on a Seq Scan of it. */
async function reservationIndexes(text: string, values: unknown[] = []): Promise<string[]> {
  const plan = await explain(text, values);
  const seq = plan.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'reservations');
  expect(seq, `Seq Scan on reservations in:\n${text}`).toEqual([]);
  // A Bitmap Index Scan names its index but not the table; carrel's index names say the table.
  return plan.filter((n) => n['Index Name']?.startsWith('reservations_')).map((n) => n['Index Name']!);
}

/** The recorded statements that read or write reservations (EXPLAIN-able ones). */
const onReservations = (rs: Recorded[]) => rs.filter((r) => /^\s*(SELECT|UPDATE|INSERT|WITH)\b/i.test(r.text) && /\breservations\b/.test(r.text));

let rec: ReturnType<typeof recording>;
let clock: FakeClock;
let listing: SeatListing;
let seats: SeatService;
let reservations: ReservationService;
let waitlist: Waitlist;
let lifecycle: LifecycleWorker;
let userId: number;
let bookerId: number;
let seatId: number;

beforeAll(async () => {
  db = await freshDatabase(4);
  await db.pool.query(LOAD.replace(/\$1/g, `'${new Date(NOW).toISOString()}'::timestamptz`));
  rec = recording(db.pool);
  clock = new FakeClock(NOW);
  const recorded = new Db(rec.db);
  const core = { db: recorded, clock, rules, events: discardEvents };
  // The listings' live states come from the live model, loaded as a server loads it (not recorded).
  const model = new LiveSeats(
    { instanceId: 'plans', offlineAfterMs: 120_000, awayEndingMs: 300_000, autoCheckIn: false, autoRelease: false, checkInWindow: { opensBeforeMs: 0, graceMs: 0 } },
    { changes: { publishSeat: () => undefined } },
  );
  model.load(await LiveSeats.loadData(new Db(db.pool), NOW), NOW);
  const live = new LiveView(model, clock);
  const contexts = new SeatContexts({ db: recorded, clock });
  listing = new SeatListing({ ...core, live, cache: { enabled: false, maxEntries: 1, maxBytes: 1 } });
  seats = new SeatService({ ...core, listing, live, contexts });
  reservations = new ReservationService({ ...core, seats: contexts, log: silentLogger, booking: config.booking });
  waitlist = new Waitlist({ db: recorded, clock, events: discardEvents, config: config.waitlist, rules, log: silentLogger });
  lifecycle = new LifecycleWorker({
    db: recorded,
    clock,
    events: discardEvents,
    waitlist,
    // Small batches: the tick's statements are what is checked, not thousands of offers made.
    config: { ...config.lifecycle, batchSize: 5, noShowGraceMinutes: rules.checkInGraceMinutes },
    strikes: rules.strikes,
    log: silentLogger,
  });
  // A frequent user (the longest history: the worst case for their queries), a user with no
  // booking ahead (who may book), and a seat of the Main Library.
  const heavy = await db.pool.query<{ user_id: number }>(`SELECT user_id FROM reservations GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1`);
  userId = heavy.rows[0]!.user_id;
  const light = await db.pool.query<{ user_id: number }>(
    `SELECT user_id FROM reservations GROUP BY user_id HAVING count(*) FILTER (WHERE status IN ('CONFIRMED', 'CHECKED_IN')) = 0 ORDER BY user_id LIMIT 1`,
  );
  bookerId = light.rows[0]!.user_id;
  const s = await db.pool.query<{ id: number }>(`SELECT s.id FROM seats s JOIN branches b ON b.id = s.branch_id WHERE b.name = 'Main Library' ORDER BY s.id LIMIT 1`);
  seatId = s.rows[0]!.id;
  rec.take();
});
afterAll(async () => db.drop());

describe('query plans over ~45,000 reservations', () => {
  it('holds enough rows for the planner to prefer indexes for real', async () => {
    const n = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM reservations');
    expect(n.rows[0]!.n).toBeGreaterThan(40_000);
  });

  it('seats.list probes each seat through the exclusion constraint index for its availability (its live state is the live model\'s)', async () => {
    await listing.list({ branchName: 'Main Library', availableOnly: true, startMs: NOW + 86_400_000, endMs: NOW + 86_400_000 + 3_600_000 });
    await listing.list({ hasPower: true, startMs: NOW, endMs: NOW + 3_600_000 });
    const list = onReservations(rec.take());
    expect(list).toHaveLength(2);
    for (const q of list) expect(await reservationIndexes(q.text, q.values)).toContain('reservations_no_overlap');
  });

  it("seats.availability reads a seat's holds through the same index", async () => {
    await seats.availability(seatId, { date: '2030-01-08' });
    const [q] = onReservations(rec.take());
    expect(await reservationIndexes(q!.text, q!.values)).toEqual(['reservations_no_overlap']);
  });

  it("reservations.mine: upcoming from the user's partial index of active rows, history backward on (user_id, lower(during), id)", async () => {
    await reservations.mine(userId, { scope: 'upcoming', limit: 20 });
    const [upcoming] = onReservations(rec.take());
    expect(await reservationIndexes(upcoming!.text, upcoming!.values)).toContain('reservations_user_active');
    const page = await reservations.mine(userId, { scope: 'history', limit: 20 });
    const [first] = onReservations(rec.take());
    const plan = await explain(first!.text, first!.values);
    expect(plan.find((n) => n['Index Name'] === 'reservations_user_start_id')).toMatchObject({ 'Node Type': 'Index Scan', 'Scan Direction': 'Backward' });
    expect(plan.some((n) => n['Node Type'] === 'Sort')).toBe(false);
    // The next page (keyset on (lower(during), id)) reads the same index; for a user with a
    // few dozen rows the planner may take them as a bitmap and sort them, which is as cheap.
    await reservations.mine(userId, { scope: 'history', limit: 20, cursor: page.nextCursor! });
    const [next] = onReservations(rec.take());
    expect(await reservationIndexes(next!.text, next!.values)).toEqual(['reservations_user_start_id']);
  });

  it('reservations.create is one function call, carrel_book_batch; only a refused retry looks its idempotency key up, by index', async () => {
    const booking = { seatId, startMs: NOW + 86_400_000 + 2 * 3_600_000, endMs: NOW + 86_400_000 + 3 * 3_600_000, idempotencyKey: 'plan-key' };
    await reservations.create({ id: bookerId, role: 'student' }, booking);
    const recorded = rec.take();
    expect(recorded.filter((r) => r.text.includes('carrel_book_batch('))).toHaveLength(1);
    expect(onReservations(recorded)).toEqual([]);
    // The same key, refused by a rule (off the slot grid): the key is looked up before answering.
    await reservations.create({ id: bookerId, role: 'student' }, { ...booking, startMs: booking.startMs + 5 * 60_000 }).catch(() => undefined);
    const lookup = onReservations(rec.take()).filter((r) => r.text.includes('idempotency_key'));
    expect(lookup[0]).toBeDefined();
    expect(await reservationIndexes(lookup[0]!.text, lookup[0]!.values)).toEqual(['reservations_idempotency']);
  });

  describe("best-available's walk inside carrel_book_batch (checked as the statements it runs)", () => {
    // Copied from db/functions/carrel_book_batch.sql, like the user rules below.
    const WALK_WHERE = `WHERE s.branch_id = it.b AND (s.area, s.label, s.id) > (v_ka, v_kl, v_ks) AND s.status = 'IN_SERVICE'`;
    const PROBE_WHERE =
      `WHERE r.seat_id = c.id AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED') ` +
      `AND lower(r.hold) < v_hold_end AND lower(r.hold) > it.st - interval '28 hours' AND upper(r.hold) > it.st`;
    const walk = `SELECT s.id, s.area, s.label, s.has_power, s.has_monitor FROM seats s
      WHERE s.branch_id = $1 AND (s.area, s.label, s.id) > ($2, $3, $4) AND s.status = 'IN_SERVICE'
      ORDER BY s.branch_id, s.area, s.label, s.id
      LIMIT 32`;
    const probe = `SELECT 1 FROM reservations r WHERE r.seat_id = $1 AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED')
      AND lower(r.hold) < $3 AND lower(r.hold) > $2 - interval '28 hours' AND upper(r.hold) > $2`;

    it('the function runs these very statements', async () => {
      const src = await db.pool.query<{ prosrc: string }>(`SELECT prosrc FROM pg_proc WHERE proname = 'carrel_book_batch'`);
      const body = src.rows[0]!.prosrc.replace(/\s+/g, ' ');
      expect(body).toContain(WALK_WHERE);
      expect(body).toContain(PROBE_WHERE);
      expect(body).toContain(`${WALK_WHERE} ORDER BY s.branch_id, s.area, s.label, s.id LIMIT c_page`);
      expect(body).toContain('c_page constant integer := 32;');
    });

    it('walks a large branch in index order without sorting it, and asks each seat by the btree of active holds, in the generic plans PL/pgSQL caches too', async () => {
      // A branch of the size the opening rush fills (a branch of 50 seats may well be sorted: it costs nothing).
      const branch = await db.pool.query<{ id: number }>(`INSERT INTO branches (name, timezone, hours) VALUES ('Plan Hall', 'UTC', '{}') RETURNING id`);
      await db.pool.query(
        `INSERT INTO seats (branch_id, area, label) SELECT $1, 'Hall ' || (n / 100), 'P-' || lpad(n::text, 4, '0') FROM generate_series(0, 1999) n`,
        [branch.rows[0]!.id],
      );
      await db.pool.query('ANALYZE seats');
      const c = await db.pool.connect();
      try {
        for (const mode of ['auto', 'force_generic_plan']) {
          await c.query(`SET plan_cache_mode = ${mode}`);
          await c.query(`PREPARE plan_walk(integer, text, text, integer) AS ${walk}`);
          await c.query(`PREPARE plan_probe(integer, timestamptz, timestamptz) AS ${probe}`);
          const plan = async (sql: string) => nodes((await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${sql}`)).rows[0]!['QUERY PLAN'][0]!.Plan);
          const w = await plan(`EXECUTE plan_walk(${branch.rows[0]!.id}, '', '', 0)`);
          expect(w.some((n) => n['Node Type'] === 'Sort'), mode).toBe(false);
          expect(w.some((n) => n['Index Name'] === 'seats_branch_order'), mode).toBe(true);
          const p = await plan(`EXECUTE plan_probe(${seatId}, '2030-01-08T15:00:00Z', '2030-01-08T17:00:00Z')`);
          expect(p.map((n) => n['Index Name']).filter(Boolean), mode).toEqual(['reservations_seat_active_start']);
          await c.query('DEALLOCATE ALL');
        }
      } finally {
        c.release(true);
      }
    });
  });

  describe('the per-user rules inside carrel_user_rules (checked as the statements it runs)', () => {
    // The WHERE clauses below are copied from db/functions/carrel_user_rules.sql; the first test
    // proves the function still runs exactly these, so a change there must be reflected here.
    const OVERLAP_WHERE =
      `r.user_id = p_user AND r.status IN ('CONFIRMED', 'CHECKED_IN') ` +
      `AND lower(r.during) < p_end AND lower(r.during) > p_start - interval '1 day' AND upper(r.during) > p_start`;
    const ACTIVE_WHERE = `r.user_id = p_user AND r.status IN ('CONFIRMED', 'CHECKED_IN') AND upper(r.during) > p_now`;
    const QUOTA_WHERE =
      `r.user_id = p_user AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'COMPLETED', 'NO_SHOW') AND r.during && v_range ` +
      `AND lower(r.during) < p_period_end[i] AND lower(r.during) >= p_period_start[i] - interval '1 day'`;
    const overlap = `SELECT r.id FROM reservations r WHERE ${OVERLAP_WHERE} ORDER BY lower(r.during), r.id LIMIT 1`
      .replace('p_user', '$1')
      .replace('p_end', '$3::timestamptz')
      .replace(/p_start/g, '$2::timestamptz');
    const active = `SELECT count(*)::integer FROM reservations r WHERE ${ACTIVE_WHERE}`.replace('p_user', '$1').replace('p_now', '$2');
    const quota = `SELECT coalesce(sum(extract(epoch FROM upper(r.during * $2) - lower(r.during * $2))), 0)::integer / 60 FROM reservations r WHERE ${QUOTA_WHERE}`
      .replace('p_user', '$1')
      .replace('v_range', '$2')
      .replace('p_period_end[i]', 'upper($2)')
      .replace('p_period_start[i]', 'lower($2)');
    const day: [Date, Date] = [new Date('2030-01-07T05:00:00Z'), new Date('2030-01-08T05:00:00Z')];
    const week: [Date, Date] = [new Date('2030-01-07T05:00:00Z'), new Date('2030-01-14T05:00:00Z')];

    it('the function runs these very statements', async () => {
      const src = await db.pool.query<{ prosrc: string }>(
        `SELECT p.prosrc FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = 'carrel_user_rules' AND l.lanname = 'plpgsql'`,
      );
      const body = src.rows[0]!.prosrc.replace(/\s+/g, ' ');
      expect(body).toContain(OVERLAP_WHERE);
      expect(body).toContain(ACTIVE_WHERE);
      expect(body).toContain(QUOTA_WHERE);
    });

    it("one seat at a time reads the user's active bookings that start within a day before the window, by index", async () => {
      const at = NOW + 86_400_000;
      expect(await reservationIndexes(overlap, [userId, new Date(at), new Date(at + 3_600_000)])).toEqual(['reservations_user_active']);
    });

    it('the active limit counts only the rows that have not ended, from their own index', async () => {
      expect(await reservationIndexes(active, [userId, new Date(NOW)])).toEqual(['reservations_user_limited_end']);
    });

    it('the daily and weekly quota sums read one user by index, from a day before the period to its end', async () => {
      for (const [s, e] of [day, week]) {
        const used = await reservationIndexes(quota.replace(/\$2/g, '$2::tstzrange'), [userId, `[${s.toISOString()},${e.toISOString()})`]);
        expect(used).toEqual(['reservations_user_start_id']);
      }
    });

    it('and so do the generic plans PL/pgSQL caches for them', async () => {
      const c = await db.pool.connect();
      try {
        await c.query(`SET plan_cache_mode = force_generic_plan`);
        await c.query(`PREPARE plan_overlap(integer, timestamptz, timestamptz) AS ${overlap}`);
        await c.query(`PREPARE plan_active(integer, timestamptz) AS ${active}`);
        await c.query(`PREPARE plan_quota(integer, tstzrange) AS ${quota}`);
        for (const [stmt, args] of [
          ['plan_overlap', `${userId}, '${new Date(NOW + 86_400_000).toISOString()}', '${new Date(NOW + 86_400_000 + 3_600_000).toISOString()}'`],
          ['plan_active', `${userId}, '${new Date(NOW).toISOString()}'`],
          ['plan_quota', `${userId}, '[${week[0].toISOString()},${week[1].toISOString()})'`],
        ] as const) {
          const res = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) EXECUTE ${stmt}(${args})`);
          const plan = nodes(res.rows[0]!['QUERY PLAN'][0]!.Plan);
          expect(plan.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'reservations')).toEqual([]);
          expect(plan.some((n) => n['Index Name']?.startsWith('reservations_'))).toBe(true);
        }
      } finally {
        await c.query('DEALLOCATE ALL');
        c.release(true);
      }
    });
  });

  it("waitlist.mine and a claim find an entry's offer by waitlist_id", async () => {
    const w = await db.pool.query<{ id: number; user_id: number }>(`SELECT id, user_id FROM waitlist WHERE status = 'OFFERED' ORDER BY id LIMIT 1`);
    const { id, user_id } = w.rows[0]!;
    await waitlist.mine({ id: user_id });
    await waitlist.claim({ id: user_id }, id).catch(() => undefined);
    const recorded = onReservations(rec.take());
    const mine = recorded.find((r) => r.text.includes('FROM waitlist w'))!;
    expect(await reservationIndexes(mine.text, mine.values)).toContain('reservations_waitlist');
    // The claim's read of the live offer: by waitlist_id, or through the small partial index
    // of OFFERED rows (only live offers are in it), whichever the planner finds cheaper.
    const offer = recorded.find((r) => r.text.includes('r.waitlist_id = $1 AND r.user_id = $2'))!;
    const used = await reservationIndexes(offer.text, offer.values);
    expect(used.length).toBeGreaterThan(0);
    expect(used.every((i) => i === 'reservations_waitlist' || i === 'reservations_offer_expiry')).toBe(true);
  });

  it("the lifecycle's due queries use their partial indexes, and none of its statements scans reservations", async () => {
    const result = await lifecycle.tick(NOW);
    expect(result.ran).toBe(true);
    expect(result.offersExpired).toBeGreaterThan(0);
    const recorded = onReservations(rec.take());
    const due = (needle: string) => recorded.find((r) => r.text.includes(needle))!;
    expect(await reservationIndexes(due(`status = 'OFFERED' AND offer_expires_at <= $1`).text, due(`status = 'OFFERED' AND offer_expires_at <= $1`).values)).toContain(
      'reservations_offer_expiry',
    );
    const noShow = due(`SET status = 'NO_SHOW'`);
    expect(await reservationIndexes(noShow.text, noShow.values)).toContain('reservations_active_start');
    const completed = due(`SET status = 'COMPLETED'`);
    expect(await reservationIndexes(completed.text, completed.values)).toContain('reservations_active_end');
    // Everything else it ran (offers to waiters, the sweep's free-slot probes) stays off Seq Scan too.
    expect(recorded.length).toBeGreaterThan(5);
    for (const q of recorded) await reservationIndexes(q.text, q.values);
  });
});
