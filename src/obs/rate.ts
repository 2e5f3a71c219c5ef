// A rate over a recent window: events per second averaged over the last `windowSec` complete
// seconds (fewer right after start), from a ring of per-second counts. add() is a clock read
// and an increment, cheap enough for every sensor reading; nothing runs on a timer.

export class RateMeter {
  private readonly counts: Float64Array;
  private readonly startSec: number;
  private sec: number;

  constructor(
    private readonly windowSec: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(windowSec) || windowSec < 1) throw new RangeError('windowSec must be a positive integer');
    this.counts = new Float64Array(windowSec + 1);
    this.startSec = this.sec = Math.floor(now() / 1000);
  }

  add(n = 1): void {
    this.counts[this.advance() % this.counts.length]! += n;
  }

  /** Events per second over the last windowSec complete seconds (0 within the first second). */
  perSecond(): number {
    const cur = this.advance();
    const span = Math.min(this.windowSec, cur - this.startSec);
    if (span <= 0) return 0;
    let sum = 0;
    for (let s = cur - span; s < cur; s++) sum += this.counts[s % this.counts.length]!;
    return sum / span;
  }

  /** Moves to the current second, clearing the seconds that passed without an add (a clock stepping back stays put). */
  private advance(): number {
    const cur = Math.floor(this.now() / 1000);
    if (cur > this.sec) {
      const n = this.counts.length;
      for (let s = Math.max(this.sec + 1, cur - n + 1); s <= cur; s++) this.counts[s % n] = 0;
      this.sec = cur;
    }
    return this.sec;
  }
}
