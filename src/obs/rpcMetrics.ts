// Per-method RPC figures (docs/operations.md, "Metrics"): request counts by outcome, a latency
// histogram for Prometheus, and latency percentiles for server.stats and the SLA line, all from one
// record per method that the dispatcher's observe hook updates with a few array increments.
//
// Percentiles come from log-scale buckets, 8 per doubling (each ~9% wide) from 1 µs to ~2 min;
// a percentile is reported as its bucket's upper bound, so it errs high by at most ~9%, which
// is the safe side for an SLA. Only registered method names get their own series; anything
// else a peer sends is counted under "(other)", so a client cannot inflate the label space.
import type { ErrorCode } from '../errors.js';
import { Histogram, type MetricsRegistry, type Sample } from './metrics.js';

const SUB_BUCKETS = 8;
const FINE_BUCKETS = 27 * SUB_BUCKETS + 1; // up to 2^27 µs ≈ 134 s; beyond lands in the last
export const OTHER_METHOD = '(other)';
/** Outcomes that count against availability: the server failed, not the caller. */
export const SERVER_FAULT_CODES: ReadonlySet<string> = new Set(['INTERNAL', 'UNAVAILABLE', 'DEADLINE_EXCEEDED']);

interface MethodRecord {
  readonly name: string;
  count: number;
  /** Answers with a SERVER_FAULT_CODES code. */
  faults: number;
  sumMs: number;
  maxMs: number;
  readonly fine: Float64Array;
  readonly histogram: Histogram;
  ok: number;
  /** Error code → count. */
  readonly codes: Map<string, number>;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export interface MethodStats extends LatencySummary {
  errors: number;
  meanMs: number;
  maxMs: number;
  codes: Record<string, number>;
}

/** A copy of the counters at one moment, so a later moment can report just the window between. */
export interface WindowMark {
  atMs: number;
  methods: Map<string, { count: number; faults: number; fine: Float64Array }>;
}

export interface WindowReport {
  fromMs: number;
  toMs: number;
  requests: number;
  faults: number;
  methods: Record<string, LatencySummary & { faults: number }>;
}

export class RpcMetrics {
  private readonly byMethod = new Map<string, MethodRecord>();
  private readonly other: MethodRecord;
  readonly errorsByCode = new Map<string, number>();
  total = 0;

  /** `isMethod` says whether a name is registered (the registry may grow after start). */
  constructor(private readonly isMethod: (name: string) => boolean) {
    this.other = newRecord(OTHER_METHOD);
    this.byMethod.set(OTHER_METHOD, this.other);
  }

  /** The dispatcher's observe hook (DispatchObserver). Hot path: keep it to increments. */
  readonly observe = (method: string, code: ErrorCode | null, durationMs: number): void => {
    const rec = this.byMethod.get(method) ?? this.recordFor(method);
    rec.count++;
    rec.sumMs += durationMs;
    if (durationMs > rec.maxMs) rec.maxMs = durationMs;
    rec.fine[fineIndex(durationMs)]!++;
    rec.histogram.observe(durationMs / 1000);
    if (code === null) {
      rec.ok++;
    } else {
      rec.codes.set(code, (rec.codes.get(code) ?? 0) + 1);
      this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
      if (SERVER_FAULT_CODES.has(code)) rec.faults++;
    }
    this.total++;
  };

  /** A frame that could not be decoded (answered BAD_FRAME, never reaches the dispatcher). */
  recordFrameError(): void {
    this.errorsByCode.set('BAD_FRAME', (this.errorsByCode.get('BAD_FRAME') ?? 0) + 1);
  }

  private recordFor(method: string): MethodRecord {
    if (!this.isMethod(method)) return this.other;
    const rec = newRecord(method);
    this.byMethod.set(method, rec);
    return rec;
  }

  /** Per-method figures since start, for server.stats. */
  methods(): Record<string, MethodStats> {
    const out: Record<string, MethodStats> = {};
    for (const rec of [...this.byMethod.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      if (rec.count === 0) continue;
      out[rec.name] = {
        ...percentiles(rec.fine, rec.count),
        errors: rec.count - rec.ok,
        meanMs: round(rec.sumMs / rec.count),
        maxMs: round(rec.maxMs),
        codes: { ...(rec.ok > 0 ? { OK: rec.ok } : {}), ...Object.fromEntries(rec.codes) },
      };
    }
    return out;
  }

  errors(): Record<string, number> {
    return Object.fromEntries([...this.errorsByCode].sort(([a], [b]) => a.localeCompare(b)));
  }

  mark(nowMs: number): WindowMark {
    const methods = new Map<string, { count: number; faults: number; fine: Float64Array }>();
    for (const rec of this.byMethod.values()) {
      methods.set(rec.name, { count: rec.count, faults: rec.faults, fine: rec.fine.slice() });
    }
    return { atMs: nowMs, methods };
  }

  /** What happened between `since` and now, per method (only methods called in the window). */
  window(since: WindowMark, nowMs: number): WindowReport {
    const report: WindowReport = { fromMs: since.atMs, toMs: nowMs, requests: 0, faults: 0, methods: {} };
    for (const rec of this.byMethod.values()) {
      const before = since.methods.get(rec.name);
      const count = rec.count - (before?.count ?? 0);
      if (count <= 0) continue;
      const faults = rec.faults - (before?.faults ?? 0);
      const fine = before ? rec.fine.map((v, i) => v - before.fine[i]!) : rec.fine;
      report.methods[rec.name] = { ...percentiles(fine, count), faults };
      report.requests += count;
      report.faults += faults;
    }
    return report;
  }

  /** The Prometheus families: requests by method and outcome, latency per method, errors by code. */
  register(registry: MetricsRegistry): void {
    const records = (): MethodRecord[] => [...this.byMethod.values()].filter((r) => r.count > 0);
    registry.add({
      name: 'carrel_rpc_requests_total',
      help: 'RPC requests answered, by method and outcome code (OK for success).',
      type: 'counter',
      samples: function* (): Iterable<Sample> {
        for (const r of records()) {
          if (r.ok > 0) yield { labels: { method: r.name, code: 'OK' }, value: r.ok };
          for (const [code, n] of r.codes) yield { labels: { method: r.name, code }, value: n };
        }
      },
    });
    registry.add({
      name: 'carrel_rpc_request_duration_seconds',
      help: 'RPC handling time from decoded request to encoded reply, by method.',
      type: 'histogram',
      samples: function* (): Iterable<Sample> {
        for (const r of records()) yield* r.histogram.samples({ method: r.name });
      },
    });
    registry.add({
      name: 'carrel_rpc_errors_total',
      help: 'Error replies by wire code (BAD_FRAME included).',
      type: 'counter',
      samples: () => [...this.errorsByCode].map(([code, value]) => ({ labels: { code }, value })),
    });
  }
}

function newRecord(name: string): MethodRecord {
  return {
    name,
    count: 0,
    faults: 0,
    ok: 0,
    sumMs: 0,
    maxMs: 0,
    fine: new Float64Array(FINE_BUCKETS),
    histogram: new Histogram(),
    codes: new Map(),
  };
}

function fineIndex(ms: number): number {
  const us = ms * 1000;
  if (!(us > 1)) return 0;
  const i = Math.ceil(Math.log2(us) * SUB_BUCKETS);
  return i < FINE_BUCKETS ? i : FINE_BUCKETS - 1;
}

/** Upper bound of fine bucket i, in ms. */
function fineUpperMs(i: number): number {
  return 2 ** (i / SUB_BUCKETS) / 1000;
}

function percentiles(fine: ArrayLike<number>, count: number): LatencySummary {
  return { count, p50Ms: quantile(fine, count, 0.5), p95Ms: quantile(fine, count, 0.95), p99Ms: quantile(fine, count, 0.99) };
}

export function quantile(fine: ArrayLike<number>, count: number, q: number): number {
  if (count <= 0) return 0;
  const rank = Math.max(1, Math.ceil(q * count));
  let seen = 0;
  for (let i = 0; i < fine.length; i++) {
    seen += fine[i]!;
    if (seen >= rank) return round(fineUpperMs(i));
  }
  return round(fineUpperMs(fine.length - 1));
}

function round(ms: number): number {
  return ms >= 10 ? Math.round(ms * 10) / 10 : Math.round(ms * 1000) / 1000;
}
