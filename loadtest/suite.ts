// `carrel bench suite`: every figure of the performance issue in one run, each beside its
// baseline measured minutes apart, plus a connection sweep for the chart and the opening rush.
// BENCHMARKS.md is this suite's output.
import type { Bench } from './bench.js';
import { median } from './histogram.js';
import { pgbenchBaseline, pgbenchVersion } from './pgbench.js';
import type { RunRecord } from './record.js';
import { RpcClient } from '../clients/rpcClient.js';
import { BenchContext, book, mixed, ping, search, storm, type RunShape } from './scenarios.js';
import { connections, fanout, sensors, stalledPing } from './live.js';
import { RUSH_DEFAULTS, rush, rushComparisons } from './rush.js';

export interface SuiteOptions {
  durationMs: number;
  warmupMs: number;
  /** Connection counts of the chart's sweep. */
  sweep: number[];
  /**
   * Baseline/carrel pairs per ratio, run alternately (baseline, carrel, baseline, carrel, …):
   * the machine's speed drifts by tens of percent within minutes, so one pair can mislead.
   */
  repeats: number;
}

/** The pairs' medians and the median of the per-pair ratios (not the ratio of medians). */
export function pairs(runs: Array<[RunRecord, RunRecord]>): { value: number; base: number; ratio: number; ratios: number[] } {
  const ratios = runs.map(([r, b]) => Math.round((r.throughput / b.throughput) * 1000) / 1000);
  return { value: median(runs.map(([r]) => r.throughput)), base: median(runs.map(([, b]) => b.throughput)), ratio: median(ratios), ratios };
}

const SEARCH_BRANCH = 'Engineering Library';

/** The listing carrel answers for the branch now, as JSON text (the same-size echo's reply). */
async function listingJson(ctx: BenchContext, branch: string): Promise<string> {
  const c = await RpcClient.connect(ctx.host, ctx.rpcPort);
  try {
    return JSON.stringify(await c.call('seats.list', { branch }));
  } finally {
    c.close();
  }
}

export async function runSuite(bench: Bench, opts: SuiteOptions): Promise<void> {
  const { ctx } = bench;
  const shape = (connections: number, depth: number, durationMs = opts.durationMs): RunShape => ({ connections, depth, durationMs, warmupMs: opts.warmupMs });
  const echoCtx = new BenchContext(await bench.echoTarget());
  echoCtx.onProgress = ctx.onProgress;
  const ratioTo = (what: string, runs: Array<[RunRecord, RunRecord]>, baseline: string, min: number): void => {
    const p = pairs(runs);
    bench.compare({
      what,
      value: p.value,
      unit: runs[0]![0].unit,
      baseline,
      baselineValue: p.base,
      ratio: p.ratio,
      target: `≥ ${min}× echo (pair ratios ${p.ratios.join(', ')})`,
      met: p.ratio >= min,
    });
  };

  // 0. Warm-up, not recorded: a freshly started server's first seconds are JIT compilation,
  // and a running library's server is warm.
  const warm = (connections: number, depth: number): RunShape => ({ connections, depth, durationMs: 4000, warmupMs: 0 });
  await ping(ctx, warm(16, 8));
  await search(ctx, warm(16, 8), { branch: SEARCH_BRANCH, windows: 'now' });
  await ping(echoCtx, warm(16, 8));
  await book(ctx, { connections: 50, depth: 1, durationMs: 3000, warmupMs: 0 }, { users: 500 });

  // The same-size baseline for seats.list: the echo server answering with carrel's own listing.
  const listing = await listingJson(ctx, SEARCH_BRANCH);
  const echoListCtx = new BenchContext(await bench.echoTarget(listing));
  echoListCtx.onProgress = ctx.onProgress;
  await search(echoListCtx, warm(16, 8), { branch: SEARCH_BRANCH, windows: 'now' });

  // 1. PING and cached seats.list against the echo ceiling, 16 connections, closed loop and depth
  // 32, each pair run `repeats` times alternately.
  const listingKb = Math.round((Buffer.byteLength(listing) / 1024) * 10) / 10;
  for (const depth of [1, 32]) {
    const pingPairs: Array<[RunRecord, RunRecord]> = [];
    const listPairs: Array<[RunRecord, RunRecord]> = [];
    const listVsPing: Array<[RunRecord, RunRecord]> = [];
    for (let i = 0; i < opts.repeats; i++) {
      const echo = bench.add(await ping(echoCtx, shape(16, depth)));
      const p = bench.add(await ping(ctx, shape(16, depth)));
      const echoList = bench.add(await search(echoListCtx, shape(16, depth), { branch: SEARCH_BRANCH, windows: 'now' }));
      const s = bench.add(await search(ctx, shape(16, depth), { branch: SEARCH_BRANCH, windows: 'now' }));
      pingPairs.push([p, echo]);
      listPairs.push([s, echoList]);
      listVsPing.push([s, echo]);
    }
    ratioTo(`PING 16 conns × depth ${depth}`, pingPairs, `echo 16×${depth}`, 0.8);
    ratioTo(`seats.list (cached) 16 conns × depth ${depth}, against PING echo`, listVsPing, `echo 16×${depth}`, 0.8);
    ratioTo(`seats.list (cached) 16 conns × depth ${depth}, against an echo of the same ${listingKb} KB reply`, listPairs, `echo (same reply) 16×${depth}`, 0.8);
  }

  // 2. A thousand connections at once, every one answered: closed loop (saturation: each
  // connection waits for the 999 others, so latency is 1,000 / throughput by Little's law), and
  // open loop at 20,000 PING/s in total (20 a second on each connection), which is what p99 means.
  const thousandClosed = bench.add(await ping(ctx, shape(1000, 1)));
  const thousand = bench.add(await ping(ctx, { connections: 1000, depth: 8, durationMs: opts.durationMs, warmupMs: opts.warmupMs, rate: 20_000 }));
  const never = thousand.neverAnswered + thousand.connectFailures + thousandClosed.neverAnswered + thousandClosed.connectFailures;
  bench.compare({
    what: 'PING 1,000 connections, open loop 20,000/s: p99 (every one answered)',
    value: thousand.latency.p99Ms,
    unit: 'ms',
    baseline: null,
    baselineValue: null,
    ratio: null,
    target: `< 20 ms, 0 unanswered (got ${never}; closed loop p99 ${thousandClosed.latency.p99Ms} ms at ${thousandClosed.throughput.toLocaleString('en')}/s)`,
    met: thousand.latency.p99Ms < 20 && never === 0,
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
  const bookPairs: Array<[RunRecord, RunRecord]> = [];
  const books: RunRecord[] = [];
  const havePgbench = (await pgbenchVersion()) !== null;
  for (let i = 0; i < opts.repeats; i++) {
    const pgb = havePgbench
      ? bench.add(await pgbenchBaseline(ctx.target, { clients: 50, durationS: Math.round(opts.durationMs / 1000), baseEpochS: Math.floor(slots.baseMs / 1000) + 10 * 86_400 }))
      : undefined;
    const b = bench.add(await book(ctx, shape(50, 1), { users: 500 }));
    books.push(b);
    if (pgb) bookPairs.push([b, pgb]);
  }
  const bookRate = median(books.map((b) => b.throughput));
  const bookP99 = median(books.map((b) => b.latency.p99Ms));
  const pb = bookPairs.length ? pairs(bookPairs) : undefined;
  bench.compare({
    what: 'reservations.create, 50 conns, distinct seats and slots',
    value: bookRate,
    unit: 'bookings/s',
    baseline: pb ? 'pgbench 50 clients' : null,
    baselineValue: pb?.base ?? null,
    ratio: pb?.ratio ?? null,
    target: `≥ 0.5× pgbench and ≥ 5,000/s, p99 < 50 ms (p99 ${bookP99} ms${pb ? `; pair ratios ${pb.ratios.join(', ')}` : ''})`,
    met: (pb ? pb.ratio >= 0.5 : true) && bookRate >= 5000 && bookP99 < 50,
  });
  bench.add(await mixed(ctx, shape(50, 1), { users: 500 }));
  bench.add(await storm(ctx, { users: 100, rounds: 20, connections: 10 }));

  // 5. Live seats: sensor → subscriber latency, and stalled subscribers against PING.
  // Beside each, the bare fan-out of the echo process (the same event written to each socket, no
  // model, no queues), under the same load from the same client: the floor set by loopback writes.
  for (const [subs, rate] of [[1000, 100], [100, 1000]] as const) {
    const run = { branch: 'Main Library', subscribers: subs, stalled: 0, rate, durationMs: opts.durationMs, warmupMs: opts.warmupMs };
    const f = bench.add(await fanout(ctx, run));
    const bare = bench.add(await fanout(echoCtx, run));
    const server = f.extra.serverDelivery as { p99Ms: number; count: number } | null;
    bench.compare({
      what: `sensor → subscriber, ${subs.toLocaleString('en')} subscribers at ${rate.toLocaleString('en')} readings/s: p99 end to end (reading written → event read)`,
      value: f.latency.p99Ms,
      unit: 'ms',
      baseline: 'bare fan-out',
      baselineValue: bare.latency.p99Ms,
      ratio: f.latency.p99Ms / bare.latency.p99Ms,
      target: `< 5 ms, no seq gap (errors: ${Object.keys(f.errors).join(', ') || 'none'}); server's own arrival → write p99 ${server ? `${server.p99Ms} ms` : 'unknown'}`,
      met: f.latency.p99Ms < 5 && Object.keys(f.errors).length === 0,
    });
  }
  bench.add(await fanout(ctx, { branch: 'Main Library', subscribers: 200, stalled: 50, rate: 500, durationMs: opts.durationMs, warmupMs: opts.warmupMs }));
  const st = bench.add(await stalledPing(ctx, { branch: 'Main Library', stalled: 50, rate: 100, ping: shape(16, 1, Math.max(3000, opts.durationMs / 2)), repeats: 3 }));
  const withMs = st.extra.p99WithMs as number;
  const against = [
    ['vs none', 'no subscribers', st.extra.p99WithoutMs as number, st.extra.p99Change as number, 'change < 10% ({change}%, medians of 3)'],
    ['vs 50 that keep up', '50 subscribers reading', st.extra.p99WithFastMs as number, st.extra.p99ChangeVsFast as number, 'a stalled one costs no more than a fast one ({change}%)'],
  ] as const;
  for (const [vs, baseline, baseMs, change, target] of against) {
    bench.compare({
      what: `PING p99 with 50 stalled subscribers ${vs}`,
      value: withMs,
      unit: 'ms',
      baseline,
      baselineValue: baseMs,
      ratio: withMs / baseMs,
      target: target.replace('{change}', (change * 100).toFixed(1)),
      met: change < 0.1,
    });
  }
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

  // 8. The opening rush, last: its 6,000 connections would weigh on the memory figure above. The
  // seat-id race clients had to run, then best-available booking, each on a window of its own.
  for (const mode of ['seat', 'best'] as const) {
    const r = bench.add(await rush(ctx, { mode, ...RUSH_DEFAULTS }));
    for (const c of rushComparisons(r)) bench.compare(c);
  }
}
