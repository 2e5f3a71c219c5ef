// Time is injected (STYLE §7): core asks a Clock, tests move a FakeClock instead of sleeping.

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class FakeClock implements Clock {
  constructor(private ms: number = Date.parse('2026-01-05T15:00:00Z')) {}
  now(): number {
    return this.ms;
  }
  set(isoOrMs: string | number): void {
    this.ms = typeof isoOrMs === 'number' ? isoOrMs : Date.parse(isoOrMs);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}
