// `carrel bench history` (BENCHMARKS.md, "The occupancy history and the utilization report"): the
// two targets of the history, on a database of its own — the Bench Library (2,000 seats) with N
// days of simulated history (`carrel db seed --history`):
//
// 1. the `sensors` flood costs at most 10% more server CPU per reading with the history on than
//    off: carrels with history.enabled true and false are started in turn (on, off, off, on, …,
//    so a drift of the machine falls on both), each measured with the same flood, and the median
//    of the per-pair ratios is the figure;
// 2. the utilization report over 60 days of the branch answers in under 2 s: each kind (by day,
//    seat, area; by hour over 31 days) is asked several times of a carrel with the history on,
//    and the median and the slowest are reported.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { RpcClient } from '../clients/rpcClient.js';
import { configSchema } from '../src/config/schema.js';
import { migrate, seed } from '../src/db/migrate.js';
import { simulateHistory } from '../src/history/simulate.js';
import { silentLogger } from '../src/obs/log.js';
import { writerStaleAfterMs } from '../src/sensors/presenceHistory.js';
import { sensors } from './live.js';
import type { RunRecord } from './record.js';
import { BenchContext } from './scenarios.js';
import { BENCH_BRANCH, addBenchBranch, benchPostgres, spawnCarrel, type Target } from './target.js';
import { median } from './histogram.js';

export const HISTORY_DB = 'carrel_bench_history';

export interface HistoryBenchOptions {
  outDir: string;
  days: number;
  repeats: number;
  rate: number;
  gateways: number;
  batch: number;
  durationMs: number;
  warmupMs: number;
  /** Report calls per kind. */
  calls: number;
  onLine: (line: string) => void;
}

interface SensorRun {
  history: boolean;
  throughput: number;
  serverCpuPct: number | null;
  cpuUsPerReading: number | null;
  p99Ms: number;
}

interface ReportTiming {
  kind: string;
  days: number;
  medianMs: number;
  maxMs: number;
  buckets: number;
}

export async function benchHistory(o: HistoryBenchOptions): Promise<string> {
  mkdirSync(o.outDir, { recursive: true });
  const pgServer = await benchPostgres();
  const targets: Target[] = [];
  try {
    o.onLine(`bench history: a fresh ${HISTORY_DB} with ${o.days} days of ${BENCH_BRANCH} (2,000 seats) simulated`);
    const dbUrl = await freshHistoryDatabase(pgServer.adminUrl, o.days, o.onLine);
    const runs: SensorRun[] = [];
    const reports: ReportTiming[][] = [];
    const spawn = async (history: boolean): Promise<Target> => {
      const t = await spawnCarrel({ dbUrl, config: { history: { enabled: history } }, logFile: join(o.outDir, `server-history-${history ? 'on' : 'off'}.log`) });
      targets.push(t);
      return t;
    };
    for (let r = 0; r < o.repeats; r++) {
      // on, off, then off, on: each pair's order alternates.
      for (const history of r % 2 === 0 ? [true, false] : [false, true]) {
        const target = await spawn(history);
        try {
          const rec: RunRecord = await sensors(new BenchContext(target), { branch: BENCH_BRANCH, gateways: o.gateways, rate: o.rate, batch: o.batch, durationMs: o.durationMs, warmupMs: o.warmupMs });
          const us = rec.serverCpuPct !== null && rec.throughput > 0 ? Math.round(((rec.serverCpuPct / 100) * 1e6) / rec.throughput * 100) / 100 : null;
          runs.push({ history, throughput: rec.throughput, serverCpuPct: rec.serverCpuPct, cpuUsPerReading: us, p99Ms: rec.latency.p99Ms });
          o.onLine(`  sensors, history ${history ? 'on ' : 'off'}: ${rec.throughput.toLocaleString('en')} readings/s, server CPU ${rec.serverCpuPct}% = ${us} µs a reading, ack p99 ${rec.latency.p99Ms} ms`);
          if (history) reports.push(await timeReports(target, o));
        } finally {
          await target.stop();
          targets.splice(targets.indexOf(target), 1);
        }
      }
    }
    const md = summary(o, runs, reports);
    writeFileSync(join(o.outDir, 'history.md'), md);
    writeFileSync(join(o.outDir, 'history.json'), JSON.stringify({ options: { ...o, onLine: undefined }, runs, reports }, null, 2));
    return md;
  } finally {
    for (const t of targets) await t.stop();
    await pgServer.stop();
  }
}

/** A database of its own: migrated, seeded, the bench branch, `days` days of it simulated and summed up, analyzed. */
async function freshHistoryDatabase(adminUrl: string, days: number, onLine: (line: string) => void): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${HISTORY_DB} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${HISTORY_DB}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${HISTORY_DB}`;
  const url = u.toString();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    await migrate(pool, silentLogger);
    await seed(pool, silentLogger);
    await addBenchBranch(pool);
    const config = configSchema.parse({});
    const started = performance.now();
    const r = await simulateHistory(pool, {
      days,
      seed: 1,
      nowMs: Date.now(),
      branch: BENCH_BRANCH,
      slotMinutes: config.rules.slotMinutes,
      checkInGraceMinutes: config.rules.checkInGraceMinutes,
      awayHoldMs: config.presence.awayMinutes * 60_000,
      staleAfterMs: writerStaleAfterMs(config.sensors.flushEveryMs),
    });
    onLine(
      `  simulated in ${((performance.now() - started) / 1000).toFixed(1)} s: ${r.bookings.toLocaleString('en')} bookings, ${r.intervals.toLocaleString('en')} sensor intervals, ${r.summed} days summed up`,
    );
    await pool.query('VACUUM ANALYZE');
  } finally {
    await pool.end();
  }
  return url;
}

/** Each kind of report over the range, `calls` times, as the seeded admin. */
async function timeReports(target: Target, o: HistoryBenchOptions): Promise<ReportTiming[]> {
  const client = await RpcClient.connect(target.host, target.ports.rpc);
  try {
    await client.call('auth.login', { studentId: 'admin', password: 'admin-pass-2026' });
    const day = (back: number) => new Date(Date.now() - back * 86_400_000).toISOString().slice(0, 10);
    const kinds: Array<[string, number, string, string]> = [
      ['day', o.days, day(o.days), day(1)],
      ['seat', o.days, day(o.days), day(1)],
      ['area', o.days, day(o.days), day(1)],
      ['hour', 31, day(31), day(1)],
      // Reaching into today, which is computed from the intervals (the flood's among them).
      ['day', o.days, day(o.days - 1), day(0)],
    ];
    const out: ReportTiming[] = [];
    for (const [kind, days, from, to] of kinds) {
      const times: number[] = [];
      let buckets = 0;
      for (let i = 0; i < o.calls; i++) {
        const t0 = performance.now();
        const res = await client.call<{ buckets: unknown[] }>('admin.reports.utilization', { branch: BENCH_BRANCH, from, to, by: kind });
        times.push(performance.now() - t0);
        buckets = res.buckets.length;
      }
      const timing = { kind: to === day(0) ? `${kind}, to today` : kind, days, medianMs: Math.round(median(times)), maxMs: Math.round(Math.max(...times)), buckets };
      out.push(timing);
      o.onLine(`  report by ${timing.kind}, ${days} days: median ${timing.medianMs} ms, slowest ${timing.maxMs} ms (${buckets} buckets)`);
    }
    return out;
  } finally {
    client.close();
  }
}

function summary(o: HistoryBenchOptions, runs: SensorRun[], reports: ReportTiming[][]): string {
  const on = runs.filter((r) => r.history);
  const off = runs.filter((r) => !r.history);
  const ratios = on.map((r, i) => (r.cpuUsPerReading !== null && off[i]?.cpuUsPerReading ? r.cpuUsPerReading / off[i]!.cpuUsPerReading! : NaN)).filter(Number.isFinite);
  const ratio = ratios.length ? median(ratios) : NaN;
  const lines = [
    `## The occupancy history and the utilization report`,
    '',
    `sensors: ${o.rate.toLocaleString('en')} readings/s over ${o.gateways} gateways, ${o.batch} a frame, ${o.durationMs / 1000} s measured after ${o.warmupMs / 1000} s, ${o.repeats} pairs`,
    '',
    '| pair | history on: readings/s, server CPU, µs a reading | history off: readings/s, server CPU, µs a reading | ratio on/off |',
    '|---|---|---|---:|',
    ...on.map((r, i) => {
      const b = off[i];
      return `| ${i + 1} | ${r.throughput.toLocaleString('en')}, ${r.serverCpuPct}%, ${r.cpuUsPerReading} | ${b?.throughput.toLocaleString('en')}, ${b?.serverCpuPct}%, ${b?.cpuUsPerReading} | ${Number.isFinite(ratios[i]) ? ratios[i]!.toFixed(3) : '–'} |`;
    }),
    '',
    `Median ratio of server CPU per reading, history on / off: **${Number.isFinite(ratio) ? ratio.toFixed(3) : '–'}** (target ≤ 1.10: ${ratio <= 1.1 ? 'met' : 'not met'}); medians on ${median(on.map((r) => r.cpuUsPerReading ?? NaN))} µs, off ${median(off.map((r) => r.cpuUsPerReading ?? NaN))} µs.`,
    '',
    `report over ${o.days} days of ${BENCH_BRANCH} (hour: 31 days), ${o.calls} calls each, per server with the history on:`,
    '',
    '| report | median ms | slowest ms | buckets | target < 2,000 ms |',
    '|---|---:|---:|---:|:-:|',
    ...(reports[0] ?? []).map((_, k) => {
      const all = reports.map((r) => r[k]!);
      const med = Math.round(median(all.map((x) => x.medianMs)));
      const max = Math.max(...all.map((x) => x.maxMs));
      return `| by ${all[0]!.kind}, ${all[0]!.days} days | ${med} | ${max} | ${all[0]!.buckets} | ${max < 2000 ? 'yes' : med < 2000 ? 'median yes' : 'no'} |`;
    }),
    '',
  ];
  return lines.join('\n');
}
