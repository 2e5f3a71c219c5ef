// admin.reports.utilization (docs/reports.md, docs/protocol.md) on a small history whose every
// figure is worked out by hand below; the same answers from the intervals and from the day's sums;
// who may ask; the bounds on what one report may ask for, and an admin who asks for too much.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { FakeClock } from '../../src/core/clock.js';
import { zonedInstant } from '../../src/core/zonedTime.js';
import { connect, makeUsers, type TestUser } from '../support/core.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Monday 2030-01-07 in New York (UTC-5). The clock stands at noon the next day.
const TZ = 'America/New_York';
const at = (hhmm: string, day = 7): Date => {
  const [h, m] = hhmm.split(':').map(Number);
  return new Date(zonedInstant(2030, 1, day, h! * 60 + m!, TZ));
};
const NOW = at('12:00', 8);

let t: TestServer;
let admin: TestUser;
let student: TestUser;
let c: RpcClient;
const seat: Record<string, number> = {};

beforeAll(async () => {
  const clock = new FakeClock(NOW.getTime());
  // No lifecycle (it would mark bookings), no autotick: the history below is the whole truth.
  t = await startTestServer({ lifecycle: { enabled: false } }, { clock });
  admin = (await makeUsers(t, 1, 'report-admin', 'admin'))[0]!;
  student = (await makeUsers(t, 1, 'report-student'))[0]!;
  const db = t.db.pool;
  const hours = Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, { open: '08:00', close: '20:00' }]));
  const b = await db.query<{ id: number }>("INSERT INTO branches (name, timezone, hours) VALUES ('Report Branch', $1, $2) RETURNING id", [TZ, JSON.stringify(hours)]);
  for (const [area, label] of [['North', 'N-1'], ['North', 'N-2'], ['South', 'S-1']] as const) {
    seat[label] = (await db.query<{ id: number }>('INSERT INTO seats (branch_id, area, label) VALUES ($1, $2, $3) RETURNING id', [b.rows[0]!.id, area, label])).rows[0]!.id;
  }
  await db.query('SELECT carrel_history_partitions($1, $2)', [at('00:00', 1), at('00:00', 20)]);
  const book = (label: string, from: string, to: string, status: string, checkedIn?: string, updated?: string) =>
    db.query(
      `INSERT INTO reservations (seat_id, user_id, during, hold, status, checked_in_at, updated_at)
       VALUES ($1, $2, tstzrange($3, $4), tstzrange($3, $4), $5, $6, coalesce($7, $4))`,
      [seat[label], student.id, at(from), at(to), status, checkedIn ? at(checkedIn) : null, updated ? at(updated) : null],
    );
  await book('N-1', '09:00', '11:00', 'COMPLETED', '09:10');
  await book('N-2', '10:00', '12:00', 'NO_SHOW', undefined, '10:15'); // held until it was marked, 10:15
  await book('S-1', '13:00', '14:00', 'COMPLETED', '13:00'); // a seat without a sensor
  await book('N-1', '13:00', '15:00', 'COMPLETED', '13:05');
  await book('N-2', '15:00', '16:00', 'CANCELLED'); // never held: not counted
  const interval = (label: string, kind: string, from: string, to: string) =>
    db.query('INSERT INTO occupancy_history (seat_id, kind, since, until) SELECT $1, $2, since, until FROM carrel_utc_days($3, $4)', [seat[label], kind, at(from), at(to)]);
  await interval('N-1', 'observed', '08:00', '20:00');
  for (const [from, to] of [['09:10', '10:00'], ['10:20', '11:30'], ['13:05', '13:50'], ['14:10', '14:40'], ['16:00', '17:00']]) await interval('N-1', 'occupied', from!, to!);
  // N-2's sensor is silent 12:00-13:00, and reports from 18:00 on in an interval still open.
  await interval('N-2', 'observed', '08:00', '12:00');
  await interval('N-2', 'observed', '13:00', '18:00');
  await interval('N-2', 'occupied', '11:00', '11:45');
  const w = await db.query<{ id: number }>("INSERT INTO occupancy_writers (instance, started_at, alive_at) VALUES ('test', $1, $2) RETURNING id", [at('07:00'), NOW]);
  await db.query('INSERT INTO occupancy_open (seat_id, observed_since, occupied_since, writer) VALUES ($1, $2, NULL, $3)', [seat['N-2'], at('18:00'), w.rows[0]!.id]);
  c = await connect(t, admin);
});
afterAll(async () => {
  c?.close();
  await t.close();
});

const report = (args: Record<string, unknown>) => c.call<any>('admin.reports.utilization', { branch: 'Report Branch', from: '2030-01-07', to: '2030-01-07', ...args });

/**
 * The day, by hand. Booked: N-1 120 + 120, N-2 15 (the no-show until it was marked), S-1 60 = 315.
 * Observed: N-1 08-20 (720), N-2 08-12, 13-18 and 18-24 from the open interval (900), S-1 none.
 * Occupied: N-1 50 + 70 + 45 + 30 + 60 = 255, N-2 45 = 300.
 * Attended: N-1's first booking 09:10-10:00 and 10:20-11:00 (90), its second 13:05-13:50 and
 * 14:10-14:40 (75) = 165. Booked and observed: 120 + 120 + 15 = 255, so ghost 90 and unobserved
 * 60 (S-1). Away (empty after check-in): 10:00-10:20 (20) and 13:50-14:10, 14:40-15:00 (40) = 60.
 * Unbooked occupied: N-1 11:00-11:30 and 16:00-17:00 (90), N-2 11:00-11:45 (45) = 135.
 * Within opening hours (08-20): observed 720 + 660, occupied all 300: 300 / 1380 = 21.7%.
 * Peak: N-1 and N-2 are both occupied 11:00-11:30: 2.
 */
const DAY = {
  bookings: 4,
  noShows: 1,
  bookedMinutes: 315,
  attendedMinutes: 165,
  ghostMinutes: 90,
  awayMinutes: 60,
  unobservedBookedMinutes: 60,
  occupiedMinutes: 300,
  unbookedOccupiedMinutes: 135,
  observedMinutes: 1620,
  openObservedMinutes: 1380,
  openOccupiedMinutes: 300,
  peakOccupancy: 2,
  utilizationPct: 21.7,
};

describe('the figures of a hand-computed day', () => {
  const check = async () => {
    const day = await report({});
    expect(day).toMatchObject({ branch: { name: 'Report Branch', timezone: TZ }, by: 'day', seats: 3, start: at('00:00').toISOString(), end: at('00:00', 8).toISOString() });
    expect(day.seatsWithoutSensor).toEqual({ count: 1, labels: ['S-1'] });
    expect(day.buckets).toEqual([{ day: '2030-01-07', start: at('00:00').toISOString(), end: at('00:00', 8).toISOString(), ...DAY }]);
    expect(day.total).toEqual(DAY);

    const seats = await report({ by: 'seat' });
    expect(seats.buckets).toEqual([
      {
        seatId: seat['N-1'], label: 'N-1', area: 'North', sensor: true,
        bookings: 2, noShows: 0, bookedMinutes: 240, attendedMinutes: 165, ghostMinutes: 75, awayMinutes: 60, unobservedBookedMinutes: 0,
        occupiedMinutes: 255, unbookedOccupiedMinutes: 90, observedMinutes: 720, openObservedMinutes: 720, openOccupiedMinutes: 255,
        peakOccupancy: 1, utilizationPct: 35.4,
      },
      {
        seatId: seat['N-2'], label: 'N-2', area: 'North', sensor: true,
        bookings: 1, noShows: 1, bookedMinutes: 15, attendedMinutes: 0, ghostMinutes: 15, awayMinutes: 0, unobservedBookedMinutes: 0,
        occupiedMinutes: 45, unbookedOccupiedMinutes: 45, observedMinutes: 900, openObservedMinutes: 660, openOccupiedMinutes: 45,
        peakOccupancy: 1, utilizationPct: 6.8,
      },
      {
        // No sensor: what it cannot know is null, not 0.
        seatId: seat['S-1'], label: 'S-1', area: 'South', sensor: false,
        bookings: 1, noShows: 0, bookedMinutes: 60, attendedMinutes: null, ghostMinutes: null, awayMinutes: null, unobservedBookedMinutes: 60,
        occupiedMinutes: null, unbookedOccupiedMinutes: null, observedMinutes: 0, openObservedMinutes: 0, openOccupiedMinutes: null,
        peakOccupancy: null, utilizationPct: null,
      },
    ]);
    expect(seats.total).toEqual(DAY);

    const areas = await report({ by: 'area' });
    expect(areas.buckets).toEqual([
      { area: 'North', seats: 2, seatsWithSensor: 2, ...DAY, bookings: 3, bookedMinutes: 255, unobservedBookedMinutes: 0 },
      {
        area: 'South', seats: 1, seatsWithSensor: 0,
        bookings: 1, noShows: 0, bookedMinutes: 60, attendedMinutes: null, ghostMinutes: null, awayMinutes: null, unobservedBookedMinutes: 60,
        occupiedMinutes: null, unbookedOccupiedMinutes: null, observedMinutes: 0, openObservedMinutes: 0, openOccupiedMinutes: null,
        peakOccupancy: null, utilizationPct: null,
      },
    ]);
    expect(areas.buckets[0].noShows).toBe(1);

    const hours = await report({ by: 'hour' });
    expect(hours.buckets).toHaveLength(24);
    const hour = (h: number) => hours.buckets.find((b: any) => b.hour === `2030-01-07T${String(h).padStart(2, '0')}:00`);
    // 09: N-1 booked 60, occupied from 09:10 (checked in then): 10 minutes of ghost, none of it away.
    expect(hour(9)).toMatchObject({ bookedMinutes: 60, attendedMinutes: 50, ghostMinutes: 10, awayMinutes: 0, occupiedMinutes: 50, peakOccupancy: 1, bookings: 1 });
    // 10: N-1 booked all hour, occupied from 10:20 (away 20); N-2's no-show held 10:00-10:15.
    expect(hour(10)).toMatchObject({ bookedMinutes: 75, attendedMinutes: 40, ghostMinutes: 35, awayMinutes: 20, noShows: 1, bookings: 1 });
    // 11: nobody booked, both North seats occupied 11:00-11:30.
    expect(hour(11)).toMatchObject({ bookedMinutes: 0, occupiedMinutes: 75, unbookedOccupiedMinutes: 75, peakOccupancy: 2 });
    // 12: N-2 silent: only N-1 observed.
    expect(hour(12)).toMatchObject({ observedMinutes: 60, openObservedMinutes: 60, occupiedMinutes: 0, utilizationPct: 0 });
    // 21: after closing: observed, but outside opening hours.
    expect(hour(21)).toMatchObject({ observedMinutes: 60, openObservedMinutes: 0, utilizationPct: null });
    expect(hours.total).toEqual(DAY);
  };

  it('computed from the bookings and the intervals (the day is not summed up yet)', async () => {
    expect((await t.db.pool.query('SELECT count(*)::int AS n FROM occupancy_rolled_days')).rows[0].n).toBe(0);
    await check();
  });

  it('the same from the day\'s sums, once the maintenance has summed it up', async () => {
    const rolled = await t.history!.rollUp(NOW.getTime());
    expect(rolled).toBeGreaterThanOrEqual(1);
    expect((await t.db.pool.query("SELECT count(*)::int AS n FROM occupancy_rolled_days WHERE day = '2030-01-07'")).rows[0].n).toBeGreaterThanOrEqual(1);
    await check();
  });

  it('a range that reaches into today stops at now, and a day ahead has no buckets', async () => {
    const r = await report({ from: '2030-01-07', to: '2030-01-09' });
    expect(r.end).toBe(NOW.toISOString());
    expect(r.buckets.map((b: any) => [b.day, b.end])).toEqual([
      ['2030-01-07', at('00:00', 8).toISOString()],
      ['2030-01-08', NOW.toISOString()],
    ]);
    // Today: N-2's open interval goes on until now (its writer is alive): 12 hours observed.
    expect(r.buckets[1]).toMatchObject({ observedMinutes: 720, bookedMinutes: 0 });
    expect(r.total).toMatchObject({ ...DAY, observedMinutes: 1620 + 720, openObservedMinutes: 1380 + 240, utilizationPct: 18.5 });
  });
});

describe('who may ask, and what', () => {
  it('is for admins: a student is PERMISSION_DENIED, nobody UNAUTHENTICATED', async () => {
    const s = await connect(t, student);
    const anon = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    try {
      const args = [{ branch: 'Report Branch', from: '2030-01-07', to: '2030-01-07' }];
      expect((await s.request('admin.reports.utilization', args)).error?.code).toBe('PERMISSION_DENIED');
      expect((await anon.request('admin.reports.utilization', args)).error?.code).toBe('UNAUTHENTICATED');
    } finally {
      s.close();
      anon.close();
    }
  });

  it('refuses ranges past the bounds, bad dates and unknown branches with stable codes', async () => {
    const code = async (args: Record<string, unknown>) =>
      (await c.request('admin.reports.utilization', [{ branch: 'Report Branch', from: '2030-01-07', to: '2030-01-07', ...args }])).error ?? undefined;
    expect(await code({ from: '2029-01-01', to: '2030-01-02' })).toMatchObject({ code: 'INVALID_ARGUMENT', details: { maxDays: 366, days: 367 } });
    expect(await code({ from: '2029-01-02', to: '2030-01-02', by: 'seat' })).toBeUndefined(); // 366 days: fine
    expect(await code({ from: '2030-01-01', to: '2030-02-01', by: 'hour' })).toMatchObject({ code: 'INVALID_ARGUMENT', details: { maxDays: 31, days: 32 } });
    expect(await code({ from: '2030-01-08', to: '2030-01-07' })).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await code({ from: '2030-02-30' })).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await code({ from: '2030-1-7' })).toMatchObject({ code: 'INVALID_ARGUMENT' });
    // Before 1970 time zones (and JavaScript's two-digit years) stop making sense.
    expect(await code({ from: '0100-01-01', to: '0100-01-02' })).toMatchObject({ code: 'INVALID_ARGUMENT', details: { firstYear: 1970 } });
    expect(await code({ from: '1969-12-31', to: '1970-01-01' })).toMatchObject({ code: 'INVALID_ARGUMENT' });
    // The far future is a range with nothing in it yet: no buckets, no error.
    expect((await report({ from: '9999-12-30', to: '9999-12-31' })).buckets).toEqual([]);
    expect(await code({ by: 'week' })).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await code({ extra: 1 })).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await code({ branch: 'No Such Branch' })).toMatchObject({ code: 'NOT_FOUND' });
    expect(await code({ branch: 'x'.repeat(201) })).toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('an admin who asks for too much', () => {
  it("runs at most admission.dbPerClient of one admin's reports at once, refuses past the queue, and everyone else is still served", async () => {
    const args = [{ branch: 'Report Branch', from: '2029-01-09', to: '2030-01-09', by: 'seat' }];
    const s = await connect(t, student);
    let running = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const r = await t.db.pool.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%hx AS MATERIALIZED%' AND pid <> pg_backend_pid()",
        );
        running = Math.max(running, r.rows[0]!.n);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    try {
      // 40 year-long reports pipelined on one connection, as a script gone wrong would send them.
      const flood = Array.from({ length: 40 }, () => c.request('admin.reports.utilization', args));
      const served: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        expect((await s.request('reservations.mine', [{}])).error ?? undefined).toBeUndefined();
        served.push(performance.now() - t0);
      }
      const outcomes = await Promise.all(flood);
      const codes = outcomes.map((o) => o.error?.code ?? 'OK');
      expect(codes.filter((x) => x === 'OK').length).toBeGreaterThan(0);
      // The admin's queue at the gate holds admission.dbQueuePerClient (16): the rest are refused at once.
      expect(codes.filter((x) => x === 'RESOURCE_EXHAUSTED').length).toBeGreaterThan(0);
      expect(outcomes.find((o) => o.error?.code === 'RESOURCE_EXHAUSTED')?.error?.details).toMatchObject({ limit: 'database' });
      expect(new Set(codes)).toEqual(new Set(codes.filter((x) => ['OK', 'RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED'].includes(x))));
      // A noisy machine: generous, but far below what waiting behind 40 reports would take.
      expect(Math.max(...served)).toBeLessThan(2_000);
    } finally {
      sampling = false;
      await sampler;
      s.close();
    }
    expect(running).toBeGreaterThan(0);
    expect(running).toBeLessThanOrEqual(t.config.admission.dbPerClient);
  });
});
