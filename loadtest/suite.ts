// `carrel bench suite`: every figure of the performance issue in one run, each beside its
// baseline measured minutes apart, plus a connection sweep for the chart. BENCHMARKS.md is
// this suite's output.
import type { Bench } from './bench.js';
import { pgbenchBaseline, pgbenchVersion } from './pgbench.js';
import type { RunRecord } from './record.js';
import { BenchContext, book, mixed, ping, search, storm, type RunShape } from './scenarios.js';
import { connections, fanout, sensors, stalledPing } from './live.js';

export interface SuiteOptions {
  durationMs: number;
  warmupMs: number;
  /** Connection counts of the chart's sweep. */
  sweep: number[];
}

const SEARCH_BRANCH = 'Engineering Library';

export async function runSuite(bench: Bench, opts: SuiteOptions): Promise<void> {
  const { ctx } = bench;
  const shape = (connections: number, depth: number, durationMs = opts.durationMs): RunShape => ({ connections, depth, durationMs, warmupMs: opts.warmupMs });
  const echoCtx = new BenchContext(await bench.echoTarget());
  echoCtx.onProgress = ctx.onProgress;
  const ratioTo = (what: string, r: RunRecord, base: RunRecord, min: number): void =>
    bench.compare({
      what,
      value: r.throughput,
      unit: r.unit,
      baseline: `echo ${base.connections}×${base.depth}`,
      baselineValue: base.throughput,
      ratio: r.throughput / base.throughput,
      target: `≥ ${min}× echo`,
      met: r.throughput / base.throughput >= min,
    });

  // 1. PING and cached seats.list against the echo ceiling, 16 connections, closed loop and depth 32.
  for (const depth of [1, 32]) {
    const echo = bench.add(await ping(echoCtx, shape(16, depth)));
    const p = bench.add(await ping(ctx, shape(16, depth)));
    const s = bench.add(await search(ctx, shape(16, depth), { branch: SEARCH_BRANCH, windows: 'now' }));
    ratioTo(`PING 16 conns × depth ${depth}`, p, echo, 0.8);
    ratioTo(`seats.list (cached) 16 conns × depth ${depth}`, s, echo, 0.8);
  }

  // 2. A thousand connections at once, every one answered.
  const thousand = bench.add(await ping(ctx, shape(1000, 1)));
  bench.compare({
    what: 'PING 1,000 connections: p99 (every one answered)',
    value: thousand.latency.p99Ms,
    unit: 'ms',
    baseline: null,
    baselineValue: null,
    ratio: null,
    target: `< 20 ms, 0 unanswered (got ${thousand.neverAnswered + thousand.connectFailures})`,
    met: thousand.latency.p99Ms < 20 && thousand.neverAnswered === 0 && thousand.connectFailures === 0,
  });

  // 3. seats.list of a branch at 50 connections, and its freshness.
  const s50 = bench.add(await search(ctx, shape(50, 1), { branch: SEARCH_BRANCH, windows: 'now' }));
  const fresh = (s50.extra.freshness as { fresh: boolean } | undefined)?.fresh ?? false;
  bench.compare({
    what: `seats.list ${SEARCH_BRANCH}, 50 conns`,
    value: s50.throughput,
    unit: 'req/s',
    baseline: null,
    baselineValue: null,
    ratio: null,
    target: `≥ 18,000 req/s, p99 < 20 ms (p99 ${s50.latency.p99Ms} ms), fresh after a booking (${fresh ? 'yes' : 'no'})`,
    met: s50.throughput >= 18_000 && s50.latency.p99Ms < 20 && fresh,
  });
  bench.add(await search(ctx, shape(50, 1), { branch: SEARCH_BRANCH, windows: 'random' }));

  // 4. Bookings against pgbench running the same INSERT on the same PostgreSQL.
  const slots = await ctx.slots();
  await ctx.usersFor(500);
  let pgb: RunRecord | undefined;
  if (await pgbenchVersion()) {
    pgb = bench.add(await pgbenchBaseline(ctx.target, { clients: 50, durationS: Math.round(opts.durationMs / 1000), baseEpochS: Math.floor(slots.baseMs / 1000) + 10 * 86_400 }));
  }
  const b = bench.add(await book(ctx, shape(50, 1), { users: 500 }));
  bench.compare({
    what: 'reservations.create, 50 conns, distinct seats and slots',
    value: b.throughput,
    unit: 'bookings/s',
    baseline: pgb ? 'pgbench 50 clients' : null,
    baselineValue: pgb?.throughput ?? null,
    ratio: pgb ? b.throughput / pgb.throughput : null,
    target: `≥ 0.5× pgbench and ≥ 5,000/s, p99 < 50 ms (p99 ${b.latency.p99Ms} ms)`,
    met: (pgb ? b.throughput / pgb.throughput >= 0.5 : true) && b.throughput >= 5000 && b.latency.p99Ms < 50,
  });
  bench.add(await mixed(ctx, shape(50, 1), { users: 500 }));
  bench.add(await storm(ctx, { users: 100, rounds: 20, connections: 10 }));

  // 5. Live seats: sensor → subscriber latency, and stalled subscribers against PING.
  for (const [subs, rate] of [[1000, 100], [100, 1000]] as const) {
    const f = bench.add(await fanout(ctx, { branch: 'Main Library', subscribers: subs, stalled: 0, rate, durationMs: opts.durationMs, warmupMs: opts.warmupMs }));
    bench.compare({
      what: `sensor → subscriber, ${subs.toLocaleString('en')} subscribers at ${rate.toLocaleString('en')} readings/s: p99`,
      value: f.latency.p99Ms,
      unit: 'ms',
      baseline: null,
      baselineValue: null,
      ratio: null,
      target: `< 5 ms, no seq gap (errors: ${Object.keys(f.errors).join(', ') || 'none'})`,
      met: f.latency.p99Ms < 5 && Object.keys(f.errors).length === 0,
    });
  }
  bench.add(await fanout(ctx, { branch: 'Main Library', subscribers: 200, stalled: 50, rate: 500, durationMs: opts.durationMs, warmupMs: opts.warmupMs }));
  const st = bench.add(await stalledPing(ctx, { branch: 'Main Library', stalled: 50, rate: 100, ping: shape(16, 1, Math.max(3000, opts.durationMs / 2)), repeats: 3 }));
  const change = st.extra.p99Change as number;
  bench.compare({
    what: 'PING p99 with 50 stalled subscribers vs none',
    value: st.extra.p99WithMs as number,
    unit: 'ms',
    baseline: 'no stalled subscribers',
    baselineValue: st.extra.p99WithoutMs as number,
    ratio: (st.extra.p99WithMs as number) / (st.extra.p99WithoutMs as number),
    target: `change < 10% (${(change * 100).toFixed(1)}%, medians of 3)`,
    met: change < 0.1,
  });
  bench.add(await sensors(ctx, { branch: 'Bench Library', gateways: 10, rate: 20_000, batch: 20, durationMs: opts.durationMs, warmupMs: opts.warmupMs }));

  // 6. Memory with many connections open.
  const c = bench.add(await connections(ctx, { rpc: 1000, subscribers: 1000, branch: 'Main Library', holdMs: 2000 }));
  bench.compare({
    what: 'server RSS with 1,000 RPC connections and 1,000 subscribers open',
    value: c.serverRssMb ?? NaN,
    unit: 'MB',
    baseline: null,
    baselineValue: null,
    ratio: null,
    target: '< 300 MB',
    met: c.serverRssMb === null ? null : c.serverRssMb < 300,
  });

  // 7. The sweep for the chart: PING against carrel and the echo ceiling, by connections.
  const sweepMs = Math.max(2000, opts.durationMs / 2);
  const swept = (r: RunRecord): RunRecord => bench.add({ ...r, extra: { ...r.extra, sweep: true } });
  for (const n of opts.sweep) {
    swept(await ping(echoCtx, shape(n, 1, sweepMs)));
    swept(await ping(ctx, shape(n, 1, sweepMs)));
    swept(await search(ctx, shape(n, 1, sweepMs), { branch: SEARCH_BRANCH, windows: 'now' }));
  }
}
