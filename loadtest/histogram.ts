// Latency recording for the load generator: an HDR histogram (hdr-histogram-js) in microseconds,
// so p99.9 and max are exact to 3 significant digits whatever the spread, and histograms from
// several connections or runs merge without losing anything (a mean of percentiles would).
import hdr from 'hdr-histogram-js';

/** Highest latency recorded by default: one minute; anything above is clamped and counted. */
const HIGHEST_MS = 60_000;

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export class LatencyHistogram {
  private readonly h: ReturnType<typeof hdr.build>;
  private readonly highestUs: number;
  /** Values above the highest trackable one (recorded as that). */
  clamped = 0;

  /** highestMs: the largest value kept exactly (a run that waits minutes, the rush's, asks for more). */
  constructor(highestMs = HIGHEST_MS) {
    this.highestUs = Math.round(highestMs * 1000);
    this.h = hdr.build({
      bitBucketSize: 64,
      lowestDiscernibleValue: 1,
      highestTrackableValue: this.highestUs,
      numberOfSignificantValueDigits: 3,
      autoResize: false,
      useWebAssembly: false,
    });
  }

  /** Records one latency given in milliseconds (fractions kept to the microsecond). */
  recordMs(ms: number): void {
    let us = Math.round(ms * 1000);
    if (us < 1) us = 1;
    if (us > this.highestUs) {
      us = this.highestUs;
      this.clamped++;
    }
    this.h.recordValue(us);
  }

  get count(): number {
    return this.h.totalCount;
  }

  /** Adds every value of `other` to this one. */
  merge(other: LatencyHistogram): this {
    this.h.add(other.h);
    this.clamped += other.clamped;
    return this;
  }

  percentileMs(p: number): number {
    return this.h.totalCount === 0 ? 0 : this.h.getValueAtPercentile(p) / 1000;
  }

  summary(): LatencySummary {
    const empty = this.h.totalCount === 0;
    const at = (p: number): number => round3(this.percentileMs(p));
    return {
      count: this.h.totalCount,
      meanMs: empty ? 0 : round3(this.h.mean / 1000),
      p50Ms: at(50),
      p90Ms: at(90),
      p99Ms: at(99),
      p999Ms: at(99.9),
      maxMs: empty ? 0 : round3(this.h.maxValue / 1000),
    };
  }

  /** Compressed base64 form (HdrHistogram's own encoding), kept in the JSON results. */
  encode(): string {
    return hdr.encodeIntoCompressedBase64(this.h);
  }

  static decode(encoded: string): LatencyHistogram {
    const decoded = hdr.decodeFromCompressedBase64(encoded, 64, false);
    // As wide as the histogram that was encoded, whatever its highest value was.
    const out = new LatencyHistogram(Math.max(HIGHEST_MS, decoded.maxValue / 1000));
    out.h.add(decoded);
    return out;
  }
}

/** The median (of an even count, the mean of the middle two). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
