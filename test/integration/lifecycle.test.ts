import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import type { CoreEvent } from '../../src/core/events.js';
import { LifecycleWorker } from '../../src/core/lifecycle.js';
import { Waitlist } from '../../src/core/waitlist.js';
import { Db } from '../../src/db/db.js';
import { SessionLock } from '../../src/db/lockKeys.js';
import { createPool } from '../../src/db/pool.js';
import { silentLogger } from '../../src/obs/log.js';
import { captureEvents, insertBooking, insertUser, seatsOf, statusOf } from '../support/fixtures.js';
import { startTestServer, type TestServer } from '../support/server.js';

const T0 = Date.parse('2026-01-05T15:00:00Z');
const at = (hhmm: string): string => `2026-01-05T${hhmm}:00Z`;
const ms = (hhmm: string): number => Date.parse(at(hhmm));

let t: TestServer;
const clock = new FakeClock(T0);
let seats: number[];
let cap: ReturnType<typeof captureEvents>;

beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false } }, { clock });
  seats = (await seatsOf(t.db.pool, 'Main Library')).map((s) => s.id);
  cap = captureEvents(t);
});
afterAll(async () => {
  cap.stop();
  await t.close();
});
beforeEach(async () => {
  await t.db.pool.query('TRUNCATE reservations, waitlist, strikes');
  clock.set(T0);
  cap.clear();
});

const reservationEvents = (cause: string) =>
  cap.events.filter((e): e is Extract<CoreEvent, { type: 'reservation' }> => e.type === 'reservation' && e.cause === cause);
const personal = (kind: string) =>
  cap.events.filter((e): e is Extract<CoreEvent, { type: 'personal' }> => e.type === 'personal' && e.kind === kind);

describe('lifecycle worker', () => {
  it('marks a CONFIRMED booking NO_SHOW once start + grace has passed, not a moment before, and tells its owner', async () => {
    const owner = await insertUser(t.db.pool);
    const other = await insertUser(t.db.pool);
    const id = await insertBooking(t.db.pool, { seatId: seats[0]!, userId: owner.id, start: at('16:00'), end: at('18:00') });
    await insertBooking(t.db.pool, { seatId: seats[1]!, userId: other.id, start: at('16:10'), end: at('18:00') });

    expect((await t.lifecycle.tick(ms('16:15') - 1)).noShows).toBe(0);
    expect(await statusOf(t.db.pool, id)).toBe('CONFIRMED');

    const r = await t.lifecycle.tick(ms('16:15'));
    expect(r).toMatchObject({ ran: true, noShows: 1 });
    expect(await statusOf(t.db.pool, id)).toBe('NO_SHOW');
    expect(reservationEvents('noShow').map((e) => e.reservation)).toEqual([
      expect.objectContaining({ id, userId: owner.id, seatId: seats[0], status: 'NO_SHOW', start: new Date(at('16:00')).toISOString() }),
    ]);
    expect(personal('noShow').map((e) => e.userId)).toEqual([owner.id]);
  });

  it('marks a CHECKED_IN booking COMPLETED at its end, and a CONFIRMED one shorter than the grace NO_SHOW at its end', async () => {
    const u = await insertUser(t.db.pool);
    const inUse = await insertBooking(t.db.pool, { seatId: seats[0]!, userId: u.id, start: at('15:00'), end: at('16:00'), status: 'CHECKED_IN' });
    const short = await insertBooking(t.db.pool, { seatId: seats[1]!, userId: u.id, start: at('15:50'), end: at('16:00') });

    await t.lifecycle.tick(ms('16:00') - 1);
    expect(await statusOf(t.db.pool, inUse)).toBe('CHECKED_IN');
    expect(await statusOf(t.db.pool, short)).toBe('CONFIRMED');

    const r = await t.lifecycle.tick(ms('16:00'));
    expect(r).toMatchObject({ completed: 1, noShows: 1 });
    expect(await statusOf(t.db.pool, inUse)).toBe('COMPLETED');
    expect(await statusOf(t.db.pool, short)).toBe('NO_SHOW');
    expect(reservationEvents('completed').map((e) => e.reservation.id)).toEqual([inUse]);
    expect(personal('noShow').map((e) => e.reservation.id)).toEqual([short]);
  });

  it('a second tick at the same time changes nothing and emits nothing', async () => {
    const u = await insertUser(t.db.pool);
    for (let i = 0; i < 4; i++) {
      await insertBooking(t.db.pool, { seatId: seats[i]!, userId: u.id, start: at('15:00'), end: at('16:00') });
      await insertBooking(t.db.pool, { seatId: seats[i + 4]!, userId: u.id, start: at('15:00'), end: at('16:00'), status: 'CHECKED_IN' });
    }
    const first = await t.lifecycle.tick(ms('16:30'));
    expect(first).toMatchObject({ noShows: 4, completed: 4 });
    const before = await t.db.pool.query('SELECT id, status, updated_at FROM reservations ORDER BY id');
    const eventCount = cap.events.length;

    const second = await t.lifecycle.tick(ms('16:30'));
    expect(second).toEqual({ ran: true, noShows: 0, completed: 0, offersExpired: 0, offersMade: 0, entriesExpired: 0 });
    expect(cap.events).toHaveLength(eventCount);
    expect((await t.db.pool.query('SELECT id, status, updated_at FROM reservations ORDER BY id')).rows).toEqual(before.rows);
  });

  it('two workers on two pools ticking at once transition each reservation exactly once', async () => {
    const u = await insertUser(t.db.pool);
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push(await insertBooking(t.db.pool, { seatId: seats[i]!, userId: u.id, start: at('15:00'), end: at('17:00') }));
    }
    for (let i = 20; i < 30; i++) {
      ids.push(await insertBooking(t.db.pool, { seatId: seats[i]!, userId: u.id, start: at('14:00'), end: at('15:30'), status: 'CHECKED_IN' }));
    }
    const otherPool = createPool({ url: t.db.url, poolSize: 4, connectTimeoutMs: 5000, statementTimeoutMs: 30000 }, silentLogger);
    const otherEvents: CoreEvent[] = [];
    const otherSink = { emit: (e: CoreEvent) => void otherEvents.push(e) };
    const otherDb = new Db(otherPool);
    const other = new LifecycleWorker({
      db: otherDb,
      clock,
      events: otherSink,
      waitlist: new Waitlist({ db: otherDb, clock, events: otherSink, config: t.config.waitlist, rules: t.config.rules, log: silentLogger }),
      config: { ...t.config.lifecycle, noShowGraceMinutes: t.config.rules.checkInGraceMinutes },
      strikes: t.config.rules.strikes,
      log: silentLogger,
    });
    try {
      const results = await Promise.all([
        t.lifecycle.tick(ms('16:00')),
        other.tick(ms('16:00')),
        t.lifecycle.tick(ms('16:00')),
        other.tick(ms('16:00')),
      ]);
      expect(results.some((r) => r.ran)).toBe(true);
      expect(results.reduce((n, r) => n + r.noShows, 0)).toBe(20);
      expect(results.reduce((n, r) => n + r.completed, 0)).toBe(10);
      const all = [...cap.events, ...otherEvents].filter((e) => e.type === 'reservation');
      const seen = all.map((e) => (e as Extract<CoreEvent, { type: 'reservation' }>).reservation.id).sort((a, b) => a - b);
      expect(seen).toEqual([...ids].sort((a, b) => a - b));
    } finally {
      await otherPool.end();
    }
  });

  it('skips the tick while another session holds the lifecycle lock', async () => {
    const u = await insertUser(t.db.pool);
    const id = await insertBooking(t.db.pool, { seatId: seats[0]!, userId: u.id, start: at('15:00'), end: at('16:00') });
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [SessionLock.lifecycle]);
      expect(await t.lifecycle.tick(ms('16:30'))).toMatchObject({ ran: false, noShows: 0 });
      expect(await statusOf(t.db.pool, id)).toBe('CONFIRMED');
      await holder.query('SELECT pg_advisory_unlock($1)', [SessionLock.lifecycle]);
      expect(await t.lifecycle.tick(ms('16:30'))).toMatchObject({ ran: true, noShows: 1 });
    } finally {
      await holder.end();
    }
  });

  it('offers the rest of a no-show slot to a waiter whose window fits, and tells only that waiter', async () => {
    const owner = await insertUser(t.db.pool);
    const waiter = await insertUser(t.db.pool);
    const bystander = await insertUser(t.db.pool);
    const booking = await insertBooking(t.db.pool, { seatId: seats[0]!, userId: owner.id, start: at('16:00'), end: at('19:00') });
    const entry = await t.waitlist.join(waiter, { target: { seatId: seats[0]! }, start: new Date(at('17:00')), end: new Date(at('18:00')) });
    // Nothing of it is left after 16:15: it cannot be served, so it lapses.
    const late = await t.waitlist.join(bystander, { target: { seatId: seats[0]! }, start: new Date(at('15:45')), end: new Date(at('16:15')) });

    const r = await t.lifecycle.tick(ms('16:15'));
    expect(r).toMatchObject({ noShows: 1, offersMade: 1, entriesExpired: 1 });
    expect(await statusOf(t.db.pool, booking)).toBe('NO_SHOW');
    const offers = personal('offer');
    expect(offers.map((e) => e.userId)).toEqual([waiter.id]);
    expect(offers[0]!.reservation).toMatchObject({ seatId: seats[0], status: 'OFFERED', start: new Date(at('17:00')).toISOString() });
    expect(reservationEvents('offer')).toHaveLength(1);
    const mine = await t.waitlist.mine(waiter);
    expect(mine).toEqual([expect.objectContaining({ id: entry.id, status: 'OFFERED', position: null })]);
    expect(mine[0]!.offer).toEqual({
      reservationId: offers[0]!.reservation.id,
      seatId: seats[0],
      offerExpiresAt: new Date(ms('16:15') + t.config.waitlist.offerMs).toISOString(),
    });
    expect((await t.waitlist.mine(bystander)).map((e) => [e.id, e.status])).toEqual([[late.id, 'EXPIRED']]);
  });

  it('closes an OFFERED entry whose offered booking was cancelled by other code, so it stops counting against the user', async () => {
    const owner = await insertUser(t.db.pool);
    const waiter = await insertUser(t.db.pool);
    await insertBooking(t.db.pool, { seatId: seats[0]!, userId: owner.id, start: at('17:00'), end: at('18:00') });
    const entry = await t.waitlist.join(waiter, { target: { seatId: seats[0]! }, start: new Date(at('17:00')), end: new Date(at('18:00')) });
    await t.db.pool.query(`UPDATE reservations SET status = 'CANCELLED' WHERE seat_id = $1`, [seats[0]]);
    expect(await t.waitlist.onSlotFreed({ seatId: seats[0]!, branchId: 0, start: new Date(at('17:00')), end: new Date(at('18:00')) })).toBe(1);
    await t.db.pool.query(`UPDATE reservations SET status = 'CANCELLED' WHERE status = 'OFFERED'`);
    expect(await t.lifecycle.tick(ms('15:01'))).toMatchObject({ entriesExpired: 1, offersMade: 0 });
    expect((await t.waitlist.mine(waiter)).map((e) => [e.id, e.status])).toEqual([[entry.id, 'EXPIRED']]);
  });

  it('the server ticks on its own timer and shutdown waits for it to stop', async () => {
    const own = new FakeClock(ms('16:30'));
    const s = await startTestServer({ lifecycle: { enabled: true, tickMs: 10 } }, { clock: own });
    try {
      const u = await insertUser(s.db.pool);
      const id = await insertBooking(s.db.pool, { seatId: seats[0]!, userId: u.id, start: at('15:00'), end: at('16:00') });
      const deadline = Date.now() + 5000;
      while ((await statusOf(s.db.pool, id)) !== 'NO_SHOW' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(await statusOf(s.db.pool, id)).toBe('NO_SHOW');
      await s.server.shutdown();
      const after = await insertBooking(s.db.pool, { seatId: seats[1]!, userId: u.id, start: at('15:00'), end: at('16:00') });
      await new Promise((r) => setTimeout(r, 50));
      expect(await statusOf(s.db.pool, after)).toBe('CONFIRMED');
    } finally {
      await s.close();
    }
  });
});
