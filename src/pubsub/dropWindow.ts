// How many events a subscriber dropped recently (docs/protocol.md, "Slow consumers":
// pubsub.maxDrops within pubsub.dropWindowMs cuts it off with SLOW_CONSUMER). A sliding window of
// SLICES + 1 counters, each 1/SLICES of the window: a drop counts until between dropWindowMs and
// 17/16 of it later. A tumbling window, reset when a window had passed, let almost 2 × maxDrops
// drops through within one dropWindowMs across a reset; here maxDrops within any dropWindowMs are
// enough. Fixed size (17 counters) whatever maxDrops is, so it costs nothing per drop allowed.

const SLICES = 16;

export class DropWindow {
  private readonly counts = new Uint32Array(SLICES + 1);
  private readonly sliceMs: number;
  private slice = -1;
  private total = 0;

  constructor(windowMs: number) {
    this.sliceMs = windowMs / SLICES;
  }

  /** Counts one drop at nowMs and returns the drops within the window that ends now. */
  add(nowMs: number): number {
    const n = this.counts.length;
    // A clock that steps back counts into the current slice.
    const slice = Math.max(this.slice, Math.floor(nowMs / this.sliceMs));
    if (this.slice < 0 || slice - this.slice >= n) {
      this.counts.fill(0);
      this.total = 0;
    } else {
      for (let s = this.slice + 1; s <= slice; s++) {
        this.total -= this.counts[s % n]!;
        this.counts[s % n] = 0;
      }
    }
    this.slice = slice;
    this.counts[slice % n]!++;
    return ++this.total;
  }
}
