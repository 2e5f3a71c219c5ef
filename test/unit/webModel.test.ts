// The pages' own logic that needs no browser (docs/web.md): the live seat board, wall-clock time
// in a branch's zone, and the utilization report's rows.
import { describe, expect, it } from 'vitest';
import { Board } from '../../web/src/lib/board.js';
import { addDays, nextSlotIn, todayIn, zonedToIso } from '../../web/src/lib/zoned.js';
import { reportRows, seatsWithoutSensor } from '../../web/src/staff/report.js';

const AT = '2030-01-07T10:05:00.000Z';
const seat = (seatId: number, area: string, label: string, state = 'free', flags = {}) => ({ seatId, area, label, state, flags });

describe('Board', () => {
  it('groups a snapshot by area in natural label order, and counts each area', () => {
    const b = new Board();
    b.load({ id: 1, name: 'Main' }, [
      seat(3, 'Quiet', 'Q-10', 'occupied', { unbookedOccupancy: true }),
      seat(1, 'Quiet', 'Q-2'),
      seat(2, 'Atrium', 'A-1', 'reserved', { sensorOffline: true }),
      seat(4, 'Quiet', 'Q-1', 'unavailable'),
    ]);
    expect(b.areas.value.map((a) => [a.name, a.cells.map((c) => c.label)])).toEqual([
      ['Atrium', ['A-1']],
      ['Quiet', ['Q-1', 'Q-2', 'Q-10']],
    ]);
    const quiet = b.areas.value[1]!;
    expect(quiet.counts.value).toMatchObject({ free: 1, occupied: 1, unavailable: 1, unbookedOccupancy: 1, sensorOffline: 0 });
    expect(b.totals.value).toMatchObject({ free: 1, reserved: 1, occupied: 1, unavailable: 1, sensorOffline: 1, unbookedOccupancy: 1, total: 4 });
  });

  it('applies a seat event to its seat and its area counts only, and ignores a seat it does not know', () => {
    const b = new Board();
    b.load({ id: 1, name: 'Main' }, [seat(1, 'Quiet', 'Q-1'), seat(2, 'Quiet', 'Q-2'), seat(3, 'Atrium', 'A-1')]);
    const atrium = b.areas.value[0]!.counts.value;
    expect(b.apply({ seatId: 2, state: 'occupied', flags: { sensorOffline: true }, at: '2030-01-07T10:00:00.000Z' })).toBe(true);
    expect(b.cell(2)!.value.value).toMatchObject({ state: 'occupied', sensorOffline: true, since: '2030-01-07T10:00:00.000Z' });
    expect(b.areas.value[1]!.counts.value).toMatchObject({ free: 1, occupied: 1, sensorOffline: 1 });
    expect(b.areas.value[0]!.counts.value).toBe(atrium); // another area's counts are not touched
    expect(b.apply({ seatId: 2, state: 'away', flags: {}, at: AT, holdUntil: '2030-01-07T10:20:00.000Z' })).toBe(true);
    expect(b.cell(2)!.value.value).toMatchObject({ state: 'away', sensorOffline: false, holdUntil: '2030-01-07T10:20:00.000Z' });
    expect(b.totals.value).toMatchObject({ free: 2, away: 1, occupied: 0, sensorOffline: 0 });
    expect(b.apply({ seatId: 99, state: 'occupied', flags: {}, at: AT })).toBe(false);
    // A state a newer server may add shows as unknown, and is counted as such.
    b.apply({ seatId: 1, state: 'levitating', flags: {}, at: AT });
    expect(b.cell(1)!.value.value.state).toBe('unknown');
    expect(b.totals.value.unknown).toBe(1);
  });

  it('a snapshot replaces the board whole: what the last one had is gone', () => {
    const b = new Board();
    b.load({ id: 1, name: 'Main' }, [seat(1, 'Quiet', 'Q-1'), seat(2, 'Old', 'O-1')]);
    b.load({ id: 1, name: 'Main' }, [seat(1, 'Quiet', 'Q-1', 'occupied')]);
    expect(b.size).toBe(1);
    expect(b.areas.value.map((a) => a.name)).toEqual(['Quiet']);
    expect(b.apply({ seatId: 2, state: 'free', flags: {}, at: AT })).toBe(false);
    expect(b.totals.value).toMatchObject({ total: 1, occupied: 1, free: 0 });
  });

  it('applies an event to a 2,000-seat board without a pass over the seats', () => {
    const b = new Board();
    b.load(
      { id: 1, name: 'Big' },
      Array.from({ length: 2000 }, (_, i) => seat(i + 1, `Area ${i % 20}`, `S-${i + 1}`)),
    );
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) b.apply({ seatId: (i % 2000) + 1, state: i % 3 === 0 ? 'occupied' : 'free', flags: {}, at: AT });
    const perEvent = (performance.now() - t0) / 20_000;
    expect(perEvent).toBeLessThan(0.5); // generous: an O(n) pass would be ~2,000 steps each
    expect(b.totals.value.total).toBe(2000);
  });
});

describe('wall-clock time in a branch zone', () => {
  it('turns a local day and time into the instant, across offsets and clock changes', () => {
    expect(zonedToIso('2030-01-07', '10:00', 'America/New_York')).toBe('2030-01-07T15:00:00.000Z');
    expect(zonedToIso('2030-07-07', '10:00', 'America/New_York')).toBe('2030-07-07T14:00:00.000Z');
    expect(zonedToIso('2030-07-07', '10:00', 'Asia/Kolkata')).toBe('2030-07-07T04:30:00.000Z');
    expect(zonedToIso('2030-01-07', '00:00', 'UTC')).toBe('2030-01-07T00:00:00.000Z');
    // 02:30 does not exist on 10 March 2030 in New York: read with the offset before the change.
    expect(zonedToIso('2030-03-10', '02:30', 'America/New_York')).toBe('2030-03-10T07:30:00.000Z');
    // 01:30 happens twice on 3 November 2030: the first one.
    expect(zonedToIso('2030-11-03', '01:30', 'America/New_York')).toBe('2030-11-03T05:30:00.000Z');
    expect(zonedToIso('2030-03-31', '02:30', 'Europe/Berlin')).toBe('2030-03-31T01:30:00.000Z');
  });

  it("knows the branch's date and next slot, not the machine's", () => {
    const at = Date.parse('2030-01-07T03:50:10Z'); // 22:50:10 on the 6th in New York
    expect(todayIn('America/New_York', at)).toBe('2030-01-06');
    expect(todayIn('Asia/Tokyo', at)).toBe('2030-01-07');
    expect(nextSlotIn('America/New_York', 15, at)).toEqual({ time: '23:00', tomorrow: false });
    expect(nextSlotIn('UTC', 15, Date.parse('2030-01-07T23:50:00Z'))).toEqual({ time: '00:00', tomorrow: true });
    expect(nextSlotIn('UTC', 15, Date.parse('2030-01-07T10:15:00Z'))).toEqual({ time: '10:15', tomorrow: false });
    expect(addDays('2030-02-28', 1)).toBe('2030-03-01');
    expect(addDays('2030-01-01', -1)).toBe('2029-12-31');
  });
});

describe('the utilization report rows', () => {
  it('reads buckets with minutes, utilization as a percentage, and peak occupancy', () => {
    const rows = reportRows({
      buckets: [
        { bucket: '2030-01-07', bookedMinutes: 600, attendedMinutes: 420, ghostMinutes: 180, unbookedOccupiedMinutes: 30, utilization: 0.42, peakOccupancy: 12 },
        { bucket: '2030-01-08', bookedMinutes: 0, attendedMinutes: 0, ghostMinutes: 0, utilizationPercent: 0 },
      ],
    });
    expect(rows).toEqual([
      { label: '2030-01-07', values: { booked: 600, attended: 420, ghost: 180, unbooked: 30, utilization: 42, peak: 12, noShows: undefined } },
      { label: '2030-01-08', values: { booked: 0, attended: 0, ghost: 0, unbooked: undefined, utilization: 0, peak: undefined, noShows: undefined } },
    ]);
    expect(reportRows([{ hour: 9, utilizationPercent: 55.5 }])[0]).toMatchObject({ label: '9', values: { utilization: 55.5 } });
    // The report's own shape: a percentage already, and null where no sensor reported.
    const seatRows = reportRows({
      by: 'seat',
      buckets: [{ seatId: 4, label: 'Q-04', area: 'Quiet', sensor: false, bookedMinutes: 90, attendedMinutes: null, ghostMinutes: null, utilizationPct: 0.5, peakOccupancy: null, noShows: 1 }],
      seatsWithoutSensor: { count: 1, labels: ['Q-04'] },
    });
    expect(seatRows).toEqual([{ label: 'Q-04', values: { booked: 90, attended: undefined, ghost: undefined, unbooked: undefined, utilization: 0.5, peak: undefined, noShows: 1 } }]);
    expect(seatsWithoutSensor({ seatsWithoutSensor: { count: 1, labels: ['Q-04'] } })).toEqual({ count: 1, labels: ['Q-04'] });
    expect(seatsWithoutSensor({ seatsWithoutSensor: { count: 0, labels: [] } })).toBeNull();
    expect(reportRows(null)).toEqual([]);
    expect(reportRows({ nothing: true })).toEqual([]);
  });
});
