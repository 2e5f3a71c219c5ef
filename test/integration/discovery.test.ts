import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RpcClient } from '../../clients/rpcClient.js';
import { FakeClock } from '../../src/core/clock.js';
import type { CoreEvent } from '../../src/core/events.js';
import { configSchema } from '../../src/config/schema.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { MONDAY_10_NY, connect, errorOf, iso, makeUsers, seatIdOf, type TestUser } from '../support/core.js';

interface Seat {
  id: number;
  branch: string;
  area: string;
  label: string;
  hasPower: boolean;
  hasMonitor: boolean;
  status: string;
  available: boolean;
  live: string;
}
interface Branch {
  id: number;
  name: string;
  timezone: string;
  hours: Record<string, { open: string; close: string }>;
  counts: { total: number; free: number; reserved: number; occupied: number; unavailable: number };
}

const clock = new FakeClock(Date.parse(MONDAY_10_NY));
let t: TestServer;
let anon: RpcClient;
let student: TestUser;
let admin: TestUser;
let sc: RpcClient;
let ac: RpcClient;
const events: CoreEvent[] = [];

beforeAll(async () => {
  // One anonymous connection makes hundreds of reads here: the per-connection and per-address
  // anonymous limits are fairReads.test.ts's subject, not this file's.
  // And one student books many seats at once to fill listings: one seat at a time is the
  // booking rules' subject (openingRush.test.ts), not this file's.
  t = await startTestServer(
    { rateLimit: { rules: configSchema.parse({}).rateLimit.rules.filter((r) => r.callers !== 'anonymous') }, rules: { oneSeatAtATime: false } },
    { clock },
  );
  t.coreEvents.on((e) => events.push(e));
  student = (await makeUsers(t, 1, 'disc'))[0]!;
  admin = (await makeUsers(t, 1, 'disc-admin', 'admin'))[0]!;
  anon = await connect(t);
  sc = await connect(t, student);
  ac = await connect(t, admin);
});
afterAll(async () => {
  for (const c of [anon, sc, ac]) c.close();
  await t.close();
});

const main = (branches: Branch[]) => branches.find((b) => b.name === 'Main Library')!;

describe('branches.list', () => {
  it('lists every branch with hours and counts that add up, without a token', async () => {
    const branches = await anon.call<Branch[]>('branches.list');
    expect(branches.map((b) => b.name)).toEqual(['Main Library', 'Engineering Library', 'Medical Library']);
    const m = main(branches);
    expect(m).toMatchObject({ timezone: 'America/New_York', hours: { mon: { open: '07:00', close: '23:00' } } });
    expect(m.counts).toEqual({ total: 54, free: 54, reserved: 0, occupied: 0, away: 0, unavailable: 0 });
    for (const b of branches) {
      const c = b.counts;
      expect(c.free + c.reserved + c.occupied + c.unavailable).toBe(c.total);
    }
  });

  it('counts a current booking as reserved, a checked-in one as occupied, an out-of-service seat as unavailable', async () => {
    const [a, b, c] = await Promise.all(['R-01', 'R-02', 'R-03'].map((l) => seatIdOf(t, l)));
    await sc.call('reservations.create', { seatId: a, start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 60) });
    const r2 = await sc.call<{ id: number }>('reservations.create', { seatId: b, start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 60) });
    await sc.call('reservations.checkIn', { id: r2.id });
    await ac.call('admin.seats.setStatus', { seatId: c!, status: 'OUT_OF_SERVICE' });
    const m = main(await anon.call<Branch[]>('branches.list'));
    expect(m.counts).toEqual({ total: 54, free: 51, reserved: 1, occupied: 1, away: 0, unavailable: 1 });
    await ac.call('admin.seats.setStatus', { seatId: c!, status: 'IN_SERVICE' });
    await sc.call('reservations.cancel', { id: (await sc.call<{ reservations: Array<{ id: number; seatId: number }> }>('reservations.mine')).reservations.find((r) => r.seatId === a)!.id });
    await sc.call('reservations.checkOut', { id: r2.id });
    expect(main(await anon.call<Branch[]>('branches.list')).counts.free).toBe(54);
  });
});

describe('seats.list', () => {
  it('filters by branch name, id or digits, area, power and monitor', async () => {
    const byName = await anon.call<Seat[]>('seats.list', { branch: 'Main Library' });
    expect(byName).toHaveLength(54);
    expect(byName[0]).toEqual({
      id: expect.any(Number),
      branch: 'Main Library',
      area: expect.any(String),
      label: expect.any(String),
      hasPower: expect.any(Boolean),
      hasMonitor: expect.any(Boolean),
      status: 'IN_SERVICE',
      available: true,
      live: 'free',
    });
    const mainId = main(await anon.call<Branch[]>('branches.list')).id;
    expect(await anon.call('seats.list', { branch: mainId })).toEqual(byName);
    expect(await anon.call('seats.list', { branch: String(mainId) })).toEqual(byName);
    const quiet = await anon.call<Seat[]>('seats.list', { branch: 'Main Library', area: 'Quiet Floor', hasPower: true, hasMonitor: true });
    expect(quiet.length).toBeGreaterThan(0);
    expect(quiet.every((s) => s.area === 'Quiet Floor' && s.hasPower && s.hasMonitor)).toBe(true);
    expect(quiet.length).toBe(byName.filter((s) => s.area === 'Quiet Floor' && s.hasPower && s.hasMonitor).length);
    const noPower = await anon.call<Seat[]>('seats.list', { branch: 'Main Library', hasPower: false });
    expect(noPower.every((s) => !s.hasPower)).toBe(true);
    expect(noPower.length + byName.filter((s) => s.hasPower).length).toBe(54);
    expect(await anon.call('seats.list', { branch: 'No Such Library' })).toEqual([]);
    const all = await anon.call<Seat[]>('seats.list');
    expect(all.length).toBe(156);
  });

  it('shows a booking to the very next search: available, availableOnly and live, through the cache', async () => {
    const seat = await seatIdOf(t, 'G-05');
    const filter = { branch: 'Main Library', area: 'Group Study', availableOnly: true };
    await anon.call<Seat[]>('seats.list', filter); // seen once; the second read is stored
    const before = await anon.call<Seat[]>('seats.list', filter);
    const hits = t.seatListing.stats.hits;
    expect(await anon.call('seats.list', filter)).toEqual(before);
    expect(t.seatListing.stats.hits).toBe(hits + 1);
    expect(before.some((s) => s.id === seat)).toBe(true);
    const r = await sc.call<{ id: number }>('reservations.create', { seatId: seat, start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 60) });
    const after = await anon.call<Seat[]>('seats.list', filter);
    expect(after.some((s) => s.id === seat)).toBe(false);
    expect(after).toHaveLength(before.length - 1);
    const full = await anon.call<Seat[]>('seats.list', { branch: 'Main Library', area: 'Group Study' });
    expect(full.find((s) => s.id === seat)).toMatchObject({ available: false, live: 'reserved' });
    // Another window the booking does not touch still offers the seat.
    const later = await anon.call<Seat[]>('seats.list', { ...filter, start: iso(MONDAY_10_NY, 60), end: iso(MONDAY_10_NY, 120) });
    expect(later.some((s) => s.id === seat)).toBe(true);
    await sc.call('reservations.cancel', { id: r.id });
    expect((await anon.call<Seat[]>('seats.list', filter)).some((s) => s.id === seat)).toBe(true);
  });

  it('moves live state with the clock: a later booking becomes reserved when its slot begins', async () => {
    const seat = await seatIdOf(t, 'G-06');
    const r = await sc.call<{ id: number }>('reservations.create', { seatId: seat, start: iso(MONDAY_10_NY, 60), end: iso(MONDAY_10_NY, 120) });
    const look = async () => (await anon.call<Seat[]>('seats.list', { branch: 'Main Library', area: 'Group Study' })).find((s) => s.id === seat)!;
    expect(await look()).toMatchObject({ live: 'free', available: true });
    clock.advance(60 * 60_000);
    try {
      expect(await look()).toMatchObject({ live: 'reserved', available: false });
    } finally {
      clock.set(MONDAY_10_NY);
    }
    await sc.call('reservations.cancel', { id: r.id });
  });

  it.each([
    [{ start: '2030-01-07 15:00' }],
    [{ start: '2030-01-07T15:00:00' }],
    [{ start: MONDAY_10_NY, end: MONDAY_10_NY }],
    [{ start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 32 * 24 * 60) }],
    [{ branch: '' }],
    [{ area: 'a'.repeat(129) }],
    [{ hasPower: 'yes' }],
    [{ colour: 'red' }],
  ])('rejects %j with INVALID_ARGUMENT', async (args) => {
    expect((await errorOf(anon.call('seats.list', args))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('seats.get and seats.availability', () => {
  it('gets one seat as the listing shows it, or NOT_FOUND', async () => {
    const id = await seatIdOf(t, 'Q-07');
    const seat = await anon.call<Seat>('seats.get', { id });
    expect(seat).toMatchObject({ id, label: 'Q-07', branch: 'Main Library', area: 'Quiet Floor', live: 'free' });
    expect((await errorOf(anon.call('seats.get', { id: 999_999 }))).code).toBe('NOT_FOUND');
    expect((await errorOf(anon.call('seats.get', { id: 'Q-07' }))).code).toBe('INVALID_ARGUMENT');
  });

  it("lists a seat's booked holds for the branch's local day or a window", async () => {
    const id = await seatIdOf(t, 'Q-08');
    const r1 = await sc.call<{ id: number }>('reservations.create', { seatId: id, start: iso(MONDAY_10_NY, 120), end: iso(MONDAY_10_NY, 180) });
    const r2 = await sc.call<{ id: number }>('reservations.create', { seatId: id, start: iso(MONDAY_10_NY, 24 * 60), end: iso(MONDAY_10_NY, 24 * 60 + 60) });
    const today = await anon.call<{ seatId: number; booked: Array<{ start: string; end: string }> }>('seats.availability', { seatId: id });
    expect(today).toMatchObject({ seatId: id, start: '2030-01-07T05:00:00.000Z', end: '2030-01-08T05:00:00.000Z' });
    expect(today.booked).toEqual([{ start: iso(MONDAY_10_NY, 120), end: iso(MONDAY_10_NY, 180) }]);
    const tomorrow = await anon.call<typeof today>('seats.availability', { seatId: id, date: '2030-01-08' });
    expect(tomorrow.booked).toEqual([{ start: iso(MONDAY_10_NY, 24 * 60), end: iso(MONDAY_10_NY, 24 * 60 + 60) }]);
    const window = await anon.call<typeof today>('seats.availability', { seatId: id, start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 48 * 60) });
    expect(window.booked).toHaveLength(2);
    for (const r of [r1, r2]) await sc.call('reservations.cancel', { id: r.id });
    expect((await anon.call<typeof today>('seats.availability', { seatId: id })).booked).toEqual([]);
  });

  it.each([
    [{ seatId: 1, date: '2030-02-30' }, 'INVALID_ARGUMENT'],
    [{ seatId: 1, date: 'tomorrow' }, 'INVALID_ARGUMENT'],
    [{ seatId: 1, start: MONDAY_10_NY }, 'INVALID_ARGUMENT'],
    [{ seatId: 1, date: '2030-01-08', start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 60) }, 'INVALID_ARGUMENT'],
    [{ seatId: 1, start: iso(MONDAY_10_NY, 60), end: MONDAY_10_NY }, 'INVALID_ARGUMENT'],
    [{ seatId: 999_999 }, 'NOT_FOUND'],
  ])('seats.availability %j → %s', async (args, code) => {
    expect((await errorOf(anon.call('seats.availability', args))).code).toBe(code);
  });
});

describe('seats.availability: which days it answers for (docs/rules.md, "Dates")', () => {
  it.each([
    [{ date: '0100-01-01' }, 'date'], // was a window starting in year -3501
    [{ date: '1999-12-31' }, 'date'],
    [{ date: '2101-01-01' }, 'date'],
    [{ date: '9999-12-31' }, 'date'],
    [{ start: '0100-01-01T00:00:00Z', end: '0100-01-02T00:00:00Z' }, 'start'],
    [{ start: '2100-12-31T00:00:00Z', end: '2101-01-02T00:00:00Z' }, 'end'],
  ])('%j is INVALID_ARGUMENT naming %s, before the seat is looked up', async (window, field) => {
    for (const seatId of [await seatIdOf(t, 'Q-09'), 999_999]) {
      const err = await errorOf(anon.call('seats.availability', { seatId, ...window }));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.error.message.startsWith(`${field} must`)).toBe(true);
      expect(err.details).toEqual({ field });
    }
  });

  it('answers for the first and the last day of the range', async () => {
    const seatId = await seatIdOf(t, 'Q-09');
    expect(await anon.call('seats.availability', { seatId, date: '2000-01-01' })).toMatchObject({ start: '2000-01-01T05:00:00.000Z', booked: [] });
    expect(await anon.call('seats.availability', { seatId, date: '2100-12-31' })).toMatchObject({ end: '2101-01-01T05:00:00.000Z', booked: [] });
  });

  it('in America/Santiago, the day whose midnight is skipped runs from its 01:00; the day before keeps its 24 hours', async () => {
    const branch = await t.db.pool.query<{ id: number }>(
      `INSERT INTO branches (name, timezone, hours) VALUES ('Biblioteca Santiago', 'America/Santiago', '{}') RETURNING id`,
    );
    const seat = await t.db.pool.query<{ id: number }>(`INSERT INTO seats (branch_id, area, label) VALUES ($1, 'Sala', 'S-01') RETURNING id`, [
      branch.rows[0]!.id,
    ]);
    const seatId = seat.rows[0]!.id;
    // 2026-09-06: clocks jump from 00:00 (-04) to 01:00 (-03), at 04:00Z.
    expect(await anon.call('seats.availability', { seatId, date: '2026-09-06' })).toMatchObject({
      start: '2026-09-06T04:00:00.000Z',
      end: '2026-09-07T03:00:00.000Z',
    });
    expect(await anon.call('seats.availability', { seatId, date: '2026-09-05' })).toMatchObject({
      start: '2026-09-05T04:00:00.000Z',
      end: '2026-09-06T04:00:00.000Z',
    });
  });
});

describe('admin', () => {
  it('takes a seat out of service: the seat comes back, an event says so, and booking it is refused', async () => {
    const id = await seatIdOf(t, 'Q-09');
    events.length = 0;
    const seat = await ac.call<Seat>('admin.seats.setStatus', { seatId: id, status: 'OUT_OF_SERVICE' });
    expect(seat).toMatchObject({ id, status: 'OUT_OF_SERVICE', available: false, live: 'unavailable' });
    expect(events).toEqual([expect.objectContaining({ type: 'seatStatus', cause: 'admin', seatId: id, status: 'OUT_OF_SERVICE' })]);
    const err = await errorOf(sc.call('reservations.create', { seatId: id, start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 60) }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.details?.rule).toBe('seatOutOfService');
    expect(await ac.call('admin.seats.setStatus', { seatId: id, status: 'IN_SERVICE' })).toMatchObject({ status: 'IN_SERVICE', live: 'free' });
  });

  it('refuses students and anonymous callers, unknown seats and bad statuses', async () => {
    const id = await seatIdOf(t, 'Q-10');
    expect((await errorOf(sc.call('admin.seats.setStatus', { seatId: id, status: 'OUT_OF_SERVICE' }))).code).toBe('PERMISSION_DENIED');
    expect((await errorOf(anon.call('admin.seats.setStatus', { seatId: id, status: 'OUT_OF_SERVICE' }))).code).toBe('UNAUTHENTICATED');
    expect((await errorOf(ac.call('admin.seats.setStatus', { seatId: 999_999, status: 'OUT_OF_SERVICE' }))).code).toBe('NOT_FOUND');
    expect((await errorOf(ac.call('admin.seats.setStatus', { seatId: id, status: 'BROKEN' }))).code).toBe('INVALID_ARGUMENT');
  });

  it('sets opening hours, which the booking rules then follow', async () => {
    const hours = { mon: { open: '09:00', close: '12:00' }, tue: null, wed: { open: '00:00', close: '24:00' } };
    const branch = await ac.call<Branch>('admin.branches.setHours', { branch: 'Medical Library', hours });
    expect(branch).toMatchObject({ name: 'Medical Library', hours, counts: { total: 48 } });
    const seat = await seatIdOf(t, 'S-01', 'Medical Library');
    // Monday 2030-01-07 in Los Angeles: 09:00-12:00 is 17:00Z-20:00Z.
    await expect(sc.call('reservations.create', { seatId: seat, start: '2030-01-07T17:00:00Z', end: '2030-01-07T18:00:00Z' })).resolves.toMatchObject({ status: 'CONFIRMED' });
    const late = await errorOf(sc.call('reservations.create', { seatId: seat, start: '2030-01-07T19:30:00Z', end: '2030-01-07T20:30:00Z' }));
    expect(late.details?.rule).toBe('openingHours');
    const closedDay = await errorOf(sc.call('reservations.create', { seatId: seat, start: '2030-01-08T18:00:00Z', end: '2030-01-08T19:00:00Z' }));
    expect(closedDay.details?.rule).toBe('openingHours');
  });

  it.each([
    [{ branch: 'Medical Library', hours: { mon: { open: '12:00', close: '09:00' } } }, 'INVALID_ARGUMENT'],
    [{ branch: 'Medical Library', hours: { mon: { open: '9:00', close: '12:00' } } }, 'INVALID_ARGUMENT'],
    [{ branch: 'Medical Library', hours: { funday: { open: '09:00', close: '12:00' } } }, 'INVALID_ARGUMENT'],
    [{ branch: 'Medical Library', hours: { mon: { open: '09:00' } } }, 'INVALID_ARGUMENT'],
    [{ branch: 'Medical Library', hours: 'always' }, 'INVALID_ARGUMENT'],
    [{ branch: 'No Such Library', hours: {} }, 'NOT_FOUND'],
  ])('admin.branches.setHours %j → %s', async (args, code) => {
    expect((await errorOf(ac.call('admin.branches.setHours', args))).code).toBe(code);
  });

  it('admin.branches.setHours is for admins only', async () => {
    expect((await errorOf(sc.call('admin.branches.setHours', { branch: 1, hours: {} }))).code).toBe('PERMISSION_DENIED');
  });
});
