// The SLA line (docs/operations.md, "Logs"): every sla.reportEveryMs, one log line comparing the
// window just ended with the targets in config — availability (share of requests not answered
// INTERNAL, UNAVAILABLE or DEADLINE_EXCEEDED) and p95 latency per method. Info when every target is
// met, warn naming the misses otherwise, so an alert can key on level and `sla.met`.
import type { Logger } from './log.js';
import type { RpcMetrics, WindowMark } from './rpcMetrics.js';

export interface SlaTargets {
  availability: number;
  /** Per method, with `default` for the rest. */
  p95Ms: Readonly<Record<string, number>>;
}

export interface SlaReport {
  windowMs: number;
  requests: number;
  availability: number | null;
  availabilityTarget: number;
  met: boolean;
  methods: Record<string, { count: number; p95Ms: number; targetP95Ms: number; met: boolean }>;
  misses: string[];
}

export class SlaReporter {
  private mark: WindowMark;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: {
      metrics: RpcMetrics;
      targets: SlaTargets;
      everyMs: number;
      log: Logger;
      now?: () => number;
    },
  ) {
    this.mark = opts.metrics.mark(this.now());
  }

  start(): void {
    if (this.opts.everyMs <= 0 || this.timer) return;
    this.timer = setInterval(() => this.report(), this.opts.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Logs the window since the previous report and starts a new one. */
  report(): SlaReport {
    const now = this.now();
    const { metrics, targets, log } = this.opts;
    const w = metrics.window(this.mark, now);
    this.mark = metrics.mark(now);
    const raw = w.requests === 0 ? null : 1 - w.faults / w.requests;
    const misses: string[] = [];
    if (raw !== null && raw < targets.availability) misses.push('availability');
    const methods: SlaReport['methods'] = {};
    for (const [name, m] of Object.entries(w.methods)) {
      const target = targets.p95Ms[name] ?? targets.p95Ms.default ?? Infinity;
      const met = m.p95Ms <= target;
      if (!met) misses.push(`p95 ${name}`);
      methods[name] = { count: m.count, p95Ms: m.p95Ms, targetP95Ms: target, met };
    }
    const report: SlaReport = {
      windowMs: w.toMs - w.fromMs,
      requests: w.requests,
      availability: raw === null ? null : floor5(raw),
      availabilityTarget: targets.availability,
      met: misses.length === 0,
      methods,
      misses,
    };
    if (report.met) log.info({ sla: report }, 'sla');
    else log.warn({ sla: report }, `sla missed: ${misses.join(', ')}`);
    return report;
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }
}

/** Rounded down, so a reported figure never looks better than the one compared. */
function floor5(v: number): number {
  return Math.floor(v * 100_000) / 100_000;
}
