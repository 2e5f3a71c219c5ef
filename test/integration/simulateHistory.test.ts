// `carrel db seed --history N` (src/history/simulate.ts): deterministic for a seed, a no-op when
// run again, consistent with itself (occupied inside observed, nothing overlapping), summed up for
// the report, and with the rhythms it promises: weekdays over weekends, exam weeks over the rest,
// a dip at lunch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { simulateHistory, type SimulateOptions } from '../../src/history/simulate.js';
import { UtilizationReport, type UtilizationReportWire } from '../../src/reports/utilization.js';
import { Db } from '../../src/db/db.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';

const NOW = Date.parse('2030-02-05T17:00:00Z'); // a Tuesday, noon in New York
const base: SimulateOptions = {
  days: 28,
  seed: 7,
  nowMs: NOW,
  branch: 'Medical Library',
  slotMinutes: 15,
  checkInGraceMinutes: 15,
  awayHoldMs: 20 * 60_000,
  staleAfterMs: 60_000,
};

const dbs: TestDatabase[] = [];
afterAll(async () => {
  for (const db of dbs) await db.drop();
});
async function fresh(): Promise<TestDatabase> {
  const db = await freshDatabase(4);
  dbs.push(db);
  return db;
}

/** What was made, as one digest: bookings and intervals, in a fixed order. */
async function fingerprint(db: TestDatabase): Promise<string> {
  const r = await db.pool.query<{ b: string; h: string; n: number }>(
    `SELECT (SELECT md5(string_agg(concat_ws('|', r.seat_id, u.student_id, lower(r.during), upper(r.during), r.status, r.checked_in_at, r.updated_at), ',' ORDER BY r.seat_id, lower(r.during)))
               FROM reservations r JOIN users u ON u.id = r.user_id) AS b,
            (SELECT md5(string_agg(concat_ws('|', seat_id, kind, since, until), ',' ORDER BY seat_id, kind, since)) FROM occupancy_history) AS h,
            (SELECT count(*)::int FROM occupancy_history) AS n`,
  );
  return JSON.stringify(r.rows[0]);
}

let db: TestDatabase;
let first: Awaited<ReturnType<typeof simulateHistory>>;
let took = 0;
beforeAll(async () => {
  db = await fresh();
  const t0 = performance.now();
  first = await simulateHistory(db.pool, base);
  took = performance.now() - t0;
});

describe('carrel db seed --history', () => {
  it('fills every day asked for, sums them up, and is quick about it (set-based)', () => {
    expect(first).toMatchObject({ days: 28, summed: 28 });
    expect(first.bookings).toBeGreaterThan(28 * 48);
    expect(first.noShows).toBeGreaterThan(0);
    expect(first.walkIns).toBeGreaterThan(0);
    expect(first.intervals).toBeGreaterThan(first.bookings);
    // A generous bound on a shared machine; it is a few seconds.
    expect(took).toBeLessThan(120_000);
  });

  it('gives the same history for the same seed, another for another, and changes nothing when run again', async () => {
    const again = await fresh();
    await simulateHistory(again.pool, base);
    const other = await fresh();
    await simulateHistory(other.pool, { ...base, seed: 8 });
    const mine = await fingerprint(db);
    expect(await fingerprint(again)).toBe(mine);
    expect(await fingerprint(other)).not.toBe(mine);
    expect(await simulateHistory(db.pool, base)).toMatchObject({ days: 0, bookings: 0, summed: 0 });
    expect(await fingerprint(db)).toBe(mine);
  });

  it('is consistent: occupied only while observed, no interval of a seat overlapping another of its kind, bookings in opening hours', async () => {
    const bad = await db.pool.query<{ outside: number; overlaps: number; closed: number }>(
      `SELECT (SELECT count(*)::int FROM occupancy_history o WHERE o.kind = 'occupied' AND NOT EXISTS (
                 SELECT 1 FROM occupancy_history v WHERE v.kind = 'observed' AND v.seat_id = o.seat_id AND v.since <= o.since AND v.until >= o.until)) AS outside,
              (SELECT count(*)::int FROM (SELECT since < lag(until) OVER (PARTITION BY seat_id, kind ORDER BY since) AS overlap FROM occupancy_history) x WHERE overlap) AS overlaps,
              (SELECT count(*)::int FROM reservations r JOIN seats s ON s.id = r.seat_id JOIN branches b ON b.id = s.branch_id
                WHERE (lower(r.during) AT TIME ZONE b.timezone)::time < (b.hours -> to_char(lower(r.during) AT TIME ZONE b.timezone, 'dy') ->> 'open')::time) AS closed`,
    );
    expect(bad.rows[0]).toEqual({ outside: 0, overlaps: 0, closed: 0 });
  });

  it('has the rhythms: weekdays busier than weekends, exam weeks than the others, a dip at lunch', async () => {
    const report = new UtilizationReport({ db: new Db(db.pool), clock: new FakeClock(NOW), staleAfterMs: 60_000 });
    const days = await report.run({ branch: { name: 'Medical Library' }, from: '2030-01-08', to: '2030-02-04', by: 'day' });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const booked = (pred: (d: string) => boolean) => mean(days.buckets.filter((b) => 'day' in b && pred(b.day)).map((b) => b.bookedMinutes));
    const weekday = (d: string) => new Date(`${d}T12:00:00Z`).getUTCDay();
    expect(booked((d) => weekday(d) >= 1 && weekday(d) <= 4)).toBeGreaterThan(1.3 * booked((d) => weekday(d) === 0 || weekday(d) === 6));
    // Exam weeks: the third and second weeks before today (2030-01-15 to 2030-01-28).
    expect(booked((d) => d >= '2030-01-15' && d <= '2030-01-28')).toBeGreaterThan(1.1 * booked((d) => d < '2030-01-15' || d > '2030-01-28'));
    // Every day's figures hold together.
    for (const b of days.buckets) {
      expect(b.attendedMinutes!).toBeLessThanOrEqual(b.bookedMinutes - b.unobservedBookedMinutes + 0.2);
      expect(b.ghostMinutes!).toBeGreaterThanOrEqual(0);
      expect(b.awayMinutes!).toBeLessThanOrEqual(b.ghostMinutes! + 0.2);
      expect(b.unbookedOccupiedMinutes!).toBeGreaterThanOrEqual(0);
      expect(b.peakOccupancy!).toBeLessThanOrEqual(days.seats);
    }
    const hours: UtilizationReportWire[] = [await report.run({ branch: { name: 'Medical Library' }, from: '2030-01-08', to: '2030-02-04', by: 'hour' })];
    const occupiedAt = (hour: number) => mean(hours[0]!.buckets.filter((b) => 'hour' in b && Number(b.hour.slice(11, 13)) === hour && new Date(`${b.hour.slice(0, 10)}T12:00:00Z`).getUTCDay() % 6 !== 0).map((b) => b.occupiedMinutes!));
    expect(occupiedAt(12)).toBeLessThan(occupiedAt(11));
    expect(occupiedAt(12)).toBeLessThan(occupiedAt(15));
  });
});
