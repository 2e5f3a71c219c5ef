// The receipt clock (docs/sensors.md): sensor readings are ordered by when the server received them,
// and two instances that receive one seat's readings within the same millisecond must still agree
// which came last. A millisecond clock made them equal, and the seat kept the earlier reading.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FakeClock, preciseWallClock, systemClock } from '../../src/core/clock.js';

/** A host whose true time is `trueMs`; its monotonic clock runs `driftPpm` fast from `originErrMs` off. */
function host(startMs: number, originErrMs: number, driftPpm = 0) {
  const h = {
    trueMs: startMs,
    wallBackMs: 0,
    clock: undefined as unknown as () => number,
  };
  const monoStart = 1_000;
  h.clock = preciseWallClock(
    () => Math.floor(h.trueMs - h.wallBackMs),
    () => monoStart + (h.trueMs - startMs) * (1 + driftPpm / 1e6),
    startMs - monoStart + originErrMs,
  );
  return h;
}

describe('preciseWallClock', () => {
  it('tells apart two receipts 5 µs apart inside one millisecond, in order', () => {
    const h = host(Date.UTC(2030, 0, 7, 15), 0);
    h.trueMs += 0.2;
    const first = h.clock();
    h.trueMs += 0.005;
    const second = h.clock();
    expect(second).toBeGreaterThan(first);
    expect(Math.floor(first)).toBe(Math.floor(second));
    expect(second - first).toBeCloseTo(0.005, 3);
  });

  it('never goes back and stays inside the wall clock\'s millisecond, whatever the start error and drift (fixed seed)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -5, max: 5, noNaN: true }),
        fc.integer({ min: -500, max: 500 }),
        fc.array(fc.double({ min: 0, max: 3, noNaN: true }), { minLength: 1, maxLength: 300 }),
        (originErrMs, driftPpm, steps) => {
          const h = host(Date.UTC(2030, 0, 7, 15), originErrMs, driftPpm);
          let last = -Infinity;
          for (const step of steps) {
            h.trueMs += step;
            const t = h.clock();
            const wall = Math.floor(h.trueMs);
            if (t < last || t < wall || t >= wall + 1) return false;
            last = t;
          }
          return true;
        },
      ),
      { seed: 20300107, numRuns: 300 },
    );
  });

  it('finds the true fraction again after starting 0.6 ms ahead or behind, once the wall clock turns over', () => {
    for (const originErrMs of [0.6, -0.6]) {
      const h = host(Date.UTC(2030, 0, 7, 15) + 0.3, originErrMs);
      for (let i = 0; i < 500; i++) {
        h.trueMs += 0.01;
        h.clock();
      }
      const errors: number[] = [];
      for (let i = 0; i < 100; i++) {
        h.trueMs += 0.037;
        errors.push(Math.abs(h.clock() - h.trueMs));
      }
      expect(Math.max(...errors)).toBeLessThan(0.02);
    }
  });

  it('follows the wall clock when it is set back an hour, instead of holding the old time', () => {
    const h = host(Date.UTC(2030, 0, 7, 15), 0);
    h.trueMs += 10;
    const before = h.clock();
    h.wallBackMs = 3_600_000;
    h.trueMs += 10;
    const after = h.clock();
    expect(before - after).toBeGreaterThan(3_599_000);
    expect(Math.floor(after)).toBe(Math.floor(h.trueMs - h.wallBackMs));
  });

  it('the system clock: 200,000 calls in a row never go back and each lies in the millisecond Date.now() gives around it', () => {
    let last = -Infinity;
    let bad = 0;
    let distinct = 0;
    for (let i = 0; i < 200_000; i++) {
      const before = Date.now();
      const t = systemClock.preciseNow();
      const after = Date.now();
      if (t < last || t < before || t >= after + 1) bad++;
      if (t > last) distinct++;
      last = t;
    }
    expect(bad).toBe(0);
    // Microseconds, not milliseconds: far more distinct values than the run lasted in ms.
    expect(distinct).toBeGreaterThan(1_000);
  });

  it('a FakeClock gives its set time, to the millisecond', () => {
    const clock = new FakeClock(Date.UTC(2030, 0, 7, 15));
    expect(clock.preciseNow()).toBe(clock.now());
    clock.advance(1);
    expect(clock.preciseNow()).toBe(Date.UTC(2030, 0, 7, 15) + 1);
  });
});
