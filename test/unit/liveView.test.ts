// LiveView, the live model's answers for the listings (docs/architecture.md, "The live-state
// model"): the model's states and counts, sensors included; a version that moves with its branch
// only; and a look for added seats when rows from the database name what the model does not know.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { LiveSeats, type LiveSeatsData, type SeatChange } from '../../src/core/liveSeats.js';
import { LiveView, type AddedSeatsFinder } from '../../src/core/liveView.js';

const T = Date.UTC(2030, 0, 7, 15);

function data(): LiveSeatsData {
  return {
    branches: [
      { id: 1, name: 'Main Library' },
      { id: 2, name: 'Medical Library' },
    ],
    seats: [
      { id: 10, branchId: 1, area: 'A', label: '1', outOfService: false },
      { id: 11, branchId: 1, area: 'A', label: '2', outOfService: true },
      { id: 20, branchId: 2, area: 'B', label: '1', outOfService: false },
    ],
    // Seat 20 is booked from a minute from now.
    bookings: [{ id: 1, seatId: 20, userId: 1, startMs: T + 60_000, endMs: T + 3_600_000, status: 'CONFIRMED' }],
    sensors: [],
  };
}

function model(clock: FakeClock, published: SeatChange[] = []): LiveSeats {
  const m = new LiveSeats(
    { instanceId: 'i', offlineAfterMs: 120_000, awayEndingMs: 300_000, autoCheckIn: false, autoRelease: false, checkInWindow: { opensBeforeMs: 0, graceMs: 0 } },
    { changes: { publishSeat: (c) => published.push(c) } },
  );
  m.load(data(), clock.now());
  return m;
}

/**
 * A finder that, when asked, adds seat 30 to branch 1 and branch 3 with seat 40 — what a look
 * (src/live/discovery.ts) finds after someone inserted them — counting its looks.
 */
function finder(m: LiveSeats, clock: FakeClock) {
  const f = {
    looks: 0,
    lookMark: 0,
    async lookAfter(mark: number) {
      if (f.looks > mark) return;
      f.looks++;
      f.lookMark = f.looks;
      m.add(
        {
          branches: [{ id: 3, name: 'Annex' }],
          seats: [
            { id: 30, branchId: 1, area: 'A', label: '3', outOfService: false },
            { id: 40, branchId: 3, area: 'C', label: '1', outOfService: false },
          ],
          bookings: [],
          sensors: [{ seatId: 30, occupied: true, readingAtMs: T - 1000, receivedAtMs: T - 1000, sensorId: 'gw' }],
          order: [10, 11, 30, 20, 40],
        },
        clock.now(),
      );
    },
  } satisfies AddedSeatsFinder & { looks: number };
  return f;
}

describe('LiveView', () => {
  it("gives the model's states and counts, sensors included", () => {
    const clock = new FakeClock(T);
    const m = model(clock);
    const view = new LiveView(m, clock);
    expect(m.applyReading(10, true, T - 1000, T, 'gw')).toBe('applied');
    expect(view.stateOf(10)).toBe('occupied');
    expect(view.stateOf(11)).toBe('unavailable');
    expect(view.stateOf(999)).toBeUndefined();
    expect(view.counts(1)).toEqual({ total: 2, free: 0, reserved: 0, occupied: 1, away: 0, unavailable: 1 });
    expect(view.counts(7)).toBeUndefined();
  });

  it('fires what the clock made due before answering: a booking that began reads reserved at once, and is published', () => {
    const clock = new FakeClock(T);
    const published: SeatChange[] = [];
    const view = new LiveView(model(clock, published), clock);
    expect(view.stateOf(20)).toBe('free');
    clock.advance(60_000);
    expect(view.stateOf(20)).toBe('reserved');
    expect(view.counts(2)).toMatchObject({ reserved: 1, free: 0 });
    expect(published).toMatchObject([{ seatId: 20, state: 'reserved' }]);
  });

  it('moves the version of the changed branch and of "any branch", not of the others', () => {
    const clock = new FakeClock(T);
    const m = model(clock);
    const view = new LiveView(m, clock);
    const before = { one: view.version(1), two: view.version(2), any: view.version(null) };
    m.applyReading(10, true, T - 1000, T, 'gw');
    expect(view.version(1)).toBeGreaterThan(before.one);
    expect(view.version(2)).toBe(before.two);
    expect(view.version(null)).toBeGreaterThan(before.any);
    // A reading that changes nothing moves nothing.
    const after = { one: view.version(1), any: view.version(null) };
    m.applyReading(10, true, T - 500, T + 1, 'gw');
    expect({ one: view.version(1), any: view.version(null) }).toEqual(after);
  });

  it('looks once for seats the model does not know, then answers with their live state', async () => {
    const clock = new FakeClock(T);
    const m = model(clock);
    const f = finder(m, clock);
    const view = new LiveView(m, clock, f);
    const mark = view.lookMark;
    const layout = view.layoutVersion;
    const v2 = view.version(2);
    await view.known([10, 30], mark);
    expect(f.looks).toBe(1);
    // Seat 30 came with its last reading: the model's state, sensors included.
    expect(view.stateOf(30)).toBe('occupied');
    // Seats added: every cached listing and the branch rows are stale.
    expect(view.layoutVersion).toBeGreaterThan(layout);
    expect(view.version(2)).toBeGreaterThan(v2);
    // Known seats cost no look.
    await view.known([10, 30, 40], view.lookMark);
    expect(f.looks).toBe(1);
  });

  it('counts a branch from the model, looking first when the database counts more seats or a branch it does not know', async () => {
    const clock = new FakeClock(T);
    const m = model(clock);
    const f = finder(m, clock);
    const view = new LiveView(m, clock, f);
    // As many seats as the database says: no look.
    expect((await view.countsOf([{ id: 1, total: 2 }], view.lookMark)).get(1)).toEqual({ total: 2, free: 1, reserved: 0, occupied: 0, away: 0, unavailable: 1 });
    expect(f.looks).toBe(0);
    const counts = await view.countsOf(
      [
        { id: 1, total: 3 },
        { id: 3, total: 1 },
      ],
      view.lookMark,
    );
    expect(f.looks).toBe(1);
    expect(counts.get(1)).toEqual({ total: 3, free: 1, reserved: 0, occupied: 1, away: 0, unavailable: 1 });
    expect(counts.get(3)).toEqual({ total: 1, free: 1, reserved: 0, occupied: 0, away: 0, unavailable: 0 });
  });

  it('is UNAVAILABLE for a seat or branch the model still does not know after the look', async () => {
    const clock = new FakeClock(T);
    const m = model(clock);
    const view = new LiveView(m, clock);
    await expect(view.known([10, 99], view.lookMark)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(view.countsOf([{ id: 9, total: 1 }], view.lookMark)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
