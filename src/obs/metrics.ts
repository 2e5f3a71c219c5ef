// The process's metrics registry and its Prometheus text exposition (format 0.0.4).
//
// Hand-rolled rather than prom-client, on purpose: the RPC hot path records through
// RpcMetrics (plain array increments on a per-method record resolved once), which prom-client's
// label-hashing observe() cannot match at ~100k req/s; server.stats needs p50/p95/p99 from the
// same data, which prom-client histograms do not give; and gauges here are sampled at scrape
// time from their owners (pool, listeners, queues), so nothing is kept twice. The exposition
// format is small and covered by unit tests.
//
// Other parts of carrel add their figures with counter(), gauge() and histogram(); a family is
// named once (a second registration of a name throws, so two modules cannot silently collide).

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  /** Appended to the family name: '', '_bucket', '_sum', '_count'. */
  suffix?: string;
  labels?: Labels;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples(): Iterable<Sample>;
}

/** What a gauge's collect function returns: one value, or one value per label set. */
export type GaugeValue = number | ReadonlyArray<{ labels: Labels; value: number }>;

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  private readonly unlabelled = { labels: {} as Labels, value: 0 };

  constructor(private readonly labelNames: readonly string[]) {
    if (labelNames.length === 0) this.values.set('', this.unlabelled);
  }

  /** Adds n (default 1) to the unlabelled series. */
  inc(n = 1): void {
    this.unlabelled.value += n;
  }

  /** The series for these label values, in labelNames order; keep the handle on hot paths. */
  labels(...values: string[]): { inc(n?: number): void } {
    if (values.length !== this.labelNames.length) {
      throw new Error(`expected ${this.labelNames.length} label values, got ${values.length}`);
    }
    const key = values.join('\u0000');
    let series = this.values.get(key);
    if (!series) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      series = { labels, value: 0 };
      this.values.set(key, series);
    }
    const s = series;
    return { inc: (n = 1) => void (s.value += n) };
  }

  get value(): number {
    return this.unlabelled.value;
  }

  *samples(): Iterable<Sample> {
    for (const s of this.values.values()) yield { labels: s.labels, value: s.value };
  }
}

/** Default buckets in seconds, for latencies from 100 µs to 10 s. */
export const LATENCY_BUCKETS_SEC = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

export class Histogram {
  /** Non-cumulative counts; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly buckets: readonly number[] = LATENCY_BUCKETS_SEC) {
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) throw new Error('histogram buckets must increase');
    }
    this.counts = new Float64Array(buckets.length + 1);
  }

  /** Records `value` (n times: a batch that took the same time). */
  observe(value: number, n = 1): void {
    const b = this.buckets;
    let i = 0;
    // Linear from the bottom: most observations land in the first few buckets.
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]! += n;
    this.sum += value * n;
    this.count += n;
  }

  /** The q-quantile as the upper bound of its bucket (Infinity past the last). */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return i < this.buckets.length ? this.buckets[i]! : Infinity;
    }
    return Infinity;
  }

  *samples(labels: Labels = {}): Iterable<Sample> {
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += this.counts[i]!;
      yield { suffix: '_bucket', labels: { ...labels, le: formatNumber(this.buckets[i]!) }, value: cumulative };
    }
    yield { suffix: '_bucket', labels: { ...labels, le: '+Inf' }, value: this.count };
    yield { suffix: '_sum', labels, value: this.sum };
    yield { suffix: '_count', labels, value: this.count };
  }
}

export class MetricsRegistry {
  private readonly families = new Map<string, MetricFamily>();

  /** A counter owned by the caller: counter(...).inc() or .labels(...).inc(). */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    for (const l of labelNames) checkLabel(l);
    const c = new Counter(labelNames);
    this.add({ name, help, type: 'counter', samples: () => c.samples() });
    return c;
  }

  /**
   * A value sampled at scrape time from whoever owns it (a pool, a queue, a listener): cheap on
   * the hot path because nothing is recorded there. `type: 'counter'` for monotonic totals kept
   * elsewhere (e.g. a listener's accepted count).
   */
  gauge(name: string, help: string, collect: () => GaugeValue, type: 'gauge' | 'counter' = 'gauge'): void {
    this.add({
      name,
      help,
      type,
      samples: function* () {
        const v = collect();
        if (typeof v === 'number') yield { value: v };
        else for (const s of v) yield { labels: s.labels, value: s.value };
      },
    });
  }

  /** A histogram owned by the caller (observe in the family's unit, seconds for latencies). */
  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS_SEC): Histogram {
    const h = new Histogram(buckets);
    this.add({ name, help, type: 'histogram', samples: () => h.samples() });
    return h;
  }

  /** A family whose samples a module computes itself (RpcMetrics' per-method series). */
  add(family: MetricFamily): void {
    if (!NAME_RE.test(family.name)) throw new Error(`invalid metric name ${JSON.stringify(family.name)}`);
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.families.set(family.name, family);
  }

  has(name: string): boolean {
    return this.families.has(name);
  }

  /** Every family's current samples, for server.stats' `custom` section and for tests. */
  values(): Record<string, Array<{ labels: Labels; value: number; suffix?: string }>> {
    const out: Record<string, Array<{ labels: Labels; value: number; suffix?: string }>> = {};
    for (const f of this.families.values()) {
      out[f.name] = [...f.samples()].map((s) => ({ labels: s.labels ?? {}, value: s.value, ...(s.suffix ? { suffix: s.suffix } : {}) }));
    }
    return out;
  }

  /** The Prometheus text exposition of every family. A collector that throws skips only itself. */
  render(onError?: (name: string, err: unknown) => void): string {
    const parts: string[] = [];
    for (const f of this.families.values()) {
      let lines: string;
      try {
        lines = '';
        for (const s of f.samples()) lines += `${f.name}${s.suffix ?? ''}${formatLabels(s.labels)} ${formatNumber(s.value)}\n`;
      } catch (err) {
        onError?.(f.name, err);
        continue;
      }
      parts.push(`# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n${lines}`);
    }
    return parts.join('');
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function checkLabel(name: string): void {
  if (!LABEL_RE.test(name) || name.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(name)}`);
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  let out = '';
  for (const k in labels) {
    out += `${out ? ',' : ''}${k}="${escapeLabelValue(labels[k]!)}"`;
  }
  return out ? `{${out}}` : '';
}

export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
