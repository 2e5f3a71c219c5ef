// What the live model tells the occupancy history (LiveSeatsHooks.onPresence; docs/reports.md,
// "Where the figures come from"): a change of what a seat's own sensors say — occupied, empty, or
// unknown once the sensor falls silent — at the server's receipt time; nothing for a resend, for
// the state loaded at start, or for evidence another instance holds.
import { describe, expect, it } from 'vitest';
import { LiveSeats, type LiveSeatsData, type Presence, type SeatChange } from '../../src/core/liveSeats.js';

const T = Date.UTC(2030, 0, 7, 15);
const SEAT = 10;
const OFFLINE_MS = 120_000;

function model(data: Partial<LiveSeatsData> = {}, instanceId = 'a') {
  const calls: Array<[Presence, number, Presence]> = [];
  const changes: SeatChange[] = [];
  const m = new LiveSeats(
    { instanceId, offlineAfterMs: OFFLINE_MS, awayEndingMs: 300_000, autoCheckIn: false, autoRelease: false, checkInWindow: { opensBeforeMs: 0, graceMs: 0 } },
    {
      changes: { publishSeat: (c) => void changes.push(c) },
      presence: (seatId, presence, atMs, previous) => void (seatId === SEAT && calls.push([presence, atMs - T, previous])),
    },
  );
  m.load(
    {
      branches: [{ id: 1, name: 'Main Library' }],
      seats: [{ id: SEAT, branchId: 1, area: 'A', label: '1', outOfService: false }],
      bookings: [],
      sensors: [],
      ...data,
    },
    T,
  );
  return { m, calls, changes };
}

describe('LiveSeats → onPresence', () => {
  it('readings that change the state, a resend that does not, silence at the last word, and back on a heartbeat', () => {
    const { m, calls } = model();
    m.applyReading(SEAT, false, T, T, 'gw');
    m.applyReading(SEAT, true, T + 1000, T + 1000, 'gw');
    m.applyReading(SEAT, true, T + 2000, T + 2000, 'gw'); // the same state again: nothing
    expect(m.applyReading(SEAT, false, T + 500, T + 3000, 'gw')).toBe('stale'); // a resend: nothing
    m.touch(SEAT, T + 10_000); // a heartbeat: proof of life, no change
    m.tick(T + 10_000 + OFFLINE_MS + 1); // silent since the heartbeat
    m.touch(SEAT, T + 300_000); // heard from again: its last reading stands from now
    expect(calls).toEqual([
      [false, 0, null],
      [true, 1000, false],
      [null, 10_000, true],
      [true, 300_000, null],
    ]);
  });

  it('the state loaded at start is not evidence: nothing until the sensor is heard from', () => {
    const { m, calls } = model({ sensors: [{ seatId: SEAT, occupied: true, readingAtMs: T - 60_000, receivedAtMs: T - 60_000, sensorId: 'gw' }] });
    expect(m.seat(SEAT)!.state).toBe('occupied');
    m.tick(T + 1000);
    expect(calls).toEqual([]);
    m.touch(SEAT, T + 5000);
    expect(calls).toEqual([[true, 5000, null]]);
  });

  it("another instance's newer reading is that instance's to write: this one only keeps up with it", () => {
    const a = model({}, 'a');
    const b = model({}, 'b');
    a.m.applyReading(SEAT, true, T, T, 'gw-a');
    for (const c of a.changes) b.m.applyRemote(c, T);
    // B's own gateway reports the seat empty: B writes that; A hears of it by the bus and writes nothing.
    b.m.applyReading(SEAT, false, T + 1000, T + 1000, 'gw-b');
    for (const c of b.changes) a.m.applyRemote(c, T + 1000);
    expect(b.calls).toEqual([[false, 1000, true]]);
    expect(a.calls).toEqual([[true, 0, null]]);
    // A's own sensor says occupied again: a change from what the history now holds (B's empty).
    a.m.applyReading(SEAT, true, T + 2000, T + 2000, 'gw-a');
    expect(a.calls).toEqual([
      [true, 0, null],
      [true, 2000, false],
    ]);
  });
});
