// Time is injected (STYLE §7): core asks a Clock, tests move a FakeClock instead of sleeping.

export interface Clock {
  now(): number;
  /**
   * The same time to the microsecond, never going back within the process unless the wall clock is
   * set back: the receipt time that orders sensor readings (docs/sensors.md). Readings received
   * within one millisecond, on one instance or on instances of one host, are told apart by it.
   */
  preciseNow(): number;
}

/**
 * The wall clock to the microsecond. The fraction of a millisecond comes from the monotonic clock,
 * which does not follow the corrections NTP makes to the wall clock, so it is kept inside the wall
 * clock's own millisecond: a reading outside is moved to that millisecond's nearer edge, and the
 * anchor (the wall time at which the monotonic clock read 0) with it. Each such move brings the
 * anchor closer to the true start of a millisecond, and none makes the time go back (a value above
 * the window becomes its top, which no earlier one exceeded). The clocks are parameters for tests.
 */
export function preciseWallClock(wallNow: () => number = Date.now, monoNow: () => number = () => performance.now(), originMs = performance.timeOrigin): () => number {
  let anchorMs = originMs;
  return () => {
    const mono = monoNow();
    const wall = wallNow();
    let t = anchorMs + mono;
    if (t < wall || t > wall + 0.999) {
      t = t < wall ? wall : wall + 0.999;
      anchorMs = t - mono;
    }
    return Math.round(t * 1000) / 1000;
  };
}

export const systemClock: Clock = { now: () => Date.now(), preciseNow: preciseWallClock() };

export class FakeClock implements Clock {
  constructor(private ms: number = Date.parse('2026-01-05T15:00:00Z')) {}
  now(): number {
    return this.ms;
  }
  /** The fake time as set: tests that need two receipts apart move the clock between them. */
  preciseNow(): number {
    return this.ms;
  }
  set(isoOrMs: string | number): void {
    this.ms = typeof isoOrMs === 'number' ? isoOrMs : Date.parse(isoOrMs);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}
