// reservations.walkIn (docs/rules.md, "Walk-ins"), on a FakeClock: a seat free now is booked
// from the slot under way, checked in, for rules.walkInMinutes cut at the next booking (with its
// cleaning buffer) or closing; every booking rule applies, a refusal leaves nothing, and racing
// walk-ins of one seat give one winner.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RpcClient } from '../../clients/rpcClient.js';
import { FakeClock } from '../../src/core/clock.js';
import type { CoreEvent } from '../../src/core/events.js';
import type { ReservationWire } from '../../src/wire/types.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { MONDAY_10_NY, connect, errorOf, iso, makeUsers, seatIdOf, type TestUser } from '../support/core.js';

const T0 = MONDAY_10_NY; // Monday 10:00 in New York; Main Library open 07:00-23:00
const MINUTE = 60_000;
const clock = new FakeClock(Date.parse(T0));
let t: TestServer;
const clients: RpcClient[] = [];
const events: CoreEvent[] = [];
let seq = 0;

beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false } }, { clock });
  t.coreEvents.on((e) => events.push(e));
});
afterEach(() => clock.set(Date.parse(T0)));
afterAll(async () => {
  for (const c of clients) c.close();
  await t.close();
});

async function as(user?: TestUser): Promise<{ c: RpcClient; user: TestUser }> {
  const u = user ?? (await makeUsers(t, 1, `w${seq++}`))[0]!;
  const c = await connect(t, u);
  clients.push(c);
  return { c, user: u };
}

const walkIn = (c: RpcClient, seatId: number) => c.call<ReservationWire>('reservations.walkIn', { seatId });
const rowsOf = async (userId: number) =>
  (await t.db.pool.query('SELECT id, status FROM reservations WHERE user_id = $1', [userId])).rows;

describe('reservations.walkIn', () => {
  it('books from the slot under way for walkInMinutes, checked in at once, announced as a create and a check-in', async () => {
    const { c, user } = await as();
    const seat = await seatIdOf(t, 'R-01');
    clock.set(Date.parse(T0) + 7 * MINUTE);
    events.length = 0;
    const r = await walkIn(c, seat);
    expect(r).toMatchObject({ seatId: seat, userId: user.id, start: T0, end: iso(T0, 120), status: 'CHECKED_IN', checkedInAt: iso(T0, 7) });
    expect(await rowsOf(user.id)).toEqual([{ id: r.id, status: 'CHECKED_IN' }]);
    const mine = events.filter((e) => e.type === 'reservation' && e.reservation.id === r.id);
    expect(mine.map((e) => e.type === 'reservation' && [e.cause, e.reservation.status])).toEqual([
      ['reservation.created', 'CONFIRMED'],
      ['checkIn', 'CHECKED_IN'],
    ]);
    await t.live.settled();
    expect(t.live.model.seat(seat)!.state).toBe('occupied');
    // The seat is taken now: nobody else walks in or books over it.
    const other = await as();
    expect((await errorOf(walkIn(other.c, seat))).code).toBe('CONFLICT');
  });

  it('is cut at the next booking of the seat, including the cleaning buffer', async () => {
    await t.db.pool.query("UPDATE branches SET padding_minutes = 15 WHERE name = 'Main Library'");
    try {
      const seat = await seatIdOf(t, 'R-02');
      const booker = await as();
      await booker.c.call('reservations.create', { seatId: seat, start: iso(T0, 75), end: iso(T0, 135) });
      const { c } = await as();
      clock.set(Date.parse(T0) + 7 * MINUTE);
      // 11:15 less this walk-in's own 15-minute buffer: it ends at 11:00.
      expect(await walkIn(c, seat)).toMatchObject({ start: T0, end: iso(T0, 60), status: 'CHECKED_IN' });
    } finally {
      await t.db.pool.query("UPDATE branches SET padding_minutes = 0 WHERE name = 'Main Library'");
    }
  });

  it('is cut at closing, and refused when closed or closing too soon for the shortest booking', async () => {
    const seat = await seatIdOf(t, 'R-03');
    // Users made at each time, so their tokens are fresh on the fake clock.
    clock.set(Date.parse(T0) + (12 * 60 + 7) * MINUTE); // 22:07
    const { c, user } = await as();
    expect(await walkIn(c, seat)).toMatchObject({ start: iso(T0, 12 * 60), end: iso(T0, 13 * 60) });

    clock.set(Date.parse(T0) + (12 * 60 + 47) * MINUTE); // 22:47: 15 minutes left, minDuration is 30
    const late = await as();
    const closing = await errorOf(walkIn(late.c, await seatIdOf(t, 'R-04')));
    expect(closing.code).toBe('FAILED_PRECONDITION');
    expect(closing.details).toMatchObject({ rule: 'openingHours' });

    clock.set(Date.parse(T0) - 3.5 * 60 * MINUTE); // 06:30
    const early = await as();
    const closed = await errorOf(walkIn(early.c, await seatIdOf(t, 'R-04')));
    expect(closed.details).toMatchObject({ rule: 'openingHours' });
    expect(await rowsOf(late.user.id)).toEqual([]);
    expect(await rowsOf(early.user.id)).toEqual([]);
    expect((await rowsOf(user.id)).length).toBe(1);
  });

  it('is refused with CONFLICT when the seat is taken now or booked again too soon, leaving nothing', async () => {
    const taken = await seatIdOf(t, 'R-05');
    const soon = await seatIdOf(t, 'R-06');
    // Two bookers: one person may hold one seat at a time (rules.oneSeatAtATime).
    const booker = await as();
    const other = await as();
    await booker.c.call('reservations.create', { seatId: taken, start: T0, end: iso(T0, 60) });
    await other.c.call('reservations.create', { seatId: soon, start: iso(T0, 15), end: iso(T0, 60) });
    const { c, user } = await as();
    clock.set(Date.parse(T0) + 7 * MINUTE);
    const now = await errorOf(walkIn(c, taken));
    expect(now.code).toBe('CONFLICT');
    expect(now.details).toEqual({ conflict: { start: T0, end: iso(T0, 60) } });
    const next = await errorOf(walkIn(c, soon));
    expect(next.code).toBe('CONFLICT');
    expect(next.details).toEqual({ conflict: { start: iso(T0, 15), end: iso(T0, 60) } });
    expect(await rowsOf(user.id)).toEqual([]);
  });

  it('refuses an unknown seat (NOT_FOUND), a bad id (INVALID_ARGUMENT), a seat out of service, and an anonymous caller', async () => {
    const { c } = await as();
    expect((await errorOf(walkIn(c, 999_999))).code).toBe('NOT_FOUND');
    expect((await errorOf(c.call('reservations.walkIn', { seatId: 'R-01' }))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(c.call('reservations.walkIn', { seatId: 1, start: T0 }))).code).toBe('INVALID_ARGUMENT');
    const seat = await seatIdOf(t, 'R-07');
    await t.db.pool.query("UPDATE seats SET status = 'OUT_OF_SERVICE' WHERE id = $1", [seat]);
    try {
      expect((await errorOf(walkIn(c, seat))).details).toMatchObject({ rule: 'seatOutOfService' });
    } finally {
      await t.db.pool.query("UPDATE seats SET status = 'IN_SERVICE' WHERE id = $1", [seat]);
    }
    const anon = await connect(t);
    clients.push(anon);
    expect((await errorOf(walkIn(anon, seat))).code).toBe('UNAUTHENTICATED');
  });

  it('applies the quotas and suspension as reservations.create does', async () => {
    const { c, user } = await as();
    // 180 of the 240 daily minutes booked this afternoon: a 120-minute walk-in would pass the quota.
    await c.call('reservations.create', { seatId: await seatIdOf(t, 'Q-10'), start: iso(T0, 180), end: iso(T0, 360) });
    clock.set(Date.parse(T0) + 7 * MINUTE);
    const quota = await errorOf(walkIn(c, await seatIdOf(t, 'R-08')));
    expect(quota.details).toMatchObject({ rule: 'dailyQuota', usedMinutes: 180 });
    expect((await rowsOf(user.id)).length).toBe(1);

    const s = await as();
    await t.db.pool.query('UPDATE users SET suspended_until = $2 WHERE id = $1', [s.user.id, new Date(Date.parse(T0) + 24 * 60 * MINUTE)]);
    const suspended = await errorOf(walkIn(s.c, await seatIdOf(t, 'R-08')));
    expect(suspended.details).toMatchObject({ rule: 'suspended', until: iso(T0, 24 * 60) });
    expect(await rowsOf(s.user.id)).toEqual([]);
  });

  it('abuse: walking into seat after seat to hoard them stops at the quota and the active limit', async () => {
    const { c, user } = await as();
    clock.set(Date.parse(T0) + 7 * MINUTE);
    // Two walk-ins of 120 minutes use the 240-minute daily quota; the third is refused.
    await walkIn(c, await seatIdOf(t, 'G-01'));
    await walkIn(c, await seatIdOf(t, 'G-02'));
    expect((await errorOf(walkIn(c, await seatIdOf(t, 'G-03')))).details).toMatchObject({ rule: 'dailyQuota' });

    // Three active bookings on other days: the active limit refuses a walk-in even with quota left.
    const other = await as();
    for (const day of [1, 2, 3]) {
      await other.c.call('reservations.create', { seatId: await seatIdOf(t, 'G-04'), start: iso(T0, day * 24 * 60), end: iso(T0, day * 24 * 60 + 60) });
    }
    expect((await errorOf(walkIn(other.c, await seatIdOf(t, 'G-05')))).details).toMatchObject({ rule: 'maxActive', maxActivePerUser: 3 });
    expect((await rowsOf(user.id)).length).toBe(2);
    expect((await rowsOf(other.user.id)).length).toBe(3);
  });

  it('racing walk-ins of one seat give one winner; the others hear CONFLICT', async () => {
    const seat = await seatIdOf(t, 'G-06');
    const racers = await Promise.all(Array.from({ length: 8 }, () => as()));
    clock.set(Date.parse(T0) + 7 * MINUTE);
    const results = await Promise.allSettled(racers.map(({ c }) => walkIn(c, seat)));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won.length).toBe(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('CONFLICT');
    const stored = await t.db.pool.query("SELECT count(*)::int AS n FROM reservations WHERE seat_id = $1 AND status = 'CHECKED_IN'", [seat]);
    expect(stored.rows[0].n).toBe(1);
  });
});
