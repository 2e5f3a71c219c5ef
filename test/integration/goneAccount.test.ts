// A token outlives its account: after the user row is deleted (or for an id this database never
// had) the token is still signed. Every method such a token can call answers UNAUTHENTICATED —
// not INTERNAL from the foreign key a booking trips, not NOT_FOUND, not a quiet empty list
// (docs/rules.md, "Deleted accounts").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RpcClient } from '../../clients/rpcClient.js';
import { FakeClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import type { MethodContext } from '../../src/rpc/registry.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { MONDAY_10_NY, connect, errorOf, iso, makeUsers, seatIdOf, type TestUser } from '../support/core.js';

const T0 = MONDAY_10_NY;
const clock = new FakeClock(Date.parse(T0));
let t: TestServer;
let other: TestUser;
let otherBooking: number;
let heldSeat: number;
let freeSeat: number;
const clients: RpcClient[] = [];

beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false } }, { clock });
  other = (await makeUsers(t, 1, 'still-here'))[0]!;
  [heldSeat, freeSeat] = [await seatIdOf(t, 'Q-01'), await seatIdOf(t, 'Q-02')];
  const c = await client(other);
  otherBooking = (await c.call<{ id: number }>('reservations.create', { seatId: heldSeat, start: iso(T0, 60), end: iso(T0, 120) })).id;
});
afterAll(async () => {
  for (const c of clients) c.close();
  await t.close();
});

async function client(user?: TestUser): Promise<RpcClient> {
  const c = await connect(t, user);
  clients.push(c);
  return c;
}

async function deleted(prefix: string, role: 'student' | 'admin' = 'student'): Promise<TestUser> {
  const [u] = await makeUsers(t, 1, prefix, role);
  await t.db.pool.query('DELETE FROM users WHERE id = $1', [u!.id]);
  return u!;
}

/**
 * Valid arguments for every method a student token can call, chosen so that a live account
 * would reach the outcome that used to leak: the booking's INSERT (INTERNAL), someone else's
 * reservation or an unknown entry (NOT_FOUND), an empty list ([]), plain success.
 */
const calls = (token: string): Record<string, unknown[]> => ({
  'auth.me': [],
  'auth.use': [{ token }],
  'reservations.create': [{ seatId: freeSeat, start: iso(T0, 60), end: iso(T0, 120), idempotencyKey: 'gone-1' }],
  'reservations.get': [{ id: otherBooking }],
  'reservations.mine': [{ scope: 'history' }],
  'reservations.cancel': [{ id: otherBooking }],
  'reservations.checkIn': [{ id: otherBooking }],
  'reservations.checkOut': [{ id: otherBooking }],
  'reservations.walkIn': [{ seatId: freeSeat }],
  // The seat is taken for the window, so a live account would be put on the waitlist.
  'waitlist.join': [{ seatId: heldSeat, start: iso(T0, 60), end: iso(T0, 120) }],
  'waitlist.mine': [],
  'waitlist.leave': [{ id: 999_999 }],
  'waitlist.claim': [{ id: 999_999 }],
  'server.stats': [],
});

async function rowsOf(userId: number): Promise<number> {
  const res = await t.db.pool.query<{ n: number }>(
    'SELECT (SELECT count(*) FROM reservations WHERE user_id = $1) + (SELECT count(*) FROM waitlist WHERE user_id = $1) AS n',
    [userId],
  );
  return Number(res.rows[0]!.n);
}

describe('a token whose account is gone', () => {
  it('the table covers every method a user token can call (a new one must be added here)', () => {
    const userMethods = t.registry.names().filter((n) => t.registry.get(n)!.access === 'user');
    expect(Object.keys(calls('x')).sort()).toEqual([...userMethods, 'auth.use'].sort());
  });

  it('is UNAUTHENTICATED on every one of them, sent with each request', async () => {
    const gone = await deleted('gone-per-request');
    const c = await client();
    for (const [method, args] of Object.entries(calls(gone.token))) {
      const reply = await c.request(method, args, gone.token);
      expect(reply.error?.code, method).toBe('UNAUTHENTICATED');
    }
    expect(await rowsOf(gone.id)).toBe(0);
  });

  it('and on a connection that adopted the token while the account still existed', async () => {
    const [u] = await makeUsers(t, 1, 'gone-adopted');
    const c = await client();
    await c.call('auth.use', { token: u!.token });
    expect(await c.call('reservations.mine')).toMatchObject({ reservations: [] });
    await t.db.pool.query('DELETE FROM users WHERE id = $1', [u!.id]);
    for (const [method, args] of Object.entries(calls(u!.token))) {
      const reply = await c.request(method, args);
      expect(reply.error?.code, method).toBe('UNAUTHENTICATED');
    }
    expect(await rowsOf(u!.id)).toBe(0);
  });

  it('and for an id this database never had (a token minted elsewhere with the same secret)', async () => {
    const stranger = t.tokens.issue({ id: 2_000_000_000, studentId: 'nobody', name: 'Nobody', role: 'student' }).token;
    const c = await client();
    for (const method of ['reservations.create', 'reservations.get', 'reservations.mine', 'waitlist.mine', 'auth.me']) {
      expect((await c.request(method, calls(stranger)[method], stranger)).error?.code, method).toBe('UNAUTHENTICATED');
    }
  });

  it('every admin method refuses a deleted admin with UNAUTHENTICATED, before its arguments matter', async () => {
    const boss = await deleted('gone-admin', 'admin');
    const admin = t.registry.names().filter((n) => t.registry.get(n)!.access === 'admin');
    expect(admin.length).toBeGreaterThan(0);
    const ctx: MethodContext = {
      user: { id: boss.id, studentId: boss.studentId, name: 'Gone', role: 'admin' },
      remoteAddress: 'local',
      deadlineMs: Date.now() + 5_000,
      adoptToken: () => {
        throw new Error('not in this test');
      },
      holdReading: () => undefined,
      log: silentLogger,
    };
    for (const name of admin) {
      await expect(Promise.resolve().then(() => t.registry.get(name)!.handler(undefined, ctx)), name).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
      });
    }
  });

  it('a flood of lookups with such a token is answered UNAUTHENTICATED, never INTERNAL, and writes nothing', async () => {
    const gone = await deleted('gone-flood');
    const c = await client();
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        i % 2 === 0
          ? c.request('reservations.get', [{ id: i + 1 }], gone.token)
          : c.request('reservations.create', [{ seatId: freeSeat, start: iso(T0, 60), end: iso(T0, 120) }], gone.token),
      ),
    );
    // 100 pipelined requests of one client: past its database queue (docs/fairness.md) some are
    // refused RESOURCE_EXHAUSTED at once; every other one is UNAUTHENTICATED, none INTERNAL.
    const codes = replies.map((r) => r.error?.code);
    expect(new Set(codes.filter((c) => c !== 'RESOURCE_EXHAUSTED'))).toEqual(new Set(['UNAUTHENTICATED']));
    expect(codes.filter((c) => c === 'UNAUTHENTICATED').length).toBeGreaterThanOrEqual(16);
    expect(await rowsOf(gone.id)).toBe(0);
  });

  it('a live account still hears NOT_FOUND and empty lists: the check answers only for a missing account', async () => {
    const [fresh] = await makeUsers(t, 1, 'live-and-new');
    const c = await client(fresh);
    expect((await errorOf(c.call('reservations.get', { id: otherBooking }))).code).toBe('NOT_FOUND');
    expect((await errorOf(c.call('reservations.cancel', { id: 999_999 }))).code).toBe('NOT_FOUND');
    expect((await errorOf(c.call('waitlist.leave', { id: 999_999 }))).code).toBe('NOT_FOUND');
    expect((await errorOf(c.call('waitlist.claim', { id: 999_999 }))).code).toBe('NOT_FOUND');
    expect(await c.call('reservations.mine', { scope: 'history' })).toEqual({ reservations: [], nextCursor: null });
    expect(await c.call('waitlist.mine')).toEqual([]);
    expect(await c.call('server.stats')).toMatchObject({});
  });
});
