// Concurrency claims of docs/architecture.md ("Invariants and where they are enforced"): no double
// booking under contention, idempotent retries, and per-user limits that hold when a user's
// requests race each other — one of a user's bookings is in flight at a time (docs/fairness.md),
// the others are refused at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RpcClient } from '../../clients/rpcClient.js';
import { FakeClock } from '../../src/core/clock.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { MONDAY_10_NY, connect, iso, makeUsers, seatIdOf } from '../support/core.js';

const T0 = MONDAY_10_NY;
let t: TestServer;
let conns: RpcClient[];

beforeAll(async () => {
  t = await startTestServer({ db: { poolSize: 10 } }, { clock: new FakeClock(Date.parse(T0)) });
  conns = await Promise.all(Array.from({ length: 5 }, () => connect(t)));
});
afterAll(async () => {
  for (const c of conns) c.close();
  await t.close();
});

const codes = (replies: Array<{ error: { code: string } | null }>) => {
  const out: Record<string, number> = {};
  for (const r of replies) out[r.error?.code ?? 'OK'] = (out[r.error?.code ?? 'OK'] ?? 0) + 1;
  return out;
};

describe('booking under contention', () => {
  it('100 users booking one seat and slot at once over 5 connections: exactly 1 wins, 99 get CONFLICT', async () => {
    const users = await makeUsers(t, 100, 'storm');
    const seat = await seatIdOf(t, 'Q-01');
    const replies = await Promise.all(
      users.map((u, i) =>
        conns[i % conns.length]!.request('reservations.create', [{ seatId: seat, start: iso(T0, 60), end: iso(T0, 120) }], u.token),
      ),
    );
    expect(codes(replies)).toEqual({ OK: 1, CONFLICT: 99 });
    const rows = await t.db.pool.query("SELECT count(*)::int AS n FROM reservations WHERE seat_id = $1 AND status = 'CONFIRMED'", [seat]);
    expect(rows.rows[0].n).toBe(1);
  });

  it('a randomized booking run leaves no two active holds of a seat overlapping', async () => {
    const users = await makeUsers(t, 60, 'rand');
    const seats = await Promise.all(['R-01', 'R-02', 'R-03', 'R-04'].map((l) => seatIdOf(t, l)));
    // A fixed-seed LCG so a failure reproduces.
    let state = 12345;
    const rand = (n: number) => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state % n;
    };
    const requests = users.flatMap((u, i) =>
      [0, 1].map((k) => {
        const from = 15 * rand(40);
        const to = from + 15 * (2 + rand(7));
        return conns[(i + k) % conns.length]!.request(
          'reservations.create',
          [{ seatId: seats[rand(seats.length)], start: iso(T0, from), end: iso(T0, to) }],
          u.token,
        );
      }),
    );
    const replies = await Promise.all(requests);
    const tally = codes(replies);
    // A user's second request while the first is in flight: RESOURCE_EXHAUSTED bookingInFlight.
    expect(Object.keys(tally).every((code) => ['OK', 'CONFLICT', 'FAILED_PRECONDITION', 'RESOURCE_EXHAUSTED'].includes(code))).toBe(true);
    expect(replies.filter((r) => r.error?.code === 'RESOURCE_EXHAUSTED').every((r) => r.error!.details?.reason === 'bookingInFlight')).toBe(true);
    expect(tally.OK).toBeGreaterThan(3);
    expect(tally.CONFLICT).toBeGreaterThan(0);
    const overlaps = await t.db.pool.query(
      `SELECT count(*)::int AS n FROM reservations a JOIN reservations b
         ON a.seat_id = b.seat_id AND a.id < b.id AND a.hold && b.hold
       WHERE a.status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED') AND b.status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED')`,
    );
    expect(overlaps.rows[0].n).toBe(0);
    const stored = await t.db.pool.query('SELECT count(*)::int AS n FROM reservations WHERE seat_id = ANY($1)', [seats]);
    expect(stored.rows[0].n).toBe(tally.OK);
  });

  it('concurrent creates with one idempotencyKey: one is in flight and books, the others wait behind it and get that booking', async () => {
    const [u] = await makeUsers(t, 1, 'idem');
    const seat = await seatIdOf(t, 'Q-02');
    const args = [{ seatId: seat, start: iso(T0, 60), end: iso(T0, 120), idempotencyKey: 'retry-me' }];
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => conns[i % conns.length]!.request('reservations.create', args, u!.token)));
    // One booking of a user in flight at a time (docs/fairness.md): the others wait their turn, then
    // the key finds the booking the first made.
    expect(codes(replies)).toEqual({ OK: 10 });
    expect(new Set(replies.map((r) => (r.result as { id: number }).id)).size).toBe(1);
    const rows = await t.db.pool.query("SELECT count(*)::int AS n FROM reservations WHERE user_id = $1 AND idempotency_key = 'retry-me'", [u!.id]);
    expect(rows.rows[0].n).toBe(1);
  });

  it("a user's racing creates: one in flight at a time, served in turn, and they stop at maxActivePerUser", async () => {
    const [u] = await makeUsers(t, 1, 'greedy');
    const seats = await Promise.all(['G-01', 'G-02', 'G-03', 'G-04', 'G-05', 'G-06'].map((l) => seatIdOf(t, l)));
    const ask = (seatId: number, i: number) =>
      conns[i % conns.length]!.request('reservations.create', [{ seatId, start: iso(T0, 30 * i), end: iso(T0, 30 * i + 30) }], u!.token);
    const racing = await Promise.all(seats.map(ask));
    expect(codes(racing)).toEqual({ OK: 3, FAILED_PRECONDITION: 3 });
    expect(racing.filter((r) => r.error).every((r) => r.error!.details?.rule === 'maxActive')).toBe(true);
    const rows = await t.db.pool.query("SELECT count(*)::int AS n FROM reservations WHERE user_id = $1 AND status = 'CONFIRMED'", [u!.id]);
    expect(rows.rows[0].n).toBe(3);
  });

  it("a user's creates one after another cannot exceed the daily quota", async () => {
    const [u] = await makeUsers(t, 1, 'hog');
    const seats = await Promise.all(['G-07', 'G-08', 'G-09'].map((l) => seatIdOf(t, l)));
    // Three 2-hour bookings against a 240-minute day: at most two fit.
    const replies = [];
    for (const [i, seatId] of seats.entries()) {
      replies.push(await conns[i % conns.length]!.request('reservations.create', [{ seatId, start: iso(T0, 120 * i), end: iso(T0, 120 * i + 120) }], u!.token));
    }
    expect(codes(replies)).toEqual({ OK: 2, FAILED_PRECONDITION: 1 });
    expect(replies.find((r) => r.error)!.error!.details?.rule).toBe('dailyQuota');
  });
});
