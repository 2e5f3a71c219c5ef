// Bus lag: from a seat change being handed to the bus (on whichever instance) to its delivery
// here. With Redis it is the round trip through the stream; in process it is ~0. Catch-up after an
// outage is not counted: those events were published long ago on purpose.
import { Histogram } from '../obs/metrics.js';

export class BusLag {
  /** In seconds, every delivery counted since start. */
  readonly histogram = new Histogram([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
  /** That of the latest delivery, in ms. */
  lastMs = 0;

  /** A live (not caught-up) delivery of an event the bus took at publishedAtMs. */
  observe(publishedAtMs: number): void {
    // Wall clock on both ends (not the injected clock): instances' clocks are assumed in step (NTP).
    this.lastMs = Math.max(0, Date.now() - publishedAtMs);
    this.histogram.observe(this.lastMs / 1000);
  }
}
