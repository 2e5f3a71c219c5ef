// LiveView, the live model's answers for the listings (docs/architecture.md, "The live-state
// model"): nothing before the model loads, the model's state and counts after, a version that moves
// with its branch only, and a look asked for when the database knows seats the model does not.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { LiveSeats, type LiveSeatsData } from '../../src/core/liveSeats.js';
import { LiveView } from '../../src/core/liveView.js';

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

function loaded(clock: FakeClock) {
  const view = new LiveView(clock);
  const model = new LiveSeats(
    data(),
    clock.now(),
    { instanceId: 'i', offlineAfterMs: 120_000, releaseAfterMs: 1_200_000, autoCheckIn: false, autoRelease: false, checkInWindow: { opensBeforeMs: 0, graceMs: 0 } },
    { onChange: (c) => view.changed(c.branchId) },
  );
  return { view, model };
}

describe('LiveView', () => {
  it('answers nothing before the model is attached, so the caller keeps its SQL state', () => {
    const view = new LiveView(new FakeClock(T));
    let misses = 0;
    view.onMiss(() => misses++);
    expect(view.stateOf(10)).toBeUndefined();
    expect(view.counts(1, 2)).toBeUndefined();
    expect(misses).toBe(0);
  });

  it("gives the model's states and counts, sensors included", () => {
    const clock = new FakeClock(T);
    const { view, model } = loaded(clock);
    view.attach(model);
    expect(model.applyReading(10, true, T - 1000, T, 'gw')).toBe('applied');
    expect(view.stateOf(10)).toBe('occupied');
    expect(view.stateOf(11)).toBe('unavailable');
    expect(view.stateOf(999)).toBeUndefined();
    expect(view.counts(1, 2)).toEqual({ total: 2, free: 0, reserved: 0, occupied: 1, unavailable: 1 });
  });

  it('fires what the clock made due before answering: a booking that began reads reserved at once', () => {
    const clock = new FakeClock(T);
    const { view, model } = loaded(clock);
    view.attach(model);
    expect(view.stateOf(20)).toBe('free');
    clock.advance(60_000);
    expect(view.stateOf(20)).toBe('reserved');
    expect(view.counts(2, 1)).toMatchObject({ reserved: 1, free: 0 });
  });

  it('moves the version of the changed branch and of "any branch", not of the others', () => {
    const clock = new FakeClock(T);
    const { view, model } = loaded(clock);
    view.attach(model);
    const before = { one: view.version(1), two: view.version(2), any: view.version(null) };
    model.applyReading(10, true, T - 1000, T, 'gw');
    expect(view.version(1)).toBeGreaterThan(before.one);
    expect(view.version(2)).toBe(before.two);
    expect(view.version(null)).toBeGreaterThan(before.any);
    // A reading that changes nothing moves nothing.
    const after = { one: view.version(1), any: view.version(null) };
    model.applyReading(10, true, T - 500, T + 1, 'gw');
    expect({ one: view.version(1), any: view.version(null) }).toEqual(after);
    view.changedAll();
    expect(view.version(2)).toBeGreaterThan(before.two);
  });

  it('asks for a look, and answers nothing, when the database counts seats the model does not know', () => {
    const clock = new FakeClock(T);
    const { view, model } = loaded(clock);
    view.attach(model);
    let misses = 0;
    view.onMiss(() => misses++);
    expect(view.counts(1, 3)).toBeUndefined();
    expect(view.counts(7)).toBeUndefined();
    expect(misses).toBe(2);
    expect(view.counts(1, 2)).toBeDefined();
    expect(misses).toBe(2);
  });
});
