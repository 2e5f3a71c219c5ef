// `carrel bench …` (also `npm run loadtest -- …`): the load generator's command line.
//
//   carrel bench ping -c 1,16,64 -d 1,32 --baseline      sweep, with the echo ceiling beside it
//   carrel bench book -c 50 --baseline                   bookings beside pgbench
//   carrel bench suite                                   every target figure; writes the report
//   carrel bench abuse --server 127.0.0.1:9000           a well-behaved client beside each flood
//   carrel bench signage                                 the entrance display's time per event, in chromium
//   carrel bench rush --mode seat,best                   the opening rush, seat ids then best-available
//   carrel bench fanout --transport tcp,ws,mixed --repeats 3   fan-out over /ws/live beside the TCP port
//
// Without --server it starts carrel itself over a fresh benchmark database (DATABASE_URL's
// PostgreSQL, else an embedded one), so every figure comes from the same, known set-up.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { Bench, type TargetSpec } from './bench.js';
import { pgbenchBaseline, pgbenchVersion } from './pgbench.js';
import type { RunRecord } from './record.js';
import type { Comparison } from './report.js';
import { book, mixed, ping, search, storm, type RunShape } from './scenarios.js';
import { connections, fanout, sensors, stalledPing, type FanoutTransport } from './live.js';
import { median } from './histogram.js';
import { signage } from './signage.js';
import { BENCH_BRANCH } from './target.js';
import { runSuite } from './suite.js';
import { benchHistory } from './history.js';
import { configSchema } from '../src/config/schema.js';
import { ABUSE_DEFAULTS, FLOOD_NAMES, abuse, abuseComparisons, abuseMarkdown, abuseRecord, medianFloods, type FloodName } from './abuse.js';
import { BenchContext } from './scenarios.js';
import { RUSH_DEFAULTS, RUSH_MODES, rush, rushComparisons, rushLeadMs, rushOpening, rushServerConfig, type RushMode } from './rush.js';

interface CommonOpts {
  server?: string;
  sensorPort?: number;
  pubsubPort?: number;
  httpPort?: number;
  duration: number;
  warmup: number;
  out?: string;
  poolSize?: number;
  profile?: boolean;
}

interface LoadOpts extends CommonOpts {
  connections: number[];
  depth: number[];
  rate?: number;
  baseline?: boolean;
}

function intList(name: string): (v: string) => number[] {
  return (v) => {
    const xs = v.split(',').map((x) => Number(x.trim()));
    if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x <= 0)) {
      throw Object.assign(new Error(`${name} must be positive integers separated by commas, not ${v}`), { exitCode: 2 });
    }
    return xs;
  };
}

function transportList(v: string): FanoutTransport[] {
  const xs = [...new Set(v.split(',').map((x) => x.trim()))];
  if (xs.length === 0 || xs.some((x) => x !== 'tcp' && x !== 'ws' && x !== 'mixed')) throw Object.assign(new Error(`--transport takes tcp, ws, mixed or a list of them; not ${v}`), { exitCode: 2 });
  return xs as FanoutTransport[];
}

/**
 * Fan-out over /ws/live against the subscriber port (docs/protocol.md, "WebSocket transports"):
 * p99s paired — runs one after the other, or the two halves of one mixed run — the median of
 * the pair ratios judged.
 */
function wsAgainstTcp(run: { subscribers: number; rate: number; stalled: number }, how: string, tcp: number[], ws: number[]): Comparison {
  const ratios = tcp.map((t, i) => Math.round((ws[i]! / t) * 100) / 100);
  const ratio = median(ratios);
  return {
    what: `fan-out over /ws/live vs the subscriber port, ${how}, ${run.subscribers.toLocaleString('en')} subscribers at ${run.rate.toLocaleString('en')} readings/s${run.stalled ? ` (${run.stalled} stalled)` : ''}: p99 end to end`,
    value: median(ws),
    unit: 'ms',
    baseline: 'TCP subscriber port',
    baselineValue: median(tcp),
    ratio,
    target: `≤ 1.2× TCP (pair ratios ${ratios.join(', ')}; p99s ws ${ws.join(', ')} / tcp ${tcp.join(', ')} ms)`,
    met: ratio <= 1.2,
  };
}

function positive(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw Object.assign(new Error(`${name} must be a positive number, not ${v}`), { exitCode: 2 });
    return n;
  };
}

function wholeNumber(name: string, min: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw Object.assign(new Error(`${name} must be a whole number of at least ${min}, not ${v}`), { exitCode: 2 });
    return n;
  };
}

function modeList(v: string): RushMode[] {
  const xs = v.split(',').map((x) => x.trim());
  const bad = xs.filter((x) => !(RUSH_MODES as readonly string[]).includes(x));
  if (xs.length === 0 || bad.length) throw Object.assign(new Error(`--mode takes ${RUSH_MODES.join(', ')}; not ${bad.join(', ') || v}`), { exitCode: 2 });
  return xs as RushMode[];
}

function common(cmd: Command): Command {
  return cmd
    .option('--server <host:port>', 'a running carrel RPC port to load (default: start one over a fresh bench database)')
    .option('--sensor-port <n>', 'with --server: its sensor port (default rpc+1)', positive('--sensor-port'))
    .option('--pubsub-port <n>', 'with --server: its subscriber port (default rpc+2)', positive('--pubsub-port'))
    .option('--http-port <n>', 'with --server: its metrics port, for RSS and drop counts (default 9090)', positive('--http-port'))
    .option('--pool-size <n>', 'db.poolSize of the carrel this starts (default: the shipped config)', positive('--pool-size'))
    .option('--duration <s>', 'measured seconds per run', positive('--duration'), 10)
    .option('--warmup <s>', 'seconds before measuring starts', (v) => Number(v), 2)
    .option('--out <dir>', 'where results go (default loadtest/results/<time>)')
    .option('--profile', 'write a CPU profile of the carrel it starts (node --cpu-prof) into the results directory');
}

function loadOptions(cmd: Command, defaults: { connections: string; depth: string }): Command {
  return common(cmd)
    .option('-c, --connections <list>', 'connection counts, e.g. 1,16,64 (a sweep when more than one)', intList('--connections'), intList('--connections')(defaults.connections))
    .option('-d, --depth <list>', 'requests kept in flight per connection (closed loop)', intList('--depth'), intList('--depth')(defaults.depth))
    .option('--rate <n>', 'open loop at this many requests per second in total (latency from intended send times)', positive('--rate'));
}

function targetSpec(o: CommonOpts, outDir: string, config: Record<string, unknown> = {}): TargetSpec {
  return {
    cpuProfileDir: o.profile ? outDir : undefined,
    server: o.server,
    sensorPort: o.sensorPort,
    pubsubPort: o.pubsubPort,
    httpPort: o.httpPort,
    config: o.poolSize ? { ...config, db: { poolSize: o.poolSize } } : config,
  };
}

/**
 * What `bench abuse` gives the carrel it starts: the shipped rate limits and password hashing,
 * which the other scenarios' overrides relax, because the limits are what it measures.
 */
function shippedPolicies(): Record<string, unknown> {
  const shipped = configSchema.parse({});
  return { rateLimit: { rules: shipped.rateLimit.rules }, auth: shipped.auth };
}

/** Opens a bench, runs `body`, writes the report and prints where it is. */
async function withBench(o: CommonOpts, body: (bench: Bench) => Promise<void>, serverConfig?: Record<string, unknown>): Promise<void> {
  const bench = new Bench(o.out ?? Bench.defaultOutDir());
  mkdirSync(bench.outDir, { recursive: true });
  let failure: unknown;
  try {
    await bench.open(targetSpec(o, bench.outDir, serverConfig));
    await body(bench);
  } catch (err) {
    failure = err;
  }
  const files = await bench.close();
  process.stdout.write(`\n${(await import('./report.js')).toMarkdown(bench.report())}\nresults: ${files.json}\n         ${files.csv}\n         ${files.md}${files.svg ? `\n         ${files.svg}` : ''}\n`);
  if (failure) throw failure;
}

function shapes(o: LoadOpts): RunShape[] {
  return o.connections.flatMap((c) => o.depth.map((d) => ({ connections: c, depth: d, durationMs: o.duration * 1000, warmupMs: o.warmup * 1000, rate: o.rate })));
}

/** Runs `run` for every shape; with --baseline, PING against the echo server for the same shape. */
async function sweepWithEcho(bench: Bench, o: LoadOpts, run: (shape: RunShape) => Promise<RunRecord>): Promise<void> {
  const echoCtx = o.baseline ? new BenchContext(await bench.echoTarget()) : undefined;
  if (echoCtx) echoCtx.onProgress = bench.ctx.onProgress;
  for (const shape of shapes(o)) {
    const r = bench.add(await run(shape));
    if (echoCtx) {
      const e = bench.add(await ping(echoCtx, shape));
      bench.compare({ what: r.label, value: r.throughput, unit: r.unit, baseline: `echo ${shape.connections}×${shape.depth}`, baselineValue: e.throughput, ratio: r.throughput / e.throughput, target: '≥ 0.8× echo', met: r.throughput / e.throughput >= 0.8 });
    }
  }
}

interface AbuseCliOpts {
  floods: FloodName[];
  reads: { connections: number; depth: number };
  branch?: string;
  branches: { connections: number; depth: number };
  register: { connections: number; depth: number };
  health: number;
  healthEvery: number;
  minLogins: number;
  repeats: number;
}

function floodList(v: string): FloodName[] {
  const xs = v.split(',').map((x) => x.trim());
  const bad = xs.filter((x) => !(FLOOD_NAMES as readonly string[]).includes(x));
  if (xs.length === 0 || bad.length) throw Object.assign(new Error(`--floods takes ${FLOOD_NAMES.join(', ')}; not ${bad.join(', ') || v}`), { exitCode: 2 });
  return xs as FloodName[];
}

/** "--reads 32x100" (or 32×100): connections × depth. */
function shapeOption(flag: string, description: string, byDefault: { connections: number; depth: number }): Option {
  return new Option(`${flag} <connsXdepth>`, description)
    .argParser((v: string) => {
      const m = /^(\d+)\s*[x×]\s*(\d+)$/.exec(v.trim());
      const [c, d] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
      if (!(c > 0 && d > 0)) throw Object.assign(new Error(`${flag} takes connections×depth, e.g. 32x100; not ${v}`), { exitCode: 2 });
      return { connections: c, depth: d };
    })
    .default(byDefault, `${byDefault.connections}x${byDefault.depth}`);
}

export function registerBenchCommands(program: Command): void {
  const bench = program
    .command('bench')
    .description('load generator: measure a carrel (started here over a fresh bench database, or --server) scenario by scenario');

  loadOptions(bench.command('ping').description('PING: the framing, dispatch and socket path alone'), { connections: '16', depth: '1' })
    .option('--baseline', 'also measure the echo server (the ceiling) with the same shape')
    .action(async (o: LoadOpts) => withBench(o, (b) => sweepWithEcho(b, o, (s) => ping(b.ctx, s))));

  loadOptions(bench.command('search').description('seats.list of one branch, for now (cached) or random windows'), { connections: '50', depth: '1' })
    .option('--branch <name>', 'branch to list', 'Engineering Library')
    .option('--windows <kind>', '"now" (the default window) or "random" (windows in the next week)', 'now')
    .option('--baseline', 'also measure the echo server with the same shape')
    .action(async (o: LoadOpts & { branch: string; windows: 'now' | 'random' }) => {
      if (o.windows !== 'now' && o.windows !== 'random') throw Object.assign(new Error('--windows must be now or random'), { exitCode: 2 });
      await withBench(o, (b) => sweepWithEcho(b, o, (s) => search(b.ctx, s, { branch: o.branch, windows: o.windows })));
    });

  loadOptions(bench.command('book').description('reservations.create by registered users on distinct seats and slots'), { connections: '50', depth: '1' })
    .option('--users <n>', 'users to book as (registered before measuring)', positive('--users'), 500)
    .option('--baseline', 'also run pgbench with the same INSERT, as many clients as connections')
    .action(async (o: LoadOpts & { users: number }) =>
      withBench(o, async (b) => {
        for (const shape of shapes(o)) {
          let pgb: RunRecord | undefined;
          if (o.baseline) {
            if (!(await pgbenchVersion())) throw new Error('--baseline needs pgbench on PATH (Debian: postgresql-client)');
            const slots = await b.ctx.slots();
            pgb = b.add(await pgbenchBaseline(b.target, { clients: shape.connections, durationS: o.duration, baseEpochS: Math.floor(slots.baseMs / 1000) + 10 * 86_400 }));
          }
          const r = b.add(await book(b.ctx, shape, { users: o.users }));
          if (pgb) b.compare({ what: r.label, value: r.throughput, unit: 'bookings/s', baseline: `pgbench ${shape.connections} clients`, baselineValue: pgb.throughput, ratio: r.throughput / pgb.throughput, target: '≥ 0.7× pgbench, p99 < 50 ms', met: r.throughput / pgb.throughput >= 0.7 && r.latency.p99Ms < 50 });
        }
      }),
    );

  loadOptions(bench.command('mixed').description('search / availability / mine / book / cancel in a library-like ratio'), { connections: '50', depth: '1' })
    .option('--users <n>', 'users to act as', positive('--users'), 500)
    .action(async (o: LoadOpts & { users: number }) => withBench(o, async (b) => {
      for (const shape of shapes(o)) b.add(await mixed(b.ctx, shape, { users: o.users }));
    }));

  common(bench.command('storm').description('N users book one seat and slot at the same instant, round after round'))
    .option('--users <n>', 'users racing each round', positive('--users'), 100)
    .option('--rounds <n>', 'rounds (a new slot each)', positive('--rounds'), 20)
    .option('-c, --connections <n>', 'connections the users share', positive('--connections'), 10)
    .action(async (o: CommonOpts & { users: number; rounds: number; connections: number }) =>
      withBench(o, async (b) => void b.add(await storm(b.ctx, o))),
    );

  common(bench.command('rush').description('the opening rush: U users and B scripts book the same window of a 2,000-seat branch at one instant'))
    .addOption(new Option('--mode <list>', 'best (any free seat, no seat id) and/or seat (a random seat id, as clients had to), run in order').argParser(modeList).default(['best'], 'best'))
    .option('--users <n>', 'ordinary users, one connection and one request each', wholeNumber('--users', 1), RUSH_DEFAULTS.users)
    .option('--scripts <n>', 'scripted users', wholeNumber('--scripts', 0), RUSH_DEFAULTS.scripts)
    .option('--script-connections <n>', 'connections of each script', wholeNumber('--script-connections', 1), RUSH_DEFAULTS.scriptConnections)
    .option('--script-depth <n>', 'creates each script pipelines on each of its connections', wholeNumber('--script-depth', 1), RUSH_DEFAULTS.scriptDepth)
    .option('--max-seconds <s>', 'stop this long after the release, whatever is unanswered', positive('--max-seconds'), RUSH_DEFAULTS.maxMs / 1000)
    .option('--lottery <ms>', "release at the window day's opening (rules.bookingOpensAt, the next whole minute after setup) with this opening lottery (rules.openingLotteryMs); one --mode only", wholeNumber('--lottery', 0))
    .action(async (o: CommonOpts & { mode: RushMode[]; users: number; scripts: number; scriptConnections: number; scriptDepth: number; maxSeconds: number; lottery?: number }) => {
      if (o.lottery !== undefined && o.server) throw Object.assign(new Error('--lottery configures the carrel bench starts: not with --server'), { exitCode: 2 });
      if (o.lottery !== undefined && o.mode.length > 1) throw Object.assign(new Error('--lottery: one --mode per run (a day opens once)'), { exitCode: 2 });
      const opening = o.lottery === undefined ? undefined : rushOpening(o.lottery, rushLeadMs(o));
      const shape = { users: o.users, scripts: o.scripts, scriptConnections: o.scriptConnections, scriptDepth: o.scriptDepth, opening };
      await withBench(o, async (b) => {
        for (const mode of o.mode) {
          const r = b.add(await rush(b.ctx, { mode, ...shape, maxMs: o.maxSeconds * 1000 }));
          for (const c of rushComparisons(r)) b.compare(c);
        }
      }, rushServerConfig(shape));
    });

  common(bench.command('sensors').description('sensor flood: readings/s from G gateways, latency to the ack'))
    .option('--branch <name>', 'branch whose seats get readings', 'Bench Library')
    .option('--gateways <n>', 'sensor connections', positive('--gateways'), 10)
    .option('--rate <n>', 'readings per second in total', positive('--rate'), 20_000)
    .option('--batch <n>', 'readings per occupancy frame', positive('--batch'), 20)
    .action(async (o: CommonOpts & { branch: string; gateways: number; rate: number; batch: number }) =>
      withBench(o, async (b) => void b.add(await sensors(b.ctx, { ...o, durationMs: o.duration * 1000, warmupMs: o.warmup * 1000 }))),
    );

  common(bench.command('fanout').description('readings to S subscribers (some stalled): latency from a reading\'s send to each delivery'))
    .option('--branch <name>', 'branch the subscribers watch', 'Main Library')
    .option('--subscribers <list>', 'subscriber counts, e.g. 100,1000', intList('--subscribers'), [1000])
    .option('--stalled <n>', 'of them, how many never read', (v) => Number(v), 0)
    .option('--rate <n>', 'readings per second', positive('--rate'), 100)
    .addOption(new Option('--transport <list>', 'how subscribers connect: tcp (the subscriber port), ws (/ws/live on the HTTP port), mixed (half on each in one run); several in turn, e.g. tcp,ws,mixed, give the p99 ratio ws/TCP').argParser(transportList).default(['tcp'] as FanoutTransport[], 'tcp'))
    .option('--repeats <n>', 'rounds of the transports per subscriber count, in turn (the order reversed every other round); medians compared', positive('--repeats'), 1)
    .option('--baseline', 'also measure the bare fan-out of the echo baseline (one write of the same event to each TCP socket) with the same load')
    .action(async (o: CommonOpts & { branch: string; subscribers: number[]; stalled: number; rate: number; transport: FanoutTransport[]; repeats: number; baseline?: boolean }) =>
      withBench(o, async (b) => {
        const echoCtx = o.baseline ? new BenchContext(await b.echoTarget()) : undefined;
        if (echoCtx) echoCtx.onProgress = b.ctx.onProgress;
        for (const subscribers of o.subscribers) {
          const run = { branch: o.branch, subscribers, stalled: o.stalled, rate: o.rate, durationMs: o.duration * 1000, warmupMs: o.warmup * 1000 };
          const p99s: Record<'tcp' | 'ws', number[]> = { tcp: [], ws: [] };
          const mixed: Array<{ tcp: number; ws: number }> = [];
          for (let i = 0; i < o.repeats; i++) {
            // The transports see nearly the same machine: run back to back, the order reversed every other round.
            const order = i % 2 === 0 ? o.transport : [...o.transport].reverse();
            for (const transport of order) {
              const r = b.add(await fanout(b.ctx, { ...run, transport }));
              if (transport === 'mixed') {
                const by = r.extra.byTransport as Record<'tcp' | 'ws', { p99Ms: number }>;
                mixed.push({ tcp: by.tcp.p99Ms, ws: by.ws.p99Ms });
              } else p99s[transport].push(r.latency.p99Ms);
              if (echoCtx && transport === 'tcp' && i === 0) {
                const e = b.add(await fanout(echoCtx, run));
                b.compare({ what: `${r.label}: p99 end to end`, value: r.latency.p99Ms, unit: 'ms', baseline: 'bare fan-out', baselineValue: e.latency.p99Ms, ratio: r.latency.p99Ms / e.latency.p99Ms, target: '< 5 ms', met: r.latency.p99Ms < 5 });
              }
            }
          }
          if (p99s.tcp.length > 0 && p99s.ws.length > 0) b.compare(wsAgainstTcp(run, 'alternating runs', p99s.tcp, p99s.ws));
          if (mixed.length > 0) b.compare(wsAgainstTcp(run, 'in the same run', mixed.map((m) => m.tcp), mixed.map((m) => m.ws)));
        }
      }),
    );

  common(bench.command('signage').description('the entrance display in chromium: time to apply one seat event, measured in the page (Performance API)'))
    .option('--branch <name>', 'branch the page shows', BENCH_BRANCH)
    .option('--rate <n>', 'readings per second, one seat each', positive('--rate'), 50)
    .action(async (o: CommonOpts & { branch: string; rate: number }) =>
      withBench(o, async (b) => {
        const r = b.add(await signage(b.ctx, { branch: o.branch, rate: o.rate, durationMs: o.duration * 1000, warmupMs: o.warmup * 1000 }));
        const hop = r.extra.baseline as { p99Ms: number };
        b.compare({ what: `${r.label}: p99 apply`, value: r.latency.p99Ms, unit: 'ms', baseline: 'p99 of a task that changes nothing, same page', baselineValue: hop.p99Ms, ratio: r.latency.p99Ms / hop.p99Ms, target: '< 16 ms (one frame at 60 Hz)', met: r.latency.p99Ms < 16 });
      }),
    );

  common(bench.command('stalled').description('PING latency with and without stalled subscribers, alternating'))
    .option('--branch <name>', 'branch the stalled subscribers watch', 'Main Library')
    .option('--stalled <n>', 'stalled subscribers', positive('--stalled'), 50)
    .option('--rate <n>', 'readings per second streamed meanwhile', positive('--rate'), 100)
    .option('-c, --connections <n>', 'PING connections', positive('--connections'), 16)
    .option('-d, --depth <n>', 'PING depth', positive('--depth'), 1)
    .option('--repeats <n>', 'A/B pairs (medians reported)', positive('--repeats'), 3)
    .action(async (o: CommonOpts & { branch: string; stalled: number; rate: number; connections: number; depth: number; repeats: number }) =>
      withBench(o, async (b) => {
        const ping = { connections: o.connections, depth: o.depth, durationMs: o.duration * 1000, warmupMs: o.warmup * 1000 };
        b.add(await stalledPing(b.ctx, { branch: o.branch, stalled: o.stalled, rate: o.rate, ping, repeats: o.repeats }));
      }),
    );

  common(bench.command('connections').description('open many RPC connections and subscribers; the server\'s RSS'))
    .option('--rpc <n>', 'RPC connections (each answers one PING)', positive('--rpc'), 1000)
    .option('--subscribers <n>', 'subscribers', (v) => Number(v), 1000)
    .option('--branch <name>', 'branch the subscribers watch', 'Main Library')
    .action(async (o: CommonOpts & { rpc: number; subscribers: number; branch: string }) =>
      withBench(o, async (b) => void b.add(await connections(b.ctx, { rpc: o.rpc, subscribers: o.subscribers, branch: o.branch, holdMs: o.duration * 1000 }))),
    );

  common(bench.command('abuse').description('floods (reads, branches, register, health) beside a well-behaved client; its figures idle and under each flood'))
    .addOption(new Option('--floods <list>', 'which floods, in order').argParser(floodList).default([...FLOOD_NAMES], FLOOD_NAMES.join(',')))
    .addOption(shapeOption('--reads', 'reads flood: connections × pipelined seats.list each', ABUSE_DEFAULTS.reads))
    .option('--branch <name>', 'reads flood: list this branch only (default: every branch)')
    .addOption(shapeOption('--branches', 'branches flood: connections × pipelined branches.list each', ABUSE_DEFAULTS.branches))
    .addOption(shapeOption('--register', 'register flood: connections × auth.register in flight each', ABUSE_DEFAULTS.register))
    .option('--health <conns>', 'health flood: keep-alive HTTP connections', positive('--health'), ABUSE_DEFAULTS.health.connections)
    .option('--health-every <s>', 'health flood: seconds between one connection\'s GET /healthz', positive('--health-every'), ABUSE_DEFAULTS.health.everyMs / 1000)
    .option('--min-logins <n>', 'register flood: honest logins per phase at the least', positive('--min-logins'), ABUSE_DEFAULTS.minLogins)
    .option('--repeats <n>', 'runs of every flood (all in turn, then again); the report gives medians', positive('--repeats'), 1)
    .action(async (o: CommonOpts & AbuseCliOpts) =>
      withBench(o, async (b) => {
        const opts = {
          floods: o.floods,
          durationMs: o.duration * 1000,
          settleMs: o.warmup * 1000,
          reads: { ...o.reads, branch: o.branch },
          branches: o.branches,
          register: o.register,
          health: { connections: o.health, everyMs: o.healthEvery * 1000 },
          minLogins: o.minLogins,
          repeats: o.repeats,
        };
        const figures = await abuse(b.ctx, opts, (f) => {
          b.add(abuseRecord(f, b.target.describe, opts));
          process.stdout.write(`\n${abuseMarkdown([f])}`);
        });
        // The targets are judged on the medians when there are several runs.
        const summary = opts.repeats > 1 ? medianFloods(figures) : figures;
        for (const f of summary) for (const c of abuseComparisons(f, opts.minLogins)) b.compare(c);
        const md = opts.repeats > 1 ? `${abuseMarkdown(summary)}\n${abuseMarkdown(figures)}` : abuseMarkdown(figures);
        if (opts.repeats > 1) process.stdout.write(`\n${abuseMarkdown(summary)}`);
        writeFileSync(join(b.outDir, 'abuse.md'), md);
        const strip = (fs: typeof figures): unknown[] => fs.map((f) => ({ ...f, flooders: f.flooders && { ...f.flooders, histogram: undefined } }));
        writeFileSync(join(b.outDir, 'abuse.json'), JSON.stringify({ options: opts, medians: opts.repeats > 1 ? strip(summary) : null, floods: strip(figures) }, null, 2));
        process.stdout.write(`\nabuse: ${join(b.outDir, 'abuse.md')}\n       ${join(b.outDir, 'abuse.json')}\n`);
      }, shippedPolicies()),
    );

  bench
    .command('history')
    .description('the occupancy history\'s targets on a database of its own: sensors CPU per reading with history on vs off (alternating), and the utilization report\'s time over N days of a 2,000-seat branch')
    .option('--days <n>', 'days of simulated history', positive('--days'), 60)
    .option('--repeats <n>', 'on/off pairs; the median pair ratio is reported', positive('--repeats'), 3)
    .option('--rate <n>', 'readings per second in total', positive('--rate'), 20_000)
    .option('--gateways <n>', 'sensor connections', positive('--gateways'), 10)
    .option('--batch <n>', 'readings per occupancy frame', positive('--batch'), 20)
    .option('--duration <s>', 'measured seconds per sensors run', positive('--duration'), 10)
    .option('--warmup <s>', 'seconds before measuring starts', (v) => Number(v), 2)
    .option('--calls <n>', 'report calls per kind', positive('--calls'), 5)
    .option('--out <dir>', 'where results go (default loadtest/results/<time>)')
    .action(async (o: { days: number; repeats: number; rate: number; gateways: number; batch: number; duration: number; warmup: number; calls: number; out?: string }) => {
      const outDir = o.out ?? Bench.defaultOutDir();
      const md = await benchHistory({ ...o, outDir, durationMs: o.duration * 1000, warmupMs: o.warmup * 1000, onLine: (l) => process.stdout.write(`${l}\n`) });
      process.stdout.write(`\n${md}\nresults: ${join(outDir, 'history.md')}\n         ${join(outDir, 'history.json')}\n`);
    });

  common(bench.command('suite').description('every target figure beside its baseline, and a sweep for the chart (BENCHMARKS.md)'))
    .option('--sweep <list>', 'connection counts of the chart\'s sweep', intList('--sweep'), [1, 4, 16, 64, 256, 1000])
    .option('--repeats <n>', 'carrel/baseline pairs per ratio, alternating; the median pair ratio is reported', positive('--repeats'), 3)
    .action(async (o: CommonOpts & { sweep: number[]; repeats: number }) =>
      withBench(o, (b) => runSuite(b, { durationMs: o.duration * 1000, warmupMs: o.warmup * 1000, sweep: o.sweep, repeats: o.repeats }), rushServerConfig(RUSH_DEFAULTS)),
    );
}
