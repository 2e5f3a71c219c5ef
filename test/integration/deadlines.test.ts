// The request deadline reaches the database (audit: with the user's booking lock held, two
// creates were told DEADLINE_EXCEEDED at 1 s and both were CONFIRMED once the lock came free).
// One pooled connection: a booking whose INSERT waits for another transaction's row is told
// DEADLINE_EXCEEDED at about the deadline, and did not happen — the lock wait was cancelled in
// PostgreSQL and nothing commits later. A retry with the same idempotencyKey then books exactly
// once. A booking never waits for the user's lock (it is tried: held elsewhere, the user has
// another booking or claim in flight, and the answer is RESOURCE_EXHAUSTED at once); a claim does
// wait for it, and until its deadline only.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { deadlineAt } from '../../src/deadline.js';
import { connectWithin } from '../../src/db/deadline.js';
import { LockClass } from '../../src/db/lockKeys.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { MONDAY_10_NY, connect, errorOf, iso, makeUsers, seatIdOf } from '../support/core.js';
import { startTestServer, type TestServer } from '../support/server.js';

const REQUEST_TIMEOUT_MS = 500;

let db: TestDatabase;
let t: TestServer;

beforeAll(async () => {
  db = await freshDatabase(1);
  t = await startTestServer(
    { db: { poolSize: 1 }, limits: { requestTimeoutMs: REQUEST_TIMEOUT_MS }, lifecycle: { enabled: false }, rateLimit: { enabled: false } },
    { db, clock: new FakeClock(Date.parse(MONDAY_10_NY)) },
  );
});
afterAll(async () => {
  await t.close();
  await db.drop();
});

/** Lock waits of any kind in the test database (an INSERT waiting for another's row waits on its transaction id). */
async function lockWaiters(): Promise<number> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const r = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND (database IS NULL OR database = (SELECT oid FROM pg_database WHERE datname = current_database()))`,
    );
    return r.rows[0]!.n;
  } finally {
    await c.end();
  }
}

async function waitersOnAdvisoryLocks(): Promise<number> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const r = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    return r.rows[0]!.n;
  } finally {
    await c.end();
  }
}

describe('request deadlines and the database', () => {
  it("a booking waiting for another transaction's row on its seat gets DEADLINE_EXCEEDED at the deadline and books nothing; a retry with the key books once", async () => {
    const [u, other] = await makeUsers(t, 2, 'deadline');
    const seat = await seatIdOf(t, 'Q-01');
    const c = await connect(t, u);
    // A writer that holds no seat lock (none of carrel's does that) with an uncommitted clashing row.
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    const args = { seatId: seat, start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 60), idempotencyKey: 'dl-0' };
    try {
      await holder.query('BEGIN');
      await holder.query(
        `INSERT INTO reservations (seat_id, user_id, during, hold, status) VALUES ($1, $2, tstzrange($3, $4), tstzrange($3, $4), 'CONFIRMED')`,
        [seat, other!.id, MONDAY_10_NY, iso(MONDAY_10_NY, 60)],
      );
      const started = Date.now();
      const err = await errorOf(c.call('reservations.create', args));
      const elapsed = Date.now() - started;
      expect(err.code).toBe('DEADLINE_EXCEEDED');
      expect(elapsed).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 60);
      expect(elapsed).toBeLessThan(REQUEST_TIMEOUT_MS + 400);
      // The booking statement is no longer waiting: PostgreSQL cancelled the wait.
      const until = Date.now() + 2000;
      while ((await lockWaiters()) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(await lockWaiters()).toBe(0);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    // The one connection is free again (nothing kept it), and nothing was booked, then or now.
    expect(await c.call<{ reservations: unknown[] }>('reservations.mine')).toEqual({ reservations: [], nextCursor: null });
    const count = async () => (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM reservations WHERE user_id = $1', [u!.id])).rows[0]!.n;
    expect(await count()).toBe(0);

    // What docs/protocol.md ("Deadlines") tells a client to do after DEADLINE_EXCEEDED: retry with
    // the same key.
    const first = await c.call<{ id: number; status: string }>('reservations.create', args);
    expect(first.status).toBe('CONFIRMED');
    expect(await c.call<{ id: number }>('reservations.create', args)).toMatchObject({ id: first.id });
    expect(await count()).toBe(1);
    c.close();
  });

  it("with the user's booking lock held elsewhere, a booking is refused at once, RESOURCE_EXHAUSTED bookingInFlight, and books nothing", async () => {
    const [u] = await makeUsers(t, 1, 'deadline-busy');
    const c = await connect(t, u);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1, $2)', [LockClass.userBooking, u!.id]);
      const started = Date.now();
      const err = await errorOf(c.call('reservations.create', { seatId: await seatIdOf(t, 'Q-02'), start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 60) }));
      expect(err.code).toBe('RESOURCE_EXHAUSTED');
      expect(err.details).toEqual({ reason: 'bookingInFlight', retryAfterMs: expect.any(Number), per: 'user' });
      expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS / 2);
      expect(await waitersOnAdvisoryLocks()).toBe(0);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      await holder.end();
    }
    const n = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM reservations WHERE user_id = $1', [u!.id]);
    expect(n.rows[0]!.n).toBe(0);
    c.close();
  });

  it('a claim blocked on the booking lock is refused at the deadline and leaves the offer to claim later', async () => {
    const [u] = await makeUsers(t, 1, 'deadline-claim');
    const seat = await seatIdOf(t, 'Q-03');
    const start = MONDAY_10_NY;
    const end = iso(MONDAY_10_NY, 60);
    const w = await db.pool.query<{ id: number }>(
      `INSERT INTO waitlist (user_id, seat_id, during, status) VALUES ($1, $2, tstzrange($3, $4), 'OFFERED') RETURNING id`,
      [u!.id, seat, start, end],
    );
    const entry = w.rows[0]!.id;
    await db.pool.query(
      `INSERT INTO reservations (seat_id, user_id, during, hold, status, waitlist_id, offer_expires_at)
       VALUES ($1, $2, tstzrange($3, $4), tstzrange($3, $4), 'OFFERED', $5, $6)`,
      [seat, u!.id, start, end, entry, iso(MONDAY_10_NY, 10)],
    );
    const c = await connect(t, u);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1, $2)', [LockClass.userBooking, u!.id]);
      expect((await errorOf(c.call('waitlist.claim', { id: entry }))).code).toBe('DEADLINE_EXCEEDED');
      const until = Date.now() + 2000;
      while ((await waitersOnAdvisoryLocks()) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(await waitersOnAdvisoryLocks()).toBe(0);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      await holder.end();
    }
    const status = await db.pool.query('SELECT status FROM reservations WHERE waitlist_id = $1', [entry]);
    expect(status.rows).toEqual([{ status: 'OFFERED' }]);
    expect(await c.call('waitlist.claim', { id: entry })).toMatchObject({ status: 'CONFIRMED' });
    c.close();
  });

  it('a request waiting for a pooled connection gives up at its deadline, and the connection it was late for goes back to the pool', async () => {
    const held = await db.pool.connect();
    let released = false;
    try {
      const started = Date.now();
      const err = await connectWithin(db.pool, deadlineAt(Date.now() + 150)).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
      expect(Date.now() - started).toBeLessThan(400);
      held.release();
      released = true;
      // The late waiter received the connection and handed it straight back.
      const until = Date.now() + 2000;
      while (db.pool.idleCount !== db.pool.totalCount && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      expect(db.pool.waitingCount).toBe(0);
      expect(db.pool.idleCount).toBe(db.pool.totalCount);
      const again = await connectWithin(db.pool, deadlineAt(Date.now() + 150));
      again.release();
    } finally {
      if (!released) held.release();
    }
  });
});
