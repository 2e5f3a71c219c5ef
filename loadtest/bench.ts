// A bench invocation: start (or reach) the target, run scenarios, compare with baselines,
// write the report. The CLI (cli.ts) and the suite (suite.ts) are thin layers over this.
import os from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/paths.js';
import { Progress } from './progress.js';
import type { RunRecord } from './record.js';
import { writeReport, type Comparison, type Report } from './report.js';
import { BenchContext } from './scenarios.js';
import { benchPostgres, externalTarget, freshBenchDatabase, spawnCarrel, spawnEcho, type BenchPostgres, type Ports, type Target } from './target.js';

export interface TargetSpec {
  /** "host:port" of a running carrel's RPC port; unset: start one. */
  server?: string;
  sensorPort?: number;
  pubsubPort?: number;
  httpPort?: number;
  /** Config keys for the carrel this starts (merged over the bench overrides). */
  config?: Record<string, unknown>;
  /** Directory for a CPU profile of the carrel this starts. */
  cpuProfileDir?: string;
}

export class Bench {
  readonly runs: RunRecord[] = [];
  readonly comparisons: Comparison[] = [];
  readonly progress = new Progress();
  readonly startedAt = new Date();
  private pg: BenchPostgres | undefined;
  private echo: Target | undefined;
  private echoCanned: Target | undefined;
  ctx!: BenchContext;
  target!: Target;

  constructor(readonly outDir: string) {}

  static defaultOutDir(): string {
    return join(projectRoot, 'loadtest', 'results', new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19));
  }

  async open(spec: TargetSpec): Promise<void> {
    if (spec.server) {
      const i = spec.server.lastIndexOf(':');
      const host = spec.server.slice(0, i) || '127.0.0.1';
      const rpc = Number(spec.server.slice(i + 1));
      const ports: Ports = { rpc, sensor: spec.sensorPort ?? rpc + 1, pubsub: spec.pubsubPort ?? rpc + 2, http: spec.httpPort ?? 9090 };
      this.target = externalTarget(host, ports);
    } else {
      this.pg = await benchPostgres();
      process.stderr.write(`bench: fresh database ${this.pg.embedded ? 'in an embedded PostgreSQL' : 'on DATABASE_URL'}; starting carrel\n`);
      const dbUrl = await freshBenchDatabase(this.pg.adminUrl);
      this.target = await spawnCarrel({ dbUrl, config: spec.config, logFile: join(this.outDir, 'server.log'), cpuProfileDir: spec.cpuProfileDir });
    }
    this.ctx = new BenchContext(this.target);
    this.ctx.onProgress = (label, fraction, detail) => this.progress.update(label, fraction, detail);
  }

  /** The echo baseline, started on first use and kept for the invocation; with a canned result, a second one. */
  async echoTarget(cannedResult?: string): Promise<Target> {
    if (cannedResult !== undefined) {
      await this.echoCanned?.stop();
      this.echoCanned = await spawnEcho(cannedResult);
      return this.echoCanned;
    }
    this.echo ??= await spawnEcho();
    return this.echo;
  }

  /** Keeps a finished run and prints its one-line summary. */
  add(r: RunRecord): RunRecord {
    // Server CPU per operation holds up on a busy machine where throughput does not.
    if (r.serverCpuPct !== null && r.throughput > 0 && r.extra.serverCpuUsPerOp === undefined) {
      r.extra.serverCpuUsPerOp = Math.round((r.serverCpuPct / 100) * 1e6 / r.throughput);
    }
    this.runs.push(r);
    const errs = Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(', ');
    this.progress.done(
      `${r.label}: ${r.throughput.toLocaleString('en')} ${r.unit}, p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms, max ${r.latency.maxMs} ms` +
        `${errs ? `, errors ${errs}` : ''}${r.neverAnswered ? `, ${r.neverAnswered} never answered` : ''}` +
        `${r.serverRssMb !== null ? `, server RSS ${r.serverRssMb} MB` : ''}${r.serverCpuPct !== null ? `, server CPU ${r.serverCpuPct}% (${String(r.extra.serverCpuUsPerOp)} µs/op)` : ''}`,
    );
    return r;
  }

  compare(c: Comparison): void {
    this.comparisons.push(c);
  }

  report(): Report {
    const cpus = os.cpus();
    return {
      startedAt: this.startedAt.toISOString(),
      machine: { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', memGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}` },
      runs: this.runs,
      comparisons: this.comparisons,
    };
  }

  async close(): Promise<{ json: string; csv: string; md: string; svg: string | null }> {
    await this.echo?.stop();
    await this.echoCanned?.stop();
    await this.target?.stop();
    await this.pg?.stop();
    return writeReport(this.outDir, this.report());
  }
}
