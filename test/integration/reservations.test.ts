import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RpcCallError, type RpcClient } from '../../clients/rpcClient.js';
import { FakeClock } from '../../src/core/clock.js';
import type { CoreEvent } from '../../src/core/events.js';
import type { FreedSlot } from '../../src/core/reservations.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { MONDAY_10_NY, connect, errorOf, iso, makeUsers, seatIdOf, type TestUser } from '../support/core.js';

interface Reservation {
  id: number;
  seatId: number;
  userId: number;
  start: string;
  end: string;
  status: string;
  createdAt: string;
  checkedInAt?: string;
}

const T0 = MONDAY_10_NY;
const clock = new FakeClock(Date.parse(T0));
let t: TestServer;
let users: TestUser[];
let admin: TestUser;
const clients: RpcClient[] = [];
const events: CoreEvent[] = [];
const freed: FreedSlot[] = [];
let seq = 0;

beforeAll(async () => {
  t = await startTestServer({ rules: { dailyQuotaMinutes: 300, weeklyQuotaMinutes: 600 } }, { clock });
  t.coreEvents.on((e) => events.push(e));
  // The slots the booking core frees, as the waitlist is told them (and offers nothing here).
  vi.spyOn(t.waitlist, 'onSlotFreed').mockImplementation(async (slot) => {
    freed.push(slot);
    return 0;
  });
  users = await makeUsers(t, 8, 'res');
  admin = (await makeUsers(t, 1, 'res-admin', 'admin'))[0]!;
});
afterEach(() => clock.set(T0));
afterAll(async () => {
  for (const c of clients) c.close();
  await t.close();
});

/** A client for a fresh user of its own, so the per-user limits of one test do not leak into the next. */
async function as(user?: TestUser): Promise<RpcClient> {
  const u = user ?? (await makeUsers(t, 1, `r${seq++}`))[0]!;
  const c = await connect(t, u);
  clients.push(c);
  return c;
}

const book = (c: RpcClient, seatId: number, fromMin: number, toMin: number, extra: Record<string, unknown> = {}) =>
  c.call<Reservation>('reservations.create', { seatId, start: iso(T0, fromMin), end: iso(T0, toMin), ...extra });

describe('reservations.create', () => {
  it('books a seat: the reservation comes back, is stored once and announced after commit', async () => {
    const c = await as(users[0]);
    const seat = await seatIdOf(t, 'Q-01');
    events.length = 0;
    const r = await book(c, seat, 0, 60);
    expect(r).toEqual({
      id: expect.any(Number),
      seatId: seat,
      userId: users[0]!.id,
      start: T0,
      end: iso(T0, 60),
      status: 'CONFIRMED',
      createdAt: T0,
    });
    const rows = await t.db.pool.query('SELECT status, lower(hold) = lower(during) AS aligned FROM reservations WHERE id = $1', [r.id]);
    expect(rows.rows).toEqual([{ status: 'CONFIRMED', aligned: true }]);
    expect(events).toEqual([
      {
        type: 'reservation',
        cause: 'reservation.created',
        reservation: { id: r.id, seatId: seat, branchId: expect.any(Number), userId: users[0]!.id, start: T0, end: iso(T0, 60), status: 'CONFIRMED' },
        at: T0,
      },
    ]);
  });

  it('lets back-to-back bookings both succeed and refuses an overlap with CONFLICT naming the clash', async () => {
    const seat = await seatIdOf(t, 'Q-02');
    const a = await as();
    const b = await as();
    await book(a, seat, 60, 120);
    await expect(book(b, seat, 120, 180)).resolves.toMatchObject({ status: 'CONFIRMED' });
    const err = await errorOf(book(await as(), seat, 90, 150, {}));
    expect(err.code).toBe('CONFLICT');
    expect(err.details?.conflict).toEqual({ start: iso(T0, 60), end: iso(T0, 120) });
  });

  it("refuses a clash with only the branch's cleaning buffer as rule padding, and a real overlap as CONFLICT", async () => {
    await t.db.pool.query("UPDATE branches SET padding_minutes = 15 WHERE name = 'Engineering Library'");
    try {
      const seat = await seatIdOf(t, 'C-01', 'Engineering Library');
      const a = await as();
      const b = await as();
      await book(a, seat, 0, 60);
      // Right after a's booking: the seat is free then, but a's 15 minutes of cleaning are not.
      const after = await errorOf(book(b, seat, 60, 120));
      expect(after.code).toBe('FAILED_PRECONDITION');
      expect(after.details).toEqual({ rule: 'padding', paddingMinutes: 15, conflict: { start: T0, end: iso(T0, 75) } });
      expect(after.message).toContain('15-minute cleaning buffer');
      await expect(book(b, seat, 75, 135)).resolves.toMatchObject({ status: 'CONFIRMED' });
      // The new booking's own buffer would run into the start of another: padding too.
      await book(a, seat, 240, 300);
      const before = await errorOf(book(b, seat, 180, 240));
      expect(before.code).toBe('FAILED_PRECONDITION');
      expect(before.details).toMatchObject({ rule: 'padding', conflict: { start: iso(T0, 240), end: iso(T0, 315) } });
      await expect(book(b, seat, 165, 225)).resolves.toMatchObject({ status: 'CONFIRMED' });
      // Overlapping a's time itself is a double booking, buffer or not.
      const overlap = await errorOf(book(await as(), seat, 30, 90));
      expect(overlap.code).toBe('CONFLICT');
      expect(overlap.details).toEqual({ conflict: { start: T0, end: iso(T0, 75) } });
      // 60-90 runs into a's buffer and b's time (75-135): whichever clash PostgreSQL names, it is CONFLICT with b's hold.
      const c = await as();
      const both = await errorOf(book(c, seat, 60, 90));
      expect(both.code).toBe('CONFLICT');
      expect(both.details).toEqual({ conflict: { start: iso(T0, 75), end: iso(T0, 150) } });
    } finally {
      await t.db.pool.query("UPDATE branches SET padding_minutes = 0 WHERE name = 'Engineering Library'");
    }
  });

  it('answers a retried create with the same idempotencyKey with the same reservation, once', async () => {
    const c = await as();
    const seat = await seatIdOf(t, 'Q-03');
    const first = await book(c, seat, 0, 60, { idempotencyKey: 'k-1' });
    const again = await book(c, seat, 0, 60, { idempotencyKey: 'k-1' });
    expect(again).toEqual(first);
    // Even after the slot has started and the rules would now refuse a new booking.
    clock.advance(40 * 60_000);
    expect(await book(c, seat, 0, 60, { idempotencyKey: 'k-1' })).toEqual(first);
    const count = await t.db.pool.query("SELECT count(*)::int AS n FROM reservations WHERE idempotency_key = 'k-1'");
    expect(count.rows[0].n).toBe(1);
    const reused = await errorOf(book(c, await seatIdOf(t, 'Q-04'), 0, 60, { idempotencyKey: 'k-1' }));
    expect(reused.code).toBe('FAILED_PRECONDITION');
    expect(reused.details?.rule).toBe('idempotencyKeyReused');
  });

  it('refuses idempotency keys that are not well-formed Unicode, so two different ones can no longer collide', async () => {
    const c = await as();
    const [a, b] = [await seatIdOf(t, 'G-15'), await seatIdOf(t, 'G-16')];
    // The client writes each lone surrogate as a JSON escape; PostgreSQL would store both keys as
    // "key-\ufffd", so the second booking was answered with the first (idempotencyKeyReused).
    for (const [seat, key] of [[a, 'key-\ud800'], [b, 'key-\udc00']] as const) {
      const err = await errorOf(book(c, seat, 60, 120, { idempotencyKey: key }));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.details).toEqual({ path: 'args[0].idempotencyKey' });
    }
    const stored = await t.db.pool.query('SELECT count(*)::int AS n FROM reservations WHERE seat_id = ANY($1)', [[a, b]]);
    expect(stored.rows[0].n).toBe(0);
    // Well-formed keys that differ stay different: an astral character (a surrogate pair) and U+FFFD itself.
    const first = await book(c, a, 60, 120, { idempotencyKey: 'key-😀' });
    const second = await book(c, b, 120, 180, { idempotencyKey: 'key-\ufffd' });
    expect([first.seatId, second.seatId]).toEqual([a, b]);
  });

  it.each([
    ['slotGranularity', 5, 65],
    ['minDuration', 0, 15],
    ['maxDuration', 0, 255],
    ['inThePast', -30, 30],
    ['maxDaysAhead', 15 * 24 * 60, 15 * 24 * 60 + 60],
    ['openingHours', 13 * 60, 14 * 60], // 23:00-00:00 in New York
  ])('refuses a booking that breaks %s with FAILED_PRECONDITION naming it', async (rule, from, to) => {
    const c = await as();
    const err = await errorOf(book(c, await seatIdOf(t, 'Q-05'), from, to));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.details?.rule).toBe(rule);
  });

  it('sees a seat taken out of service at once, and hours changed behind its back once its context cache lapses', async () => {
    const c = await as();
    const seat = await seatIdOf(t, 'Q-06');
    await book(c, seat, 60, 90); // caches the seat's context
    await t.seats.setSeatStatus(seat, 'OUT_OF_SERVICE');
    expect((await errorOf(book(c, seat, 120, 150))).details?.rule).toBe('seatOutOfService');
    await t.seats.setSeatStatus(seat, 'IN_SERVICE');
    await book(c, seat, 120, 150);
    // Another instance closes the branch at 12:00 (a plain UPDATE here): this one learns of it
    // within discovery.seatContextCacheMs.
    const branch = await t.db.pool.query<{ id: number; hours: unknown }>('SELECT b.id, b.hours FROM branches b JOIN seats s ON s.branch_id = b.id WHERE s.id = $1', [seat]);
    const { id, hours } = branch.rows[0]!;
    const closed = Object.fromEntries(Object.keys(hours as object).map((d) => [d, { open: '07:00', close: '12:00' }]));
    await t.db.pool.query('UPDATE branches SET hours = $2 WHERE id = $1', [id, JSON.stringify(closed)]);
    try {
      await book(c, seat, 180, 210); // 13:00: still allowed from the cached hours
      clock.advance(t.config.discovery.seatContextCacheMs);
      expect((await errorOf(book(c, seat, 240, 270))).details?.rule).toBe('openingHours');
    } finally {
      // Through the service, which also forgets the cached contexts.
      await t.seats.setBranchHours({ id }, hours as never);
    }
  });

  it('lets a booking run past midnight in a branch open around the clock', async () => {
    const c = await as();
    const seat = await seatIdOf(t, 'C-02', 'Engineering Library');
    // 23:00-01:00 in Chicago is 05:00Z-07:00Z the next day.
    await expect(c.call('reservations.create', { seatId: seat, start: '2030-01-08T05:00:00Z', end: '2030-01-08T07:00:00Z' })).resolves.toMatchObject({
      status: 'CONFIRMED',
    });
  });

  it('limits a user to maxActivePerUser active reservations; a cancel makes room', async () => {
    const c = await as();
    const seats = await Promise.all(['R-01', 'R-02', 'R-03', 'R-04'].map((l) => seatIdOf(t, l)));
    const made = [];
    for (const [i, s] of seats.slice(0, 3).entries()) made.push(await book(c, s, 60 * i, 60 * i + 30));
    const err = await errorOf(book(c, seats[3]!, 210, 240));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.details).toMatchObject({ rule: 'maxActive', maxActivePerUser: 3 });
    await c.call('reservations.cancel', { id: made[0]!.id });
    await expect(book(c, seats[3]!, 210, 240)).resolves.toMatchObject({ status: 'CONFIRMED' });
  });

  it('enforces the daily quota in the branch time zone, counting completed time too', async () => {
    const c = await as();
    const seats = await Promise.all(['R-05', 'R-06', 'R-07'].map((l) => seatIdOf(t, l)));
    await book(c, seats[0]!, 0, 240); // 4 h of the 5 h quota
    const err = await errorOf(book(c, seats[1]!, 300, 420));
    expect(err.details).toMatchObject({ rule: 'dailyQuota', quotaMinutes: 300, usedMinutes: 240 });
    await expect(book(c, seats[1]!, 300, 360)).resolves.toMatchObject({ status: 'CONFIRMED' });
    // The next local day starts fresh.
    await expect(book(c, seats[2]!, 24 * 60, 24 * 60 + 120)).resolves.toMatchObject({ status: 'CONFIRMED' });
  });

  it('enforces the weekly quota across days of the same local week', async () => {
    const c = await as();
    const seat = await seatIdOf(t, 'R-08');
    const day = 24 * 60;
    // 600-minute week: 4 h Monday, 4 h Tuesday; then 3 h on Wednesday is over.
    const mon = await book(c, seat, 0, 240);
    const tue = await book(c, seat, day, day + 240);
    const err = await errorOf(book(c, seat, 2 * day, 2 * day + 180));
    expect(err.details).toMatchObject({ rule: 'weeklyQuota', quotaMinutes: 600, usedMinutes: 480 });
    // Cancelled time does not count.
    await c.call('reservations.cancel', { id: tue.id });
    await expect(book(c, seat, 2 * day, 2 * day + 180)).resolves.toMatchObject({ status: 'CONFIRMED' });
    expect(mon.status).toBe('CONFIRMED');
  });

  it.each([
    [{ seatId: 999_999, start: T0, end: iso(T0, 60) }, 'NOT_FOUND'],
    [{ seatId: 1, start: 'soon', end: iso(T0, 60) }, 'INVALID_ARGUMENT'],
    [{ seatId: 1, start: T0 }, 'INVALID_ARGUMENT'],
    // A malformed window is the caller's mistake, as waitlist.join says too (not minDuration).
    [{ seatId: 1, start: T0, end: T0 }, 'INVALID_ARGUMENT'],
    [{ seatId: 1, start: iso(T0, 60), end: T0 }, 'INVALID_ARGUMENT'],
    [{ seatId: -1, start: T0, end: iso(T0, 60) }, 'INVALID_ARGUMENT'],
    [{ seatId: 1, start: T0, end: iso(T0, 60), idempotencyKey: 'k'.repeat(129) }, 'INVALID_ARGUMENT'],
  ])('reservations.create %j → %s', async (args, code) => {
    const c = await as();
    expect((await errorOf(c.call('reservations.create', args))).code).toBe(code);
  });

  it('needs a token', async () => {
    const c = await connect(t);
    clients.push(c);
    expect((await errorOf(book(c, 1, 0, 60))).code).toBe('UNAUTHENTICATED');
  });
});

describe('reading reservations', () => {
  it('shows a reservation to its owner and admins only; to anyone else it does not exist', async () => {
    const owner = await as();
    const other = await as();
    const boss = await as(admin);
    const r = await book(owner, await seatIdOf(t, 'G-01'), 0, 60);
    expect(await owner.call('reservations.get', { id: r.id })).toEqual(r);
    expect(await boss.call('reservations.get', { id: r.id })).toEqual(r);
    const hidden = await errorOf(other.call('reservations.get', { id: r.id }));
    expect(hidden.code).toBe('NOT_FOUND');
    expect((await errorOf(other.call('reservations.get', { id: 99_999_999 }))).message).toBe(`NOT_FOUND: no reservation 99999999`);
    expect(JSON.stringify(hidden)).not.toContain(String(r.seatId) + ',');
    expect((await errorOf(other.call('reservations.cancel', { id: r.id }))).code).toBe('NOT_FOUND');
    expect((await errorOf(other.call('reservations.checkIn', { id: r.id }))).code).toBe('NOT_FOUND');
    expect((await errorOf(other.call('reservations.checkOut', { id: r.id }))).code).toBe('NOT_FOUND');
    // Admins read, but transitions stay the owner's.
    expect((await errorOf(boss.call('reservations.cancel', { id: r.id }))).code).toBe('NOT_FOUND');
    expect(await owner.call('reservations.get', { id: r.id })).toMatchObject({ status: 'CONFIRMED' });
    const mine = await other.call<{ reservations: Reservation[] }>('reservations.mine');
    expect(mine.reservations).toEqual([]);
  });

  it('pages upcoming reservations soonest first and history latest first, with opaque cursors', async () => {
    const c = await as();
    const seat = await seatIdOf(t, 'G-02');
    const made: Reservation[] = [];
    for (let i = 0; i < 3; i++) made.push(await book(c, seat, 24 * 60 * i, 24 * 60 * i + 30));
    const p1 = await c.call<{ reservations: Reservation[]; nextCursor: string | null }>('reservations.mine', { limit: 2 });
    expect(p1.reservations.map((r) => r.id)).toEqual([made[0]!.id, made[1]!.id]);
    expect(p1.nextCursor).toEqual(expect.any(String));
    const p2 = await c.call<typeof p1>('reservations.mine', { limit: 2, cursor: p1.nextCursor });
    expect(p2).toEqual({ reservations: [made[2]], nextCursor: null });
    await c.call('reservations.cancel', { id: made[1]!.id });
    clock.advance(60 * 60_000); // the first one has ended
    const history = await c.call<typeof p1>('reservations.mine', { scope: 'history' });
    expect(history.reservations.map((r) => [r.id, r.status])).toEqual([
      [made[1]!.id, 'CANCELLED'],
      [made[0]!.id, 'CONFIRMED'],
    ]);
    const upcoming = await c.call<typeof p1>('reservations.mine', { scope: 'upcoming' });
    expect(upcoming.reservations.map((r) => r.id)).toEqual([made[2]!.id]);
    expect((await errorOf(c.call('reservations.mine', { scope: 'history', cursor: p1.nextCursor }))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(c.call('reservations.mine', { cursor: 'bm9wZQ' }))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(c.call('reservations.mine', { limit: 101 }))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(c.call('reservations.mine', { scope: 'all' }))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('transitions', () => {
  it('cancels a confirmed reservation once, frees the slot and tells the waitlist hook', async () => {
    const c = await as();
    const seat = await seatIdOf(t, 'G-03');
    const r = await book(c, seat, 60, 120);
    events.length = 0;
    freed.length = 0;
    const cancelled = await c.call<Reservation>('reservations.cancel', { id: r.id });
    expect(cancelled).toMatchObject({ id: r.id, status: 'CANCELLED' });
    expect(events.map((e) => e.type === 'reservation' && e.cause)).toEqual(['reservation.cancelled']);
    expect(freed).toEqual([{ seatId: seat, branchId: expect.any(Number), start: new Date(iso(T0, 60)), end: new Date(iso(T0, 120)) }]);
    const again = await errorOf(c.call('reservations.cancel', { id: r.id }));
    expect(again.code).toBe('FAILED_PRECONDITION');
    expect(again.details).toMatchObject({ rule: 'status', status: 'CANCELLED' });
    await expect(book(await as(), seat, 60, 120)).resolves.toMatchObject({ status: 'CONFIRMED' });
  });

  it('a cancel after the start, before check-in, ends it as NO_SHOW through the slot under way and frees the rest', async () => {
    const c = await as();
    const seat = await seatIdOf(t, 'G-17');
    const r = await book(c, seat, 0, 120);
    clock.set(iso(T0, 5));
    events.length = 0;
    freed.length = 0;
    const done = await c.call<Reservation>('reservations.cancel', { id: r.id });
    expect(done).toMatchObject({ id: r.id, status: 'NO_SHOW', start: T0, end: iso(T0, 15) });
    expect(events.map((e) => e.type === 'reservation' && e.cause)).toEqual(['reservation.cancelled']);
    expect(freed).toEqual([{ seatId: seat, branchId: expect.any(Number), start: new Date(T0), end: new Date(iso(T0, 120)) }]);
    expect((await errorOf(c.call('reservations.cancel', { id: r.id }))).details).toMatchObject({ rule: 'status', status: 'NO_SHOW' });
    // The seat is free again from the slot under way, for anyone.
    await expect(book(await as(), seat, 0, 120)).resolves.toMatchObject({ status: 'CONFIRMED' });
  });

  it('cancelling a started booking and booking again from the same slot start no longer dodges the daily quota', async () => {
    // Abuse: at 10:05 cancel the 10:00-14:00 booking and book 10:00-14:00 again, over and over.
    // The daily quota here is 300 minutes; each cancel keeps the 15 minutes under way.
    const c = await as();
    const seat = await seatIdOf(t, 'G-18');
    let r = await book(c, seat, 0, 240);
    clock.set(iso(T0, 5));
    let rebooked = 0;
    let refusal: RpcCallError | undefined;
    for (let cycle = 0; cycle < 20 && !refusal; cycle++) {
      await c.call('reservations.cancel', { id: r.id });
      const next = await book(c, seat, 0, 240).catch((err: unknown) => err);
      if (next instanceof RpcCallError) refusal = next;
      else [r, rebooked] = [next as Reservation, rebooked + 1];
    }
    // 240 + 4 × 15 = 300 fits; the fifth booking again would be 315.
    expect(rebooked).toBe(4);
    expect(refusal?.details).toMatchObject({ rule: 'dailyQuota', quotaMinutes: 300, usedMinutes: 75 });
    const kept = await t.db.pool.query(
      `SELECT status, count(*)::int AS n, sum(extract(epoch FROM upper(during) - lower(during)))::int / 60 AS minutes
         FROM reservations WHERE user_id = $1 GROUP BY status`,
      [r.userId],
    );
    expect(kept.rows).toEqual([{ status: 'NO_SHOW', n: 5, minutes: 75 }]);
  });

  it('refuses to cancel a reservation that has ended', async () => {
    const c = await as();
    const r = await book(c, await seatIdOf(t, 'G-04'), 0, 30);
    clock.advance(30 * 60_000);
    const err = await errorOf(c.call('reservations.cancel', { id: r.id }));
    expect(err.details?.rule).toBe('ended');
  });

  it('checks in only inside the window: opens 15 min before start, closes 15 min after', async () => {
    const c = await as();
    const r = await book(c, await seatIdOf(t, 'G-07'), 60, 120);
    clock.set(iso(T0, 44));
    const early = await errorOf(c.call('reservations.checkIn', { id: r.id }));
    expect(early.details).toMatchObject({ rule: 'checkInWindow', opensAt: iso(T0, 45), closesAt: iso(T0, 75) });
    clock.set(iso(T0, 45));
    const inside = await c.call<Reservation>('reservations.checkIn', { id: r.id });
    expect(inside).toMatchObject({ status: 'CHECKED_IN', checkedInAt: iso(T0, 45) });
    expect((await errorOf(c.call('reservations.checkIn', { id: r.id }))).details).toMatchObject({ rule: 'status', status: 'CHECKED_IN' });
    const other = await as();
    const late = await book(other, await seatIdOf(t, 'G-08'), 60, 120);
    clock.set(iso(T0, 75));
    expect((await errorOf(other.call('reservations.checkIn', { id: late.id }))).details?.rule).toBe('checkInWindow');
  });

  it('checks out early: status COMPLETED, end rounded up to the slot, the rest bookable and offered', async () => {
    const c = await as();
    const seat = await seatIdOf(t, 'G-09');
    const r = await book(c, seat, 0, 120);
    expect((await errorOf(c.call('reservations.checkOut', { id: r.id }))).details).toMatchObject({ rule: 'status', status: 'CONFIRMED' });
    await c.call('reservations.checkIn', { id: r.id });
    clock.set(iso(T0, 37));
    events.length = 0;
    freed.length = 0;
    const done = await c.call<Reservation>('reservations.checkOut', { id: r.id });
    expect(done).toMatchObject({ status: 'COMPLETED', start: T0, end: iso(T0, 45) });
    expect(events.map((e) => e.type === 'reservation' && e.cause)).toEqual(['checkOut']);
    expect(freed).toEqual([{ seatId: seat, branchId: expect.any(Number), start: new Date(iso(T0, 45)), end: new Date(iso(T0, 120)) }]);
    await expect(book(await as(), seat, 45, 120)).resolves.toMatchObject({ status: 'CONFIRMED' });
    expect((await errorOf(c.call('reservations.checkOut', { id: r.id }))).details).toMatchObject({ rule: 'status', status: 'COMPLETED' });
  });

  it('keeps at least the first slot when checking out before the start', async () => {
    const c = await as();
    const r = await book(c, await seatIdOf(t, 'G-10'), 60, 120);
    clock.set(iso(T0, 50));
    await c.call('reservations.checkIn', { id: r.id });
    const done = await c.call<Reservation>('reservations.checkOut', { id: r.id });
    expect(done).toMatchObject({ status: 'COMPLETED', start: iso(T0, 60), end: iso(T0, 75) });
  });

  it('lets exactly one of a racing cancel and check-in win', async () => {
    const owner = (await makeUsers(t, 1, 'race'))[0]!;
    const [c1, c2] = [await as(owner), await as(owner)];
    for (let i = 0; i < 5; i++) {
      clock.set(T0);
      // Starting in 15 minutes: the check-in window is open, and a cancel is a plain CANCELLED.
      const r = await book(c1, await seatIdOf(t, `G-1${i}`), 15, 75);
      const outcomes = await Promise.allSettled([
        c1.call('reservations.cancel', { id: r.id }),
        c2.call('reservations.checkIn', { id: r.id }),
      ]);
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      const loser = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      expect(loser.reason.code).toBe('FAILED_PRECONDITION');
      const final = await c1.call<Reservation>('reservations.get', { id: r.id });
      expect(['CANCELLED', 'CHECKED_IN']).toContain(final.status);
      if (final.status === 'CHECKED_IN') await c1.call('reservations.checkOut', { id: r.id });
    }
  });
});

describe('sensor hooks', () => {
  it('checkInBySensor checks in the booking whose window holds the reading, and nothing else', async () => {
    const c = await as();
    const seat = await seatIdOf(t, 'Q-11');
    const r = await book(c, seat, 60, 120);
    const svc = t.reservations;
    expect(await svc.checkInBySensor(seat, Date.parse(iso(T0, 30)))).toBeNull();
    events.length = 0;
    const fact = await svc.checkInBySensor(seat, Date.parse(iso(T0, 50)));
    expect(fact).toMatchObject({ id: r.id, seatId: seat, status: 'CHECKED_IN' });
    expect(events).toEqual([expect.objectContaining({ type: 'reservation', cause: 'checkIn', at: iso(T0, 50) })]);
    expect(await svc.checkInBySensor(seat, Date.parse(iso(T0, 55)))).toBeNull();
    expect(await c.call('reservations.get', { id: r.id })).toMatchObject({ status: 'CHECKED_IN', checkedInAt: iso(T0, 50) });
  });

  it('releaseBySensor checks out a seat whose away hold ran out, frees the rest, tells the owner and strikes once', async () => {
    const c = await as();
    const seat = await seatIdOf(t, 'Q-12');
    const r = await book(c, seat, 0, 120);
    await c.call('reservations.checkIn', { id: r.id });
    events.length = 0;
    freed.length = 0;
    const svc = t.reservations;
    // Not away: nothing to release.
    expect(await svc.releaseBySensor(seat, Date.parse(iso(T0, 61)))).toBeNull();
    await t.db.pool.query('UPDATE reservations SET away_since = $2, hold_until = $3 WHERE id = $1', [r.id, new Date(iso(T0, 41)), new Date(iso(T0, 61))]);
    // Not before the hold's end.
    expect(await svc.releaseBySensor(seat, Date.parse(iso(T0, 61)) - 1)).toBeNull();
    const fact = await svc.releaseBySensor(seat, Date.parse(iso(T0, 61)));
    expect(fact).toMatchObject({ id: r.id, status: 'COMPLETED', end: iso(T0, 75) });
    expect(events.map((e) => [e.type, 'cause' in e ? e.cause : e.type === 'personal' ? e.kind : ''])).toEqual([
      ['reservation', 'checkOut'],
      ['personal', 'released'],
    ]);
    expect(freed).toEqual([{ seatId: seat, branchId: expect.any(Number), start: new Date(iso(T0, 75)), end: new Date(iso(T0, 120)) }]);
    expect(await svc.releaseBySensor(seat, Date.parse(iso(T0, 62)))).toBeNull();
    const strikes = await t.db.pool.query('SELECT reason FROM strikes WHERE reservation_id = $1', [r.id]);
    expect(strikes.rows).toEqual([{ reason: 'awayExpired' }]);
  });
});
