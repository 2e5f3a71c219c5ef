import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RpcClient, type RpcReply } from '../../clients/rpcClient.js';
import type { AuthUser } from '../../src/auth/tokens.js';
import { FakeClock } from '../../src/core/clock.js';
import { discardEvents, type CoreEvent } from '../../src/core/events.js';
import { Waitlist } from '../../src/core/waitlist.js';
import { Db } from '../../src/db/db.js';
import { LockClass } from '../../src/db/lockKeys.js';
import { silentLogger } from '../../src/obs/log.js';
import { captureEvents, insertBooking, insertUser, seatsOf, statusOf } from '../support/fixtures.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { subscribe, waitFor } from '../support/live.js';

const T0 = Date.parse('2026-01-05T15:00:00Z');
const at = (hhmm: string): string => `2026-01-05T${hhmm}:00Z`;
const iso = (hhmm: string): string => new Date(at(hhmm)).toISOString();

let t: TestServer;
let rpc: RpcClient;
const clock = new FakeClock(T0);
let main: { id: number; branchId: number }[];
let medical: { id: number; branchId: number }[];
let cap: ReturnType<typeof captureEvents>;
let offerMs: number;

beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false } }, { clock });
  rpc = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
  main = await seatsOf(t.db.pool, 'Main Library');
  medical = await seatsOf(t.db.pool, 'Medical Library');
  cap = captureEvents(t);
  offerMs = t.config.waitlist.offerMs;
});
afterAll(async () => {
  cap.stop();
  rpc.close();
  await t.close();
});
beforeEach(async () => {
  await t.db.pool.query('TRUNCATE reservations, waitlist, strikes');
  await t.db.pool.query(`UPDATE seats SET status = 'IN_SERVICE'`);
  clock.set(T0);
  cap.clear();
});

function call(user: AuthUser | null, method: string, args?: unknown): Promise<RpcReply> {
  return rpc.request(method, args === undefined ? undefined : [args], user ? t.tokens.issue(user).token : undefined);
}
async function ok<T = any>(user: AuthUser, method: string, args?: unknown): Promise<T> {
  const reply = await call(user, method, args);
  expect(reply.error).toBeNull();
  return reply.result as T;
}
async function fails(user: AuthUser | null, method: string, args: unknown, code: string, rule?: string): Promise<void> {
  const reply = await call(user, method, args);
  expect(reply.error, `${method} ${JSON.stringify(args)}`).toMatchObject(rule ? { code, details: { rule } } : { code });
}

/** Books every seat of the Medical Library for the window, as one owner. */
async function bookBranch(ownerId: number, start: string, end: string): Promise<void> {
  await t.db.pool.query(
    `INSERT INTO reservations (seat_id, user_id, during, hold, status)
     SELECT s.id, $1, tstzrange($2, $3, '[)'), tstzrange($2, $3, '[)'), 'CONFIRMED'
       FROM seats s JOIN branches b ON b.id = s.branch_id WHERE b.name = 'Medical Library'`,
    [ownerId, start, end],
  );
}

/** Cancels a seat's booking the way the booking code will, then calls the waitlist hook. */
async function freeSeat(seatId: number, branchId: number, start: string, end: string): Promise<number> {
  await t.db.pool.query(`UPDATE reservations SET status = 'CANCELLED' WHERE seat_id = $1 AND status = 'CONFIRMED'`, [seatId]);
  return t.waitlist.onSlotFreed({ seatId, branchId, start: new Date(start), end: new Date(end) });
}

const personal = (kind: string) =>
  cap.events.filter((e): e is Extract<CoreEvent, { type: 'personal' }> => e.type === 'personal' && e.kind === kind);

describe('waitlist', () => {
  it('registers the four waitlist methods under their API names', () => {
    expect(t.registry.names().filter((n) => n.startsWith('waitlist.'))).toEqual([
      'waitlist.claim',
      'waitlist.join',
      'waitlist.leave',
      'waitlist.mine',
    ]);
  });

  it('join refuses bad windows and targets with stable codes', async () => {
    const u = await insertUser(t.db.pool);
    const owner = await insertUser(t.db.pool);
    const seat = main[0]!.id;
    await insertBooking(t.db.pool, { seatId: seat, userId: owner.id, start: at('16:00'), end: at('20:00') });
    await t.db.pool.query(`UPDATE seats SET status = 'OUT_OF_SERVICE' WHERE id = $1`, [main[5]!.id]);
    const w = { start: at('17:00'), end: at('18:00') };
    await fails(null, 'waitlist.join', { seatId: seat, ...w }, 'UNAUTHENTICATED');
    await fails(u, 'waitlist.join', { seatId: seat, start: at('17:00'), end: at('17:00') }, 'INVALID_ARGUMENT');
    await fails(u, 'waitlist.join', { seatId: seat, start: at('18:00'), end: at('17:00') }, 'INVALID_ARGUMENT');
    await fails(u, 'waitlist.join', { seatId: seat, start: '2026-01-05T17:00:00', end: '2026-01-05T18:00:00' }, 'INVALID_ARGUMENT');
    await fails(u, 'waitlist.join', { seatId: String(seat), ...w }, 'INVALID_ARGUMENT');
    await fails(u, 'waitlist.join', { seatId: seat, branch: 'Main Library', ...w }, 'INVALID_ARGUMENT');
    await fails(u, 'waitlist.join', { ...w }, 'INVALID_ARGUMENT');
    await fails(u, 'waitlist.join', { seatId: seat, ...w, extra: 1 }, 'INVALID_ARGUMENT');
    await fails(u, 'waitlist.join', { seatId: seat, start: at('14:00'), end: at('16:00') }, 'FAILED_PRECONDITION', 'inThePast');
    // The slot under way may be waited for ("this seat, for the rest of this hour"); the one before may not.
    await fails(u, 'waitlist.join', { seatId: seat, start: at('14:45'), end: at('16:30') }, 'FAILED_PRECONDITION', 'inThePast');
    clock.set(at('16:10'));
    try {
      const v = await insertUser(t.db.pool);
      const current = await ok(v, 'waitlist.join', { seatId: seat, start: at('16:00'), end: at('17:00') });
      expect(current).toMatchObject({ status: 'WAITING', position: 1 });
      await ok(v, 'waitlist.leave', { id: current.id });
    } finally {
      clock.set(T0);
    }
    await fails(u, 'waitlist.join', { seatId: seat, start: at('16:00'), end: '2026-01-06T05:00:00Z' }, 'FAILED_PRECONDITION', 'maxDuration');
    await fails(u, 'waitlist.join', { seatId: seat, start: '2026-02-10T16:00:00Z', end: '2026-02-10T17:00:00Z' }, 'FAILED_PRECONDITION', 'maxDaysAhead');
    await fails(u, 'waitlist.join', { seatId: 2_000_000, ...w }, 'NOT_FOUND');
    await fails(u, 'waitlist.join', { branch: 'Nowhere Library', ...w }, 'NOT_FOUND');
    await fails(u, 'waitlist.join', { seatId: main[5]!.id, ...w }, 'FAILED_PRECONDITION', 'seatOutOfService');
    const free = await call(u, 'waitlist.join', { seatId: main[1]!.id, ...w });
    expect(free.error).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule: 'seatAvailable', seatId: main[1]!.id } });
    await fails(u, 'waitlist.join', { branch: 'Main Library', ...w }, 'FAILED_PRECONDITION', 'seatAvailable');
    for (const bad of [{ id: 0 }, { id: 'x' }, {}, { id: 1.5 }]) {
      await fails(u, 'waitlist.leave', bad, 'INVALID_ARGUMENT');
      await fails(u, 'waitlist.claim', bad, 'INVALID_ARGUMENT');
    }
    await fails(u, 'waitlist.mine', { scope: 'x' }, 'INVALID_ARGUMENT');
    expect(await ok(u, 'waitlist.mine')).toEqual([]);
  });

  describe('a waitlist window must be one a booking could have', () => {
    // T0 is Monday 10:00 in New York (Main Library, 07:00-23:00) and 07:00 in Los Angeles
    // (Medical Library, Monday 08:00-22:00). Each case breaks one rule and names it as
    // reservations.create does.
    const day = 86_400_000;
    const utc = (ms: number) => new Date(ms).toISOString();
    it.each([
      ['slotGranularity', { start: at('17:05'), end: at('18:00') }],
      ['minDuration', { start: at('17:00'), end: at('17:15') }],
      ['maxDuration', { start: at('16:00'), end: at('20:15') }],
      ['inThePast', { start: at('14:45'), end: at('16:00') }],
      ['maxDaysAhead', { start: utc(T0 + 15 * day), end: utc(T0 + 15 * day + 3_600_000) }],
      ['openingHours', { start: '2026-01-06T03:30:00Z', end: '2026-01-06T04:30:00Z' }], // 22:30-23:30 in New York
    ])('a seat entry that breaks %s is refused with FAILED_PRECONDITION naming it', async (rule, window) => {
      const u = await insertUser(t.db.pool);
      const reply = await call(u, 'waitlist.join', { seatId: main[13]!.id, ...window });
      expect(reply.error).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule } });
      // The same window is refused for a booking with the same rule.
      const booking = await call(u, 'reservations.create', { seatId: main[13]!.id, ...window });
      expect(booking.error).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule } });
    });

    it("a branch-wide entry must fit the branch's opening hours in its own time zone", async () => {
      const u = await insertUser(t.db.pool);
      const owner = await insertUser(t.db.pool);
      await bookBranch(owner.id, at('15:00'), at('18:00'));
      // 07:00-08:00 in Los Angeles: before the Medical Library opens, though New York is open.
      await fails(u, 'waitlist.join', { branch: 'Medical Library', start: at('15:00'), end: at('16:00') }, 'FAILED_PRECONDITION', 'openingHours');
      expect(await ok(u, 'waitlist.join', { branch: 'Medical Library', start: at('16:00'), end: at('17:00') })).toMatchObject({ status: 'WAITING' });
    });

    it("the audit's windows: 12 hours, and 23:00-11:00 in New York, are refused even where waitlist.maxWindowMinutes allows 720", async () => {
      const u = await insertUser(t.db.pool);
      const wide = new Waitlist({ db: new Db(t.db.pool), clock, events: discardEvents, config: { ...t.config.waitlist, maxWindowMinutes: 720, maxAheadDays: 30 }, rules: t.config.rules, log: silentLogger });
      const join = (start: string, end: string) => wide.join(u, { target: { seatId: main[13]!.id }, start: new Date(start), end: new Date(end) }).catch((e: unknown) => e);
      expect(await join(at('16:00'), '2026-01-06T04:00:00Z')).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule: 'maxDuration', maxDurationMinutes: 240 } });
      expect(await join('2026-01-06T04:00:00Z', '2026-01-06T16:00:00Z')).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule: 'maxDuration' } });
      expect(await join('2026-01-06T04:00:00Z', '2026-01-06T06:00:00Z')).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule: 'openingHours' } });
      // 30 days ahead was the waitlist's own limit; bookings open 14 days ahead.
      expect(await join(utc(T0 + 20 * day), utc(T0 + 20 * day + 3_600_000))).toMatchObject({ details: { rule: 'maxDaysAhead', maxDaysAhead: 14 } });
    });

    it('waitlist.maxWindowMinutes and .maxAheadDays can narrow the booking rules for waitlist windows', async () => {
      const u = await insertUser(t.db.pool);
      const narrow = new Waitlist({ db: new Db(t.db.pool), clock, events: discardEvents, config: { ...t.config.waitlist, maxWindowMinutes: 60, maxAheadDays: 2 }, rules: t.config.rules, log: silentLogger });
      const join = (start: string, end: string) => narrow.join(u, { target: { seatId: main[13]!.id }, start: new Date(start), end: new Date(end) }).catch((e: unknown) => e);
      expect(await join(at('17:00'), at('18:30'))).toMatchObject({ details: { rule: 'maxDuration', maxDurationMinutes: 60 } });
      expect(await join(utc(T0 + 3 * day), utc(T0 + 3 * day + 3_600_000))).toMatchObject({ details: { rule: 'maxDaysAhead', maxDaysAhead: 2 } });
    });
  });

  it('join answers the entry and its position, a repeated join is the same entry, and the per-user limit holds', async () => {
    const owner = await insertUser(t.db.pool);
    const a = await insertUser(t.db.pool);
    const b = await insertUser(t.db.pool);
    const seat = main[0]!.id;
    await insertBooking(t.db.pool, { seatId: seat, userId: owner.id, start: at('17:00'), end: at('20:00') });

    const first = await ok(a, 'waitlist.join', { seatId: seat, start: '2026-01-05T18:00:00+01:00', end: '2026-01-05T20:00:00+01:00' });
    expect(first).toEqual({
      id: expect.any(Number),
      position: 1,
      seatId: seat,
      branchId: main[0]!.branchId,
      start: iso('17:00'),
      end: iso('19:00'),
      status: 'WAITING',
      createdAt: new Date(T0).toISOString(),
    });
    const bSeat = await ok(b, 'waitlist.join', { seatId: seat, start: at('18:00'), end: at('19:30') });
    expect(bSeat).toMatchObject({ position: 2 });
    expect(await ok(a, 'waitlist.join', { seatId: seat, start: at('17:00'), end: at('19:00') })).toMatchObject({ id: first.id });

    const more: number[] = [];
    for (const [s, e] of [['17:00', '17:30'], ['17:30', '18:00'], ['18:00', '18:30'], ['18:30', '19:00']] as const) {
      more.push((await ok(a, 'waitlist.join', { seatId: seat, start: at(s), end: at(e) })).id);
    }
    await fails(a, 'waitlist.join', { seatId: seat, start: at('19:00'), end: at('19:30') }, 'FAILED_PRECONDITION', 'waitlistLimit');
    expect(await ok(a, 'waitlist.leave', { id: more[0] })).toEqual({});
    expect(await ok(a, 'waitlist.join', { seatId: seat, start: at('19:00'), end: at('19:30') })).toMatchObject({ status: 'WAITING' });

    // A branch is named or numbered; both mean the same entry.
    await bookBranch(owner.id, at('17:00'), at('19:00'));
    const byName = await ok(b, 'waitlist.join', { branch: 'Medical Library', start: at('17:00'), end: at('18:00') });
    expect(byName).toMatchObject({ branch: 'Medical Library', branchId: medical[0]!.branchId, position: 1 });
    expect(byName.seatId).toBeUndefined();
    expect(await ok(b, 'waitlist.join', { branch: medical[0]!.branchId, start: at('17:00'), end: at('18:00') })).toMatchObject({ id: byName.id });

    // Ordered by start: the branch entry (17:00) before the seat entry (18:00).
    expect((await ok<{ id: number }[]>(b, 'waitlist.mine')).map((e) => e.id)).toEqual([byName.id, bSeat.id]);
  });

  it('a freed slot goes to seat-specific waiters before branch-wide ones, each first come first served, and passes on when offers lapse or are declined', async () => {
    const owner = await insertUser(t.db.pool);
    const [wide, seat1, seat2] = [await insertUser(t.db.pool), await insertUser(t.db.pool), await insertUser(t.db.pool)];
    const s = medical[3]!;
    await bookBranch(owner.id, at('17:00'), at('19:00'));
    const window = { start: at('17:00'), end: at('19:00') };
    const eWide = await ok(wide, 'waitlist.join', { branch: 'Medical Library', ...window });
    const e1 = await ok(seat1, 'waitlist.join', { seatId: s.id, ...window });
    const e2 = await ok(seat2, 'waitlist.join', { seatId: s.id, ...window });
    expect(e2.position).toBe(2);

    expect(await freeSeat(s.id, s.branchId, at('17:00'), at('19:00'))).toBe(1);
    expect(personal('offer').map((e) => e.userId)).toEqual([seat1.id]);
    const offered = (await ok(seat1, 'waitlist.mine'))[0];
    expect(offered).toMatchObject({ id: e1.id, status: 'OFFERED', position: null, offer: { seatId: s.id } });
    expect((await ok(seat2, 'waitlist.mine'))[0]).toMatchObject({ status: 'WAITING', position: 1 });

    // The offer lapses: seat1 is told, seat2 (next seat-specific waiter) gets it.
    clock.advance(offerMs);
    expect(await t.lifecycle.tick()).toMatchObject({ offersExpired: 1, offersMade: 1 });
    expect(personal('offerExpired').map((e) => [e.userId, e.reservation.id])).toEqual([[seat1.id, offered.offer.reservationId]]);
    expect(personal('offer').map((e) => e.userId)).toEqual([seat1.id, seat2.id]);
    expect((await ok(seat1, 'waitlist.mine'))[0]).toMatchObject({ id: e1.id, status: 'EXPIRED' });
    expect(await statusOf(t.db.pool, offered.offer.reservationId)).toBe('CANCELLED');

    // seat2 declines by leaving; the branch-wide waiter gets the seat.
    expect(await ok(seat2, 'waitlist.leave', { id: e2.id })).toEqual({});
    expect(personal('offer').map((e) => e.userId)).toEqual([seat1.id, seat2.id, wide.id]);
    const wideEntry = (await ok(wide, 'waitlist.mine'))[0];
    expect(wideEntry).toMatchObject({ id: eWide.id, status: 'OFFERED', offer: { seatId: s.id } });

    const reservation = await ok(wide, 'waitlist.claim', { id: eWide.id });
    expect(reservation).toEqual({
      id: wideEntry.offer.reservationId,
      seatId: s.id,
      userId: wide.id,
      start: iso('17:00'),
      end: iso('19:00'),
      status: 'CONFIRMED',
      createdAt: expect.any(String),
    });
    expect((await ok(wide, 'waitlist.mine'))[0]).toMatchObject({ status: 'CLAIMED', reservationId: reservation.id });
  });

  it('the personal offer event names the entry to claim and when the offer lapses; the subscriber can claim from it alone', async () => {
    const owner = await insertUser(t.db.pool);
    const waiter = await insertUser(t.db.pool);
    const s = main[11]!;
    await insertBooking(t.db.pool, { seatId: s.id, userId: owner.id, start: at('17:00'), end: at('19:00') });
    const entry = await ok(waiter, 'waitlist.join', { seatId: s.id, start: at('17:00'), end: at('18:00') });
    const sub = await subscribe(t.server.ports.pubsub, { branch: 'Main Library', token: t.tokens.issue(waiter).token });
    try {
      expect(sub.frames[0]).toMatchObject({ type: 'subscribed', personal: true });
      await freeSeat(s.id, s.branchId, at('17:00'), at('19:00'));
      const expiresAt = new Date(T0 + offerMs).toISOString();
      expect(personal('offer')).toEqual([expect.objectContaining({ userId: waiter.id, waitlistId: entry.id, offerExpiresAt: expiresAt })]);
      const frame = await waitFor(sub, (f) => f.type === 'personal');
      expect(frame).toEqual({
        type: 'personal',
        kind: 'offer',
        reservation: expect.objectContaining({ seatId: s.id, userId: waiter.id, status: 'OFFERED' }),
        waitlistId: entry.id,
        offerExpiresAt: expiresAt,
        at: new Date(T0).toISOString(),
      });
      const claimed = await ok(waiter, 'waitlist.claim', { id: frame.waitlistId });
      expect(claimed).toMatchObject({ id: (frame.reservation as { id: number }).id, status: 'CONFIRMED' });
    } finally {
      sub.destroy();
    }
    // A lapsed offer names its entry too.
    const other = await insertUser(t.db.pool);
    const s2 = main[12]!;
    await insertBooking(t.db.pool, { seatId: s2.id, userId: owner.id, start: at('17:00'), end: at('19:00') });
    const lapsing = await ok(other, 'waitlist.join', { seatId: s2.id, start: at('17:00'), end: at('18:00') });
    await freeSeat(s2.id, s2.branchId, at('17:00'), at('19:00'));
    clock.advance(offerMs);
    await t.lifecycle.tick();
    expect(personal('offerExpired')).toEqual([expect.objectContaining({ userId: other.id, waitlistId: lapsing.id })]);
  });

  it('an offer holds its slot: an overlapping booking is refused by the exclusion constraint', async () => {
    const owner = await insertUser(t.db.pool);
    const waiter = await insertUser(t.db.pool);
    const s = main[2]!;
    await insertBooking(t.db.pool, { seatId: s.id, userId: owner.id, start: at('17:00'), end: at('19:00') });
    await ok(waiter, 'waitlist.join', { seatId: s.id, start: at('17:30'), end: at('18:30') });
    expect(await freeSeat(s.id, s.branchId, at('17:00'), at('19:00'))).toBe(1);
    await expect(insertBooking(t.db.pool, { seatId: s.id, userId: owner.id, start: at('18:00'), end: at('19:00') })).rejects.toMatchObject({
      code: '23P01',
    });
    // The part outside the offered window is still bookable.
    await expect(insertBooking(t.db.pool, { seatId: s.id, userId: owner.id, start: at('18:30'), end: at('19:00') })).resolves.toEqual(
      expect.any(Number),
    );
  });

  it('claim works until the offer lapses, is idempotent, and fails with offerExpired afterwards', async () => {
    const owner = await insertUser(t.db.pool);
    const [early, late] = [await insertUser(t.db.pool), await insertUser(t.db.pool)];
    const [s1, s2] = [main[3]!, main[4]!];
    await insertBooking(t.db.pool, { seatId: s1.id, userId: owner.id, start: at('17:00'), end: at('19:00') });
    await insertBooking(t.db.pool, { seatId: s2.id, userId: owner.id, start: at('17:00'), end: at('19:00') });
    const eEarly = await ok(early, 'waitlist.join', { seatId: s1.id, start: at('17:00'), end: at('18:00') });
    const eLate = await ok(late, 'waitlist.join', { seatId: s2.id, start: at('17:00'), end: at('18:00') });
    await fails(early, 'waitlist.claim', { id: eEarly.id }, 'FAILED_PRECONDITION', 'noOffer');
    await freeSeat(s1.id, s1.branchId, at('17:00'), at('19:00'));
    await freeSeat(s2.id, s2.branchId, at('17:00'), at('19:00'));

    clock.advance(offerMs - 1);
    const r = await ok(early, 'waitlist.claim', { id: eEarly.id });
    expect(r).toMatchObject({ seatId: s1.id, userId: early.id, status: 'CONFIRMED' });
    expect(r.offerExpiresAt).toBeUndefined();
    const created = cap.events.filter((e) => e.type === 'reservation' && e.cause === 'reservation.created');
    expect(created).toHaveLength(1);
    expect(await ok(early, 'waitlist.claim', { id: eEarly.id })).toEqual(r);
    expect(cap.events.filter((e) => e.type === 'reservation' && e.cause === 'reservation.created')).toHaveLength(1);

    clock.advance(1);
    await fails(late, 'waitlist.claim', { id: eLate.id }, 'FAILED_PRECONDITION', 'offerExpired');
    await t.lifecycle.tick();
    await fails(late, 'waitlist.claim', { id: eLate.id }, 'FAILED_PRECONDITION', 'offerExpired');
    expect((await ok(late, 'waitlist.mine'))[0]).toMatchObject({ status: 'EXPIRED' });
    // The claimed booking is untouched by the tick that lapsed the other offer.
    expect(await statusOf(t.db.pool, r.id)).toBe('CONFIRMED');
  });

  describe('a claim passes the per-user rules a booking does, and a refused claim keeps its offer', () => {
    /** An OFFERED entry for `user` on `seat` for [start, end): a booking there, a join, the booking cancelled. */
    async function offerTo(user: AuthUser, seat: { id: number; branchId: number }, start: string, end: string): Promise<number> {
      const owner = await insertUser(t.db.pool);
      await insertBooking(t.db.pool, { seatId: seat.id, userId: owner.id, start, end });
      const entry = await ok(user, 'waitlist.join', { seatId: seat.id, start, end });
      expect(await freeSeat(seat.id, seat.branchId, start, end)).toBe(1);
      return entry.id;
    }
    const offerStatus = async (user: AuthUser, id: number) => (await ok<Array<{ id: number; status: string }>>(user, 'waitlist.mine')).find((e) => e.id === id)?.status;

    it('maxActive: a user holding the limit is refused; after a cancel the same offer can be claimed', async () => {
      const u = await insertUser(t.db.pool);
      const held = [];
      for (const [i, [s, e]] of ([['19:00', '20:00'], ['20:00', '21:00'], ['21:00', '22:00']] as const).entries()) {
        held.push(await ok(u, 'reservations.create', { seatId: main[20 + i]!.id, start: at(s), end: at(e) }));
      }
      const entry = await offerTo(u, main[14]!, at('17:00'), at('18:00'));
      const reply = await call(u, 'waitlist.claim', { id: entry });
      expect(reply.error).toMatchObject({
        code: 'FAILED_PRECONDITION',
        details: { rule: 'maxActive', maxActivePerUser: 3, offerExpiresAt: new Date(T0 + offerMs).toISOString() },
      });
      expect(await offerStatus(u, entry)).toBe('OFFERED');
      expect(await t.db.pool.query(`SELECT status FROM reservations WHERE waitlist_id = $1`, [entry]).then((r) => r.rows)).toEqual([{ status: 'OFFERED' }]);
      await ok(u, 'reservations.cancel', { id: held[0].id });
      expect(await ok(u, 'waitlist.claim', { id: entry })).toMatchObject({ status: 'CONFIRMED', seatId: main[14]!.id });
      expect(await offerStatus(u, entry)).toBe('CLAIMED');
    });

    it("dailyQuota: the offered minutes count against the branch's local day", async () => {
      const u = await insertUser(t.db.pool);
      await ok(u, 'reservations.create', { seatId: main[20]!.id, start: at('19:00'), end: at('22:00') }); // 3 h of the 4 h day
      const entry = await offerTo(u, main[15]!, at('17:00'), at('19:00'));
      const reply = await call(u, 'waitlist.claim', { id: entry });
      expect(reply.error).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule: 'dailyQuota', quotaMinutes: 240, usedMinutes: 180 } });
      expect(await offerStatus(u, entry)).toBe('OFFERED');
    });

    it('weeklyQuota: booked time earlier in the local week counts', async () => {
      const u = await insertUser(t.db.pool);
      // 4 h on each of Tuesday-Saturday of this week (New York): the 1,200-minute week is full.
      for (let d = 6; d <= 10; d++) {
        await insertBooking(t.db.pool, { seatId: main[21]!.id, userId: u.id, start: `2026-01-${String(d).padStart(2, '0')}T14:00:00Z`, end: `2026-01-${String(d).padStart(2, '0')}T18:00:00Z`, status: 'COMPLETED' });
      }
      const entry = await offerTo(u, main[16]!, at('17:00'), at('18:00'));
      const reply = await call(u, 'waitlist.claim', { id: entry });
      expect(reply.error).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule: 'weeklyQuota', quotaMinutes: 1200, usedMinutes: 1200 } });
      expect(await offerStatus(u, entry)).toBe('OFFERED');
    });

    it('a claim and a booking of one user never run at once (the booking is refused while the lock is held), so together they cannot pass the limit', async () => {
      const u = await insertUser(t.db.pool);
      await ok(u, 'reservations.create', { seatId: main[20]!.id, start: at('19:00'), end: at('20:00') });
      await ok(u, 'reservations.create', { seatId: main[21]!.id, start: at('20:00'), end: at('21:00') });
      const entry = await offerTo(u, main[17]!, at('17:00'), at('18:00'));
      const holder = new pg.Client({ connectionString: t.db.url });
      await holder.connect();
      let claim: RpcReply;
      let booking: RpcReply;
      try {
        // The lock, as a claim (or a booking on another instance) holds it while it runs.
        await holder.query('SELECT pg_advisory_lock($1, $2)', [LockClass.userBooking, u.id]);
        const claiming = call(u, 'waitlist.claim', { id: entry });
        // The claim waits for the lock; a booking meanwhile is refused at once.
        const waiting = async () =>
          (await t.db.pool.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1`, [u.id])).rows[0].n;
        const until = Date.now() + 5000;
        while ((await waiting()) < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
        expect(await waiting()).toBe(1);
        booking = await call(u, 'reservations.create', { seatId: main[22]!.id, start: at('21:00'), end: at('22:00') });
        await holder.query('SELECT pg_advisory_unlock_all()');
        claim = await claiming;
      } finally {
        await holder.end();
      }
      expect(booking.error).toMatchObject({ code: 'RESOURCE_EXHAUSTED', details: { reason: 'bookingInFlight' } });
      expect(claim.error).toBeNull();
      // Asked again, the booking meets the claim's committed row: the limit holds.
      const again = await call(u, 'reservations.create', { seatId: main[22]!.id, start: at('21:00'), end: at('22:00') });
      expect([again.error?.code, again.error?.details?.rule]).toEqual(['FAILED_PRECONDITION', 'maxActive']);
      const active = await t.db.pool.query(`SELECT count(*)::int AS n FROM reservations WHERE user_id = $1 AND status IN ('CONFIRMED', 'CHECKED_IN')`, [u.id]);
      expect(active.rows[0].n).toBe(3);
    });
  });

  it("another user's entry is NOT_FOUND for claim and leave, and never shows in their list", async () => {
    const owner = await insertUser(t.db.pool);
    const [mineUser, intruder] = [await insertUser(t.db.pool), await insertUser(t.db.pool)];
    const s = main[6]!;
    await insertBooking(t.db.pool, { seatId: s.id, userId: owner.id, start: at('17:00'), end: at('19:00') });
    const e = await ok(mineUser, 'waitlist.join', { seatId: s.id, start: at('17:00'), end: at('18:00') });
    await fails(intruder, 'waitlist.leave', { id: e.id }, 'NOT_FOUND');
    await fails(intruder, 'waitlist.claim', { id: e.id }, 'NOT_FOUND');
    await freeSeat(s.id, s.branchId, at('17:00'), at('19:00'));
    await fails(intruder, 'waitlist.claim', { id: e.id }, 'NOT_FOUND');
    await fails(intruder, 'waitlist.leave', { id: e.id }, 'NOT_FOUND');
    await fails(intruder, 'waitlist.claim', { id: 987654321 }, 'NOT_FOUND');
    expect(await ok(intruder, 'waitlist.mine')).toEqual([]);
    expect((await ok(mineUser, 'waitlist.mine'))[0]).toMatchObject({ id: e.id, status: 'OFFERED' });
  });

  it('leaving a waiting entry is final and repeatable; leaving a claimed one is refused', async () => {
    const owner = await insertUser(t.db.pool);
    const u = await insertUser(t.db.pool);
    const s = main[7]!;
    await insertBooking(t.db.pool, { seatId: s.id, userId: owner.id, start: at('17:00'), end: at('19:00') });
    const waiting = await ok(u, 'waitlist.join', { seatId: s.id, start: at('17:00'), end: at('18:00') });
    const offered = await ok(u, 'waitlist.join', { seatId: s.id, start: at('18:00'), end: at('19:00') });
    expect(await ok(u, 'waitlist.leave', { id: waiting.id })).toEqual({});
    expect(await ok(u, 'waitlist.leave', { id: waiting.id })).toEqual({});
    expect(await freeSeat(s.id, s.branchId, at('17:00'), at('19:00'))).toBe(1);
    await ok(u, 'waitlist.claim', { id: offered.id });
    await fails(u, 'waitlist.leave', { id: offered.id }, 'FAILED_PRECONDITION', 'alreadyClaimed');
    expect((await ok(u, 'waitlist.mine')).map((e: { id: number; status: string }) => [e.id, e.status])).toEqual([
      [waiting.id, 'LEFT'],
      [offered.id, 'CLAIMED'],
    ]);
  });

  it('racing freed-slot handlers offer a waiter once, even for two seats of a branch freed at the same moment', async () => {
    const owner = await insertUser(t.db.pool);
    const [one, wide] = [await insertUser(t.db.pool), await insertUser(t.db.pool)];
    const s = main[8]!;
    await insertBooking(t.db.pool, { seatId: s.id, userId: owner.id, start: at('17:00'), end: at('19:00') });
    await ok(one, 'waitlist.join', { seatId: s.id, start: at('17:00'), end: at('19:00') });
    await t.db.pool.query(`UPDATE reservations SET status = 'CANCELLED' WHERE seat_id = $1`, [s.id]);
    const slot = { seatId: s.id, branchId: s.branchId, start: new Date(at('17:00')), end: new Date(at('19:00')) };
    const made = await Promise.all([1, 2, 3, 4].map(() => t.waitlist.onSlotFreed(slot)));
    expect(made.reduce((a, b) => a + b, 0)).toBe(1);
    expect(personal('offer').map((e) => e.userId)).toEqual([one.id]);

    await bookBranch(owner.id, at('17:00'), at('19:00'));
    await ok(wide, 'waitlist.join', { branch: 'Medical Library', start: at('17:00'), end: at('18:00') });
    const [a, b] = [medical[0]!, medical[1]!];
    await t.db.pool.query(`UPDATE reservations SET status = 'CANCELLED' WHERE seat_id = ANY($1)`, [[a.id, b.id]]);
    const results = await Promise.all(
      [a, b, a, b].map((x) => t.waitlist.onSlotFreed({ seatId: x.id, branchId: x.branchId, start: new Date(at('17:00')), end: new Date(at('19:00')) })),
    );
    expect(results.reduce((x, y) => x + y, 0)).toBe(1);
    const offers = await t.db.pool.query(`SELECT count(*)::int AS n FROM reservations WHERE status = 'OFFERED' AND user_id = $1`, [wide.id]);
    expect(offers.rows[0].n).toBe(1);
  });

  it('when someone books part of a waiter\'s window first, the offer INSERT conflicts and the next waiter gets the slot', async () => {
    const owner = await insertUser(t.db.pool);
    const [w1, w2] = [await insertUser(t.db.pool), await insertUser(t.db.pool)];
    const s = main[9]!;
    await insertBooking(t.db.pool, { seatId: s.id, userId: owner.id, start: at('17:00'), end: at('19:00') });
    const e1 = await ok(w1, 'waitlist.join', { seatId: s.id, start: at('17:00'), end: at('18:00') });
    const e2 = await ok(w2, 'waitlist.join', { seatId: s.id, start: at('18:00'), end: at('19:00') });
    await t.db.pool.query(`UPDATE reservations SET status = 'CANCELLED' WHERE seat_id = $1`, [s.id]);

    // A booking of 17:30-18:00 is in flight (not yet committed) while the slot is offered.
    const booker = new pg.Client({ connectionString: t.db.url });
    await booker.connect();
    try {
      await booker.query('BEGIN');
      await booker.query(
        `INSERT INTO reservations (seat_id, user_id, during, hold, status) VALUES ($1, $2, tstzrange($3, $4, '[)'), tstzrange($3, $4, '[)'), 'CONFIRMED')`,
        [s.id, owner.id, at('17:30'), at('18:00')],
      );
      const offering = t.waitlist.onSlotFreed({ seatId: s.id, branchId: s.branchId, start: new Date(at('17:00')), end: new Date(at('19:00')) });
      const deadline = Date.now() + 5000;
      for (;;) {
        const waiting = await t.db.pool.query(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted`);
        if (waiting.rows[0].n > 0 || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      await booker.query('COMMIT');
      expect(await offering).toBe(1);
    } finally {
      await booker.end();
    }
    const byId = new Map((await t.db.pool.query(`SELECT id, status FROM waitlist`)).rows.map((r) => [r.id, r.status]));
    expect(byId.get(e1.id)).toBe('WAITING');
    expect(byId.get(e2.id)).toBe('OFFERED');
    expect(personal('offer').map((e) => e.userId)).toEqual([w2.id]);
  });

  it('the lifecycle sweep offers a free slot to a waiter even when no hook ran (a seat back in service)', async () => {
    const owner = await insertUser(t.db.pool);
    const u = await insertUser(t.db.pool);
    const s = main[10]!;
    const booking = await insertBooking(t.db.pool, { seatId: s.id, userId: owner.id, start: at('17:00'), end: at('19:00') });
    const e = await ok(u, 'waitlist.join', { seatId: s.id, start: at('17:00'), end: at('18:00') });
    await t.db.pool.query(`UPDATE seats SET status = 'OUT_OF_SERVICE' WHERE id = $1`, [s.id]);
    await t.db.pool.query(`UPDATE reservations SET status = 'CANCELLED' WHERE id = $1`, [booking]);
    expect(await t.waitlist.onSlotFreed({ seatId: s.id, branchId: s.branchId, start: new Date(at('17:00')), end: new Date(at('19:00')) })).toBe(0);
    expect(await t.lifecycle.tick()).toMatchObject({ offersMade: 0 });
    await t.db.pool.query(`UPDATE seats SET status = 'IN_SERVICE' WHERE id = $1`, [s.id]);
    expect(await t.lifecycle.tick()).toMatchObject({ offersMade: 1 });
    expect((await ok(u, 'waitlist.mine'))[0]).toMatchObject({ id: e.id, status: 'OFFERED' });
  });
});
