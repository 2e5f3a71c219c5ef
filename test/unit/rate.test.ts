import { describe, expect, it } from 'vitest';
import { RateMeter } from '../../src/obs/rate.js';

describe('RateMeter', () => {
  it('averages the last windowSec complete seconds, fewer right after start', () => {
    let now = 1_000_000; // on a second boundary
    const m = new RateMeter(10, () => now);
    m.add(30);
    expect(m.perSecond()).toBe(0); // the first second is not complete yet
    now += 1000;
    expect(m.perSecond()).toBe(30); // one second so far
    for (let s = 0; s < 9; s++) {
      m.add(10);
      now += 1000;
    }
    expect(m.perSecond()).toBe((30 + 9 * 10) / 10);
    now += 1000; // the 30 leaves the window
    expect(m.perSecond()).toBe(9 * 10 / 10);
  });

  it('forgets seconds without events, and a long silence entirely', () => {
    let now = 0;
    const m = new RateMeter(5, () => now);
    for (let i = 0; i < 100; i++) {
      m.add();
      now += 50; // 20 per second for 5 s
    }
    expect(m.perSecond()).toBe(20);
    now += 3_000;
    expect(m.perSecond()).toBe(8); // 2 of the last 5 seconds had 20
    now += 60_000;
    expect(m.perSecond()).toBe(0);
    m.add(5);
    now += 1000;
    expect(m.perSecond()).toBe(1);
  });

  it('refuses a window that is not a whole number of seconds', () => {
    expect(() => new RateMeter(0)).toThrow(RangeError);
    expect(() => new RateMeter(2.5)).toThrow(RangeError);
  });
});
