// The opening-rush scenario (loadtest/rush.ts) against a real server, small: every request gets a
// final answer, what the client saw booked is what the database holds, and the read-back finds
// the overlaps and the seats per user. Seat mode (random seat ids) is what every server answers;
// best-available mode is checked in rushBest.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchContext } from '../../loadtest/scenarios.js';
import pg from 'pg';
import { readBack, rush, rushComparisons, type RushFigures } from '../../loadtest/rush.js';
import { addBenchBranch, BENCH_CONFIG_OVERRIDES, externalTarget, RUSH_BRANCH } from '../../loadtest/target.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase } from '../support/db.js';

const SEATS = 40;
const SMALL = { users: 24, scripts: 3, scriptConnections: 2, scriptDepth: 6, maxMs: 30_000 };
// What a seat-id booking may be answered, with or without the one-seat-at-a-time rule and the
// per-user limit on attempts in flight (a refusal is final once its user holds a seat).
const SEAT_MODE_ANSWERS = /^(OK|CONFLICT|FAILED_PRECONDITION \(overlapsOwnBooking\)|RESOURCE_EXHAUSTED \(\w+\))$/;

describe('rush scenario', () => {
  let t: TestServer;
  let ctx: BenchContext;

  beforeAll(async () => {
    const db = await freshDatabase();
    // Before the server starts, so its live model knows the rush seats too.
    await addBenchBranch(db.pool, SEATS, RUSH_BRANCH);
    t = await startTestServer({ rules: BENCH_CONFIG_OVERRIDES.rules, rateLimit: BENCH_CONFIG_OVERRIDES.rateLimit, lifecycle: { enabled: false } }, { db });
    ctx = new BenchContext({ ...externalTarget('127.0.0.1', t.server.ports, process.pid), dbUrl: db.url });
  });
  afterAll(async () => {
    await t?.close();
    await t?.db.drop();
  });

  it('seat mode: every request answered, the client\'s bookings are the database\'s, none overlapping', async () => {
    const r = await rush(ctx, { mode: 'seat', ...SMALL });
    const f = r.extra as unknown as RushFigures;
    const requests = SMALL.users + SMALL.scripts * SMALL.scriptConnections * SMALL.scriptDepth;
    expect(f.requests).toBe(requests);
    expect(r.unanswered).toBe(0);
    expect(r.latency.count).toBe(requests);
    expect(Object.values(f.outcomes).reduce((a, b) => a + b, 0)).toBe(requests);
    expect(Object.keys(f.outcomes).filter((k) => !SEAT_MODE_ANSWERS.test(k))).toEqual([]);
    expect(f.successes).toBe(f.outcomes.OK);
    expect(f.successes).toBeGreaterThan(0);
    expect(f.successes).toBeLessThanOrEqual(SEATS);
    expect(f.sql).toMatchObject({ bookings: f.successes, seats: f.successes, overlappingPairs: 0, seatsDoubleBooked: 0 });
    expect(f.sql.maxSeatsPerUser).toBeGreaterThanOrEqual(1);
    expect(f.expectedSuccesses).toBe(SMALL.users + SMALL.scripts);
    expect(f.lastSuccessMs).toBeGreaterThan(0);
    expect(f.successLatency.count).toBe(f.successes);
    for (const rate of [f.successRate.users, f.successRate.scripts]) {
      expect(rate).toBeGreaterThanOrEqual(0);
      expect(rate).toBeLessThanOrEqual(1);
    }
    const overlaps = rushComparisons(r).find((c) => c.what.endsWith('overlapping bookings in SQL'));
    expect(overlaps).toMatchObject({ value: 0, met: true });
  }, 60_000);

  it('takes a window of its own each run, and the read-back counts a double booking that is there', async () => {
    const first = (await rush(ctx, { mode: 'seat', ...SMALL, users: 4, scripts: 0 })).extra as unknown as RushFigures;
    expect(first.sql.overlappingPairs).toBe(0);
    const second = (await rush(ctx, { mode: 'seat', ...SMALL, users: 4, scripts: 0 })).extra as unknown as RushFigures;
    expect(Date.parse(second.window.start)).toBeGreaterThanOrEqual(Date.parse(first.window.end));
    // A second booking of a booked seat by the same user, which the constraint would refuse, made
    // with the constraint dropped for a moment: the read-back counts what the table holds.
    const pool = t.db.pool;
    const { rows } = await pool.query<{ seat_id: number; user_id: number; during: string }>(
      `SELECT r.seat_id, r.user_id, r.during::text FROM reservations r JOIN seats s ON s.id = r.seat_id JOIN branches b ON b.id = s.branch_id
       WHERE b.name = $1 AND r.status = 'CONFIRMED' AND r.during && tstzrange($2, $3) LIMIT 1`,
      [RUSH_BRANCH, second.window.start, second.window.end],
    );
    const b = rows[0]!;
    await pool.query('ALTER TABLE reservations DROP CONSTRAINT reservations_no_overlap');
    const extra = await pool.query<{ id: string }>(`INSERT INTO reservations (seat_id, user_id, during, hold, status) VALUES ($1, $2, $3, $3, 'CONFIRMED') RETURNING id`, [b.seat_id, b.user_id, b.during]);
    const db = new pg.Client({ connectionString: t.db.url });
    await db.connect();
    try {
      expect(await readBack(db, second.window)).toEqual({
        bookings: second.successes + 1,
        seats: second.successes,
        users: second.sql.users,
        maxSeatsPerUser: 2,
        overlappingPairs: 1,
        seatsDoubleBooked: 1,
      });
    } finally {
      await db.end();
      await pool.query('DELETE FROM reservations WHERE id = $1', [extra.rows[0]!.id]);
      await pool.query(`ALTER TABLE reservations ADD CONSTRAINT reservations_no_overlap EXCLUDE USING gist (seat_id WITH =, hold WITH &&) WHERE (status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED'))`);
    }
  }, 60_000);

  it('aims only at this machine, and needs the database to read back', async () => {
    const far = new BenchContext({ ...externalTarget('10.0.0.1', t.server.ports), dbUrl: t.db.url });
    await expect(rush(far, { mode: 'best', ...SMALL })).rejects.toThrow(/only at a server on this machine/);
    const noDb = new BenchContext(externalTarget('127.0.0.1', t.server.ports));
    await expect(rush(noDb, { mode: 'best', ...SMALL })).rejects.toThrow(/needs the benchmark database/);
  });
});
