// One measured run as the report keeps it, and the glue that samples the server while it runs.
import { LatencyHistogram, round3, type LatencySummary } from './histogram.js';
import type { LoadResult } from './rpcLoad.js';
import type { Target } from './target.js';

export interface RunRecord {
  scenario: string;
  /** What this run is in the table, e.g. "PING 16 conns × depth 32". */
  label: string;
  target: string;
  connections: number;
  depth: number;
  /** Open-loop rate asked for, per second; null for closed loop. */
  rate: number | null;
  windowS: number;
  /** Completed operations per second in the window. */
  throughput: number;
  unit: string;
  latency: LatencySummary;
  /** The latency histogram in HdrHistogram's compressed base64 form. */
  histogram: string;
  errors: Record<string, number>;
  connectFailures: number;
  neverAnswered: number;
  unanswered: number;
  serverRssMb: number | null;
  /** Share of one core the server used in the window (100 = one core). */
  serverCpuPct: number | null;
  clientCpuPct: number;
  extra: Record<string, unknown>;
}

export interface Sampling {
  stop(): { maxRssMb: number | null; cpuPct: number | null };
}

/** Samples the server's RSS every 250 ms (keeping the peak) and its CPU over the whole span. */
export function sampleServer(target: Target): Sampling {
  const cpu0 = target.cpuMs();
  const t0 = performance.now();
  let maxRss: number | null = null;
  const take = (): void => {
    void target.rssBytes().then((b) => {
      if (b !== null) maxRss = Math.max(maxRss ?? 0, b);
    });
  };
  take();
  const timer = setInterval(take, 250);
  return {
    stop: () => {
      clearInterval(timer);
      take();
      const cpu1 = target.cpuMs();
      const wall = performance.now() - t0;
      return {
        maxRssMb: maxRss === null ? null : round1(maxRss / 1048576),
        cpuPct: cpu0 === null || cpu1 === null || wall <= 0 ? null : round1(((cpu1 - cpu0) / wall) * 100),
      };
    },
  };
}

export function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

export function recordFromLoad(
  scenario: string,
  label: string,
  target: Target,
  r: LoadResult,
  server: { maxRssMb: number | null; cpuPct: number | null },
  extra: Record<string, unknown> = {},
): RunRecord {
  return {
    scenario,
    label,
    target: target.describe,
    connections: r.connections,
    depth: r.depth,
    rate: r.rate,
    windowS: round3(r.windowMs / 1000),
    throughput: Math.round(r.throughput),
    unit: 'req/s',
    latency: r.latency.summary(),
    histogram: r.latency.encode(),
    errors: r.errorsByCode,
    connectFailures: r.connectFailures,
    neverAnswered: r.neverAnswered,
    unanswered: r.unanswered,
    serverRssMb: server.maxRssMb,
    serverCpuPct: server.cpuPct,
    clientCpuPct: round1((r.clientCpuMs / r.windowMs) * 100),
    extra: {
      ...(r.byKind.size > 1
        ? {
            byKind: Object.fromEntries(
              [...r.byKind].map(([k, f]) => [k, { ...f.latency.summary(), count: f.count, errors: f.errors }]),
            ),
          }
        : {}),
      ...(r.closedByServer ? { closedByServer: r.closedByServer } : {}),
      ...(r.backlogged ? { backlogged: r.backlogged } : {}),
      ...extra,
    },
  };
}

/** A record for drivers that are not request/reply (sensors, fan-out, storms). */
export function customRecord(fields: Omit<RunRecord, 'histogram' | 'latency'> & { latencyHistogram: LatencyHistogram }): RunRecord {
  const { latencyHistogram, ...rest } = fields;
  return { ...rest, latency: latencyHistogram.summary(), histogram: latencyHistogram.encode() };
}
