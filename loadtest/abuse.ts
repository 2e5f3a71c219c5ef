// `carrel bench abuse`: is the server fair to a well-behaved client while others flood it? Each
// flood runs after an idle phase in which the same well-behaved client runs alone, and the two
// phases are reported side by side with what the flooders got (BENCHMARKS.md, *Fair under abuse*):
//
//   reads     N anonymous connections × P pipelined seats.list, no two with the same window
//   branches  8 anonymous connections × P pipelined branches.list
//   register  4 connections × 40 auth.register of a student id that exists
//   health    64 keep-alive HTTP connections, each GET /healthz every 3 s
//
// The floods run in a process of their own (flooder.ts) and ignore every hint to slow down; the
// well-behaved client here paces itself, takes one answer at a time, and reconnects when cut off.
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { RpcClient, type RpcReply } from '../clients/rpcClient.js';
import { projectRoot } from '../src/paths.js';
import { LatencyHistogram, median, round3, type LatencySummary } from './histogram.js';
import type { FloodResult, FloodSpec } from './flooder.js';
import { customRecord, round1, sampleServer, type RunRecord } from './record.js';
import { isLoopback, readProcCpuMs } from './target.js';
import type { Comparison } from './report.js';
import type { BenchContext } from './scenarios.js';
import { BENCH_PASSWORD, type BenchUser } from './setup.js';
import type { ReservationWire, SeatWire } from '../src/wire/types.js';

export const FLOOD_NAMES = ['reads', 'branches', 'register', 'health'] as const;
export type FloodName = (typeof FLOOD_NAMES)[number];

export interface AbuseOptions {
  floods: FloodName[];
  /** Length of each phase (idle, then under the flood), ms. */
  durationMs: number;
  /** Time between the flood's start and the measured phase, ms: its connections open and fill up. */
  settleMs: number;
  reads: { connections: number; depth: number; branch?: string };
  branches: { connections: number; depth: number };
  register: { connections: number; depth: number };
  health: { connections: number; everyMs: number };
  /** Honest logins per phase of the register flood, at the least (the phase runs longer for them). */
  minLogins: number;
  /** Runs of every flood (all floods in turn, then again); the report gives each figure's median. */
  repeats: number;
}

export const ABUSE_DEFAULTS: Omit<AbuseOptions, 'floods' | 'durationMs' | 'settleMs' | 'repeats'> = {
  reads: { connections: 32, depth: 100 },
  branches: { connections: 8, depth: 100 },
  register: { connections: 4, depth: 40 },
  health: { connections: 64, everyMs: 3000 },
  minLogins: 10,
};

// How the well-behaved client behaves: one request at a time per activity, with a pause between,
// so that it is no load of its own worth speaking of (about 100 listings of its reservations,
// 10 bookings and 5 probes a second).
const MINE_GAP_MS = 10;
const BOOK_GAP_MS = 100;
const LOGIN_GAP_MS = 200;
const PROBE_EVERY_MS = 200;
/** A probe not answered in this long is counted as a timeout (a load balancer would give up sooner). */
const PROBE_TIMEOUT_MS = 2_000;
/** A call not answered in this long counts as TIMEOUT, and the client reconnects. */
const CALL_TIMEOUT_MS = 10_000;
/** Logins still missing at the end of a phase get this much longer at the most. */
const LOGIN_OVERTIME_MS = 60_000;

type Activity = 'mine' | 'book' | 'login' | 'readyz';

/** Which well-behaved activities run beside each flood (the readiness probe beside every one). */
const ACTIVITIES: Record<FloodName, Activity[]> = {
  reads: ['mine', 'book', 'readyz'],
  branches: ['mine', 'book', 'readyz'],
  register: ['login', 'readyz'],
  health: ['readyz'],
};

/** What one activity of the well-behaved client saw in one phase. */
export interface ActivityFigures {
  /** Calls made (probes sent); for bookings, the attempts and any cancel that failed after one. */
  count: number;
  /** Calls that succeeded (probes answered 200). */
  ok: number;
  /**
   * Every outcome by code: OK, a wire error code (with the limit that refused, when the server
   * named one), TIMEOUT, CONNECTION_CLOSED; for probes the HTTP status or the socket error.
   */
  outcomes: Record<string, number>;
  /** Latency of the calls that succeeded (probes answered 200); the others are in `outcomes`. */
  latency: LatencySummary;
  /** How long every call waited for its answer, failures included (a timeout at its limit). */
  wait: LatencySummary;
}

export interface PhaseFigures {
  /** How long the phase ran, s. */
  windowS: number;
  activities: Partial<Record<Activity, ActivityFigures>>;
}

export interface FloodFigures {
  flood: FloodName;
  /** Which run of the flood this is, from 1; 0 for the medians of several. */
  run: number;
  /** How many runs there are (of which these are the medians, when run is 0). */
  runs: number;
  describe: string;
  idle: PhaseFigures;
  underFlood: PhaseFigures;
  /** What the flooders got; null when the flood process did not report (it is then killed). */
  flooders: FloodResult | null;
  /** CPU of the flood process, % of one core, while it ran. */
  floodCpuPct: number | null;
  /** Seconds from the flood's stop until the well-behaved client was served normally again (null: not within a minute). */
  recoveredInS: number | null;
  /** The server under the flood: peak RSS and CPU (% of one core); null when its pid is unknown. */
  server: { maxRssMb: number | null; cpuPct: number | null } | null;
}

/** What every phase shares: the users, and a seat and window the booking loop books and cancels. */
export interface AbuseSetup {
  user: BenchUser;
  /** Users the honest logins cycle through (the first is `user`). */
  loginUsers: BenchUser[];
  booking: { seatId: number; start: string; end: string };
}

export function describeFlood(name: FloodName, o: typeof ABUSE_DEFAULTS): string {
  switch (name) {
    case 'reads':
      return `${o.reads.connections} anonymous connections × ${o.reads.depth} pipelined seats.list${o.reads.branch ? ` of ${o.reads.branch}` : ''}, every window distinct`;
    case 'branches':
      return `${o.branches.connections} anonymous connections × ${o.branches.depth} pipelined branches.list`;
    case 'register':
      return `${o.register.connections} connections × ${o.register.depth} auth.register of an existing student id in flight`;
    case 'health':
      return `${o.health.connections} keep-alive HTTP connections, each GET /healthz every ${round1(o.health.everyMs / 1000)} s`;
  }
}

function floodSpec(name: FloodName, ctx: BenchContext, setup: AbuseSetup, o: AbuseOptions): FloodSpec {
  const rpc = { kind: 'rpc' as const, host: ctx.host, port: ctx.rpcPort, countAfterMs: o.settleMs };
  switch (name) {
    case 'reads': {
      // Whole minutes from the next hour on: distinct windows, all of them in the days ahead.
      const baseMs = Math.ceil(Date.now() / 3_600_000) * 3_600_000;
      return { ...rpc, connections: o.reads.connections, depth: o.reads.depth, requests: { method: 'seats.list', branch: o.reads.branch, baseMs } };
    }
    case 'branches':
      return { ...rpc, connections: o.branches.connections, depth: o.branches.depth, requests: { method: 'branches.list' } };
    case 'register':
      return { ...rpc, connections: o.register.connections, depth: o.register.depth, requests: { method: 'auth.register', studentId: setup.user.studentId } };
    case 'health':
      return { kind: 'http', host: ctx.host, port: ctx.target.ports.http, connections: o.health.connections, path: '/healthz', everyMs: o.health.everyMs, countAfterMs: o.settleMs };
  }
}

// --- the well-behaved client --------------------------------------------------------------

class Tally {
  count = 0;
  ok = 0;
  readonly outcomes: Record<string, number> = {};
  readonly latency = new LatencyHistogram();
  readonly wait = new LatencyHistogram();

  /** Counts one outcome; the latency counts only when it succeeded (a refusal is fast, and no answer). */
  add(code: string, ms: number, ok = code === 'OK'): void {
    this.count++;
    this.outcomes[code] = (this.outcomes[code] ?? 0) + 1;
    this.wait.recordMs(ms);
    if (!ok) return;
    this.ok++;
    this.latency.recordMs(ms);
  }

  /** A failure of a follow-up call (the cancel after a booking): counted, and never a success. */
  fail(code: string): void {
    this.count++;
    this.outcomes[code] = (this.outcomes[code] ?? 0) + 1;
  }

  figures(): ActivityFigures {
    return { count: this.count, ok: this.ok, outcomes: { ...this.outcomes }, latency: this.latency.summary(), wait: this.wait.summary() };
  }
}

/** One RPC connection of the well-behaved client: one call at a time, reconnecting after a failure. */
class PoliteConnection {
  private client: RpcClient | undefined;

  constructor(private readonly host: string, private readonly port: number) {}

  /** Calls and returns the outcome's code, the result, and how long it took (a timeout at its limit). */
  async call(method: string, args: unknown, token?: string): Promise<{ code: string; ms: number; result: unknown }> {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      this.client ??= await RpcClient.connect(this.host, this.port, { timeoutMs: CALL_TIMEOUT_MS });
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), CALL_TIMEOUT_MS)));
      const reply = await Promise.race([this.client.request(method, args === undefined ? undefined : [args], token), timeout]);
      if (reply === 'timeout') {
        this.drop();
        return { code: 'TIMEOUT', ms: CALL_TIMEOUT_MS, result: null };
      }
      return { code: codeOf(reply), ms: performance.now() - t0, result: reply.result };
    } catch (err) {
      this.drop();
      const e = err as NodeJS.ErrnoException;
      return { code: e.code === 'ECONNREFUSED' ? 'ECONNREFUSED' : 'CONNECTION_CLOSED', ms: performance.now() - t0, result: null };
    } finally {
      clearTimeout(timer);
    }
  }

  drop(): void {
    this.client?.close();
    this.client = undefined;
  }
}

/** OK, or the error code with the limit that refused when the server names one ("RESOURCE_EXHAUSTED (auth)"). */
export function codeOf(reply: Pick<RpcReply, 'error'>): string {
  if (!reply.error) return 'OK';
  const limit = reply.error.details?.limit;
  return typeof limit === 'string' ? `${reply.error.code} (${limit})` : reply.error.code;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One readiness probe as a load balancer sends it: a new connection, GET /readyz, a timeout. */
export function probeReady(host: string, port: number, timeoutMs = PROBE_TIMEOUT_MS): Promise<{ code: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (code: string): void => {
      if (done) return;
      done = true;
      resolve({ code, ms: performance.now() - t0 });
    };
    const req = http.get({ host, port, path: '/readyz', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => finish(String(res.statusCode)));
      res.on('error', () => finish('ECONNRESET'));
    });
    req.on('timeout', () => {
      finish('TIMEOUT');
      req.destroy();
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'ERROR'));
  });
}

interface PhaseContext {
  ctx: BenchContext;
  setup: AbuseSetup;
  /** The phase's end, performance.now() time. */
  endsAt: number;
  minLogins: number;
}

async function mineLoop(p: PhaseContext, t: Tally): Promise<void> {
  const conn = new PoliteConnection(p.ctx.host, p.ctx.rpcPort);
  try {
    while (performance.now() < p.endsAt) {
      const r = await conn.call('reservations.mine', { limit: 10 }, p.setup.user.token);
      t.add(r.code, r.ms);
      await sleep(MINE_GAP_MS);
    }
  } finally {
    conn.drop();
  }
}

/** Books the setup's seat and window and cancels it again; the tally counts the bookings. */
async function bookLoop(p: PhaseContext, t: Tally): Promise<void> {
  const conn = new PoliteConnection(p.ctx.host, p.ctx.rpcPort);
  const { token } = p.setup.user;
  try {
    while (performance.now() < p.endsAt) {
      const r = await conn.call('reservations.create', p.setup.booking, token);
      t.add(r.code, r.ms);
      const id = (r.result as ReservationWire | null)?.id;
      // A booking that landed is cancelled before the next, so the slot is free for it; a cancel
      // that fails is tallied as a failure of its own (the next booking would conflict anyway).
      for (let i = 0; id !== undefined && i < 3; i++) {
        const c = await conn.call('reservations.cancel', { id }, token);
        if (c.code === 'OK') break;
        t.fail(`cancel ${c.code}`);
      }
      await sleep(BOOK_GAP_MS);
    }
  } finally {
    conn.drop();
  }
}

async function loginLoop(p: PhaseContext, t: Tally): Promise<void> {
  const conn = new PoliteConnection(p.ctx.host, p.ctx.rpcPort);
  const hardEnd = p.endsAt + LOGIN_OVERTIME_MS;
  try {
    for (let i = 0; (performance.now() < p.endsAt || t.count < p.minLogins) && performance.now() < hardEnd; i++) {
      const u = p.setup.loginUsers[i % p.setup.loginUsers.length]!;
      const r = await conn.call('auth.login', { studentId: u.studentId, password: BENCH_PASSWORD });
      t.add(r.code, r.ms);
      await sleep(LOGIN_GAP_MS);
    }
  } finally {
    conn.drop();
  }
}

async function probeLoop(p: PhaseContext, t: Tally): Promise<void> {
  const port = p.ctx.target.ports.http;
  const probes: Array<Promise<void>> = [];
  // On a fixed beat whatever the answers: a probe that hangs does not delay the next one.
  while (performance.now() < p.endsAt) {
    probes.push(probeReady(p.ctx.host, port).then((r) => t.add(r.code, r.ms, r.code === '200')));
    await sleep(PROBE_EVERY_MS);
  }
  await Promise.all(probes);
}

const LOOPS: Record<Activity, (p: PhaseContext, t: Tally) => Promise<void>> = { mine: mineLoop, book: bookLoop, login: loginLoop, readyz: probeLoop };

async function runPhase(ctx: BenchContext, setup: AbuseSetup, activities: Activity[], durationMs: number, minLogins: number): Promise<PhaseFigures> {
  const t0 = performance.now();
  const p: PhaseContext = { ctx, setup, endsAt: t0 + durationMs, minLogins };
  const tallies = activities.map((a) => [a, new Tally()] as const);
  await Promise.all(tallies.map(([a, t]) => LOOPS[a](p, t)));
  return {
    windowS: round3((performance.now() - t0) / 1000),
    activities: Object.fromEntries(tallies.map(([a, t]) => [a, t.figures()])),
  };
}

// --- set-up -------------------------------------------------------------------------------

/**
 * Registers the well-behaved users (on any carrel: the one `carrel bench` starts, one started
 * with `npm start`, a test's) and finds a seat and window its rules let them book: tomorrow on,
 * each hour in turn until a booking lands (the branches' hours and time zones decide which).
 */
export async function abuseSetup(ctx: BenchContext): Promise<AbuseSetup> {
  const users = await ctx.usersFor(3);
  const user = users[0]!;
  const client = await RpcClient.connect(ctx.host, ctx.rpcPort);
  try {
    const dayMs = 86_400_000;
    const tomorrow = Math.ceil(Date.now() / dayMs) * dayMs;
    const refusals: Record<string, number> = {};
    for (let h = 0; h < 72; h++) {
      const start = new Date(tomorrow + h * 3_600_000).toISOString();
      const end = new Date(tomorrow + (h + 1) * 3_600_000).toISOString();
      const seats = await client.call<SeatWire[]>('seats.list', { start, end, availableOnly: true });
      const seat = seats[0];
      if (!seat) continue;
      const booked = await client.request('reservations.create', [{ seatId: seat.id, start, end }], user.token);
      if (booked.error) {
        const key = booked.error.details?.rule ? `${booked.error.code} ${String(booked.error.details.rule)}` : booked.error.code;
        refusals[key] = (refusals[key] ?? 0) + 1;
        continue;
      }
      const cancelled = await client.request('reservations.cancel', [{ id: (booked.result as ReservationWire).id }], user.token);
      if (cancelled.error) throw new Error(`could not cancel the trial booking: ${cancelled.error.code} ${cancelled.error.message}`);
      return { user, loginUsers: users, booking: { seatId: seat.id, start, end } };
    }
    throw new Error(`no seat could be booked in the next three days (refused: ${JSON.stringify(refusals)})`);
  } finally {
    client.close();
  }
}

const RECOVERY_LIMIT_MS = 60_000;

/**
 * Waits until the server serves the well-behaved client normally again — three listings of its
 * reservations in a row, each in under 100 ms — and returns how long that took, in seconds (null:
 * not within a minute). A PING would not do: it needs no database, and after a flood the work
 * the flooders left queued there can take seconds to drain.
 */
async function recovery(ctx: BenchContext, setup: AbuseSetup): Promise<number | null> {
  const conn = new PoliteConnection(ctx.host, ctx.rpcPort);
  const t0 = performance.now();
  try {
    for (let fine = 0; performance.now() - t0 < RECOVERY_LIMIT_MS; ) {
      const r = await conn.call('reservations.mine', { limit: 10 }, setup.user.token);
      fine = r.code === 'OK' && r.ms < 100 ? fine + 1 : 0;
      if (fine === 3) return round1((performance.now() - t0) / 1000);
      await sleep(fine ? MINE_GAP_MS : 250);
    }
    return null;
  } finally {
    conn.drop();
  }
}

// --- the flood process --------------------------------------------------------------------

/** Starts the flood in its own process; resolves once it is flooding. */
async function spawnFlood(spec: FloodSpec, maxMs: number): Promise<{ child: ChildProcess; stop(): Promise<{ result: FloodResult | null; cpuPct: number | null }> }> {
  const script = join(projectRoot, 'dist', 'loadtest', 'flooder.js');
  const child = fork(script, [JSON.stringify({ spec, maxMs })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const t0 = performance.now();
  let result: FloodResult | null = null;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const flooding = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the flood process did not start within 30 s')), 30_000);
    child.on('message', (m: { type: string; result?: FloodResult }) => {
      if (m.type === 'flooding') {
        clearTimeout(timer);
        resolve();
      }
      if (m.type === 'result') result = m.result ?? null;
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the flood process exited with ${String(child.exitCode)} before it started`));
    });
  });
  const stop = async (): Promise<{ result: FloodResult | null; cpuPct: number | null }> => {
    const cpuMs = child.pid ? readProcCpuMs(child.pid) : null;
    const cpuPct = cpuMs === null ? null : round1((cpuMs / (performance.now() - t0)) * 100);
    if (child.exitCode === null && child.connected) child.send({ type: 'stop' });
    const late = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(late);
    return { result, cpuPct };
  };
  try {
    await flooding;
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  return { child, stop };
}

// --- the scenario -------------------------------------------------------------------------

export async function abuse(ctx: BenchContext, o: AbuseOptions, onFlood: (f: FloodFigures) => void = () => undefined): Promise<FloodFigures[]> {
  if (!isLoopback(ctx.host)) {
    throw Object.assign(new Error(`bench abuse floods only a server on this machine (127.0.0.1), not ${ctx.host}`), { exitCode: 2 });
  }
  if (!ctx.target.ports.http) throw Object.assign(new Error('bench abuse needs the server\'s HTTP port (--http-port)'), { exitCode: 2 });
  const setup = await abuseSetup(ctx);
  const out: FloodFigures[] = [];
  await recovery(ctx, setup);
  // All floods in turn, then again: a drift of the machine's speed spreads over every flood.
  for (let run = 1; run <= o.repeats; run++) {
    for (const name of o.floods) out.push(await floodOnce(ctx, setup, o, name, run, onFlood));
  }
  return out;
}

async function floodOnce(ctx: BenchContext, setup: AbuseSetup, o: AbuseOptions, name: FloodName, run: number, onFlood: (f: FloodFigures) => void): Promise<FloodFigures> {
  const activities = ACTIVITIES[name];
  const describe = describeFlood(name, o);
  ctx.onProgress?.(`abuse ${name} (run ${run}): idle`, 0, describe);
  const idle = await runPhase(ctx, setup, activities, o.durationMs, o.minLogins);
  ctx.onProgress?.(`abuse ${name} (run ${run}): flood`, 0.5, describe);
  const maxMs = o.settleMs + o.durationMs + LOGIN_OVERTIME_MS + 2 * CALL_TIMEOUT_MS;
  const flood = await spawnFlood(floodSpec(name, ctx, setup, o), maxMs);
  let underFlood: PhaseFigures;
  let server: FloodFigures['server'] = null;
  try {
    await sleep(o.settleMs);
    // Only with the server's pid: sampling through /metrics would be one more client of the
    // HTTP port that the health flood fills.
    const sampling = ctx.target.pid ? sampleServer(ctx.target) : null;
    underFlood = await runPhase(ctx, setup, activities, o.durationMs, o.minLogins);
    server = sampling?.stop() ?? null;
  } catch (err) {
    await flood.stop();
    throw err;
  }
  const { result: flooders, cpuPct: floodCpuPct } = await flood.stop();
  ctx.onProgress?.(`abuse ${name} (run ${run}): recovery`, 1, describe);
  const recoveredInS = await recovery(ctx, setup);
  const f: FloodFigures = { flood: name, run, runs: o.repeats, describe, idle, underFlood, flooders, floodCpuPct, recoveredInS, server };
  onFlood(f);
  return f;
}

// --- the report ---------------------------------------------------------------------------

function fmt(n: number, digits = 2): string {
  return n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function failures(a: ActivityFigures): string {
  const n = a.count - a.ok;
  const codes = Object.entries(a.outcomes).filter(([k]) => k !== 'OK' && k !== '200');
  return codes.length ? `${n.toLocaleString('en')}: ${codes.map(([k, v]) => `${k} ${v.toLocaleString('en')}`).join(', ')}` : String(n);
}

/** Share of the activity's calls that succeeded, in percent (100 when there were none to fail). */
export function okShare(a: ActivityFigures | undefined): number {
  return !a || a.count === 0 ? 100 : round1((a.ok / a.count) * 100);
}

type Row = [what: string, idle: string, flood: string, ratio: string];

/** p50, p99 and max of the successful calls; "–" where none succeeded. */
function latencyRows(label: string, idle: ActivityFigures, flood: ActivityFigures): Row[] {
  const row = (name: string, key: 'p50Ms' | 'p99Ms' | 'maxMs', digits: number): Row => {
    const [a, b] = [idle.ok > 0 ? idle.latency[key] : null, flood.ok > 0 ? flood.latency[key] : null];
    const show = (v: number | null): string => (v === null ? '–' : fmt(v, digits));
    return [`${label} ${name} ms`, show(a), show(b), a && b !== null ? `${fmt(b / a, 1)}×` : '–'];
  };
  return [row('p50', 'p50Ms', 2), row('p99', 'p99Ms', 2), row('max', 'maxMs', 1)];
}

/** The wait for every answer, failures included: what a refused or timed-out caller went through. */
function waitRow(label: string, idle: ActivityFigures, flood: ActivityFigures): Row {
  const show = (a: ActivityFigures): string => (a.count > 0 ? `${fmt(a.wait.p50Ms)} / ${fmt(a.wait.maxMs, 1)}` : '–');
  return [`${label} p50 / max ms, failures included`, show(idle), show(flood), ''];
}

function activityRows(a: Activity, idle: ActivityFigures, flood: ActivityFigures): Row[] {
  const calls = (f: ActivityFigures): string => `${f.count.toLocaleString('en')} (failed ${failures(f)})`;
  switch (a) {
    case 'mine':
      return [...latencyRows('reservations.mine', idle, flood), ['reservations.mine calls', calls(idle), calls(flood), ''], waitRow('reservations.mine', idle, flood)];
    case 'book':
      return [
        ['bookings made (failed)', `${idle.ok} (${failures(idle)})`, `${flood.ok} (${failures(flood)})`, ''],
        ...latencyRows('reservations.create', idle, flood).slice(0, 2),
        waitRow('reservations.create', idle, flood),
      ];
    case 'login':
      return [
        ['honest logins ok (failed)', `${idle.ok} (${failures(idle)})`, `${flood.ok} (${failures(flood)})`, ''],
        ...latencyRows('auth.login', idle, flood).slice(0, 2),
        waitRow('auth.login', idle, flood),
      ];
    case 'readyz': {
      const share = (f: ActivityFigures): string => `${okShare(f)}% (${f.ok} of ${f.count}${f.ok < f.count ? `; ${failures(f)}` : ''})`;
      return [['/readyz answered 200', share(idle), share(flood), ''], ...latencyRows('/readyz (200s)', idle, flood).slice(0, 2)];
    }
  }
}

export function floodersLine(r: FloodResult | null): string {
  if (!r) return 'flooders: the flood process did not report';
  const total = Object.values(r.answers).reduce((a, b) => a + b, 0);
  const codes = Object.entries(r.answers).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toLocaleString('en')}`).join(', ') || 'none';
  return (
    `flooders (${r.windowS} s): ${total.toLocaleString('en')} answers (${Math.round(total / Math.max(r.windowS, 0.001)).toLocaleString('en')}/s) — ${codes}; ` +
    `p50 ${fmt(r.latency.p50Ms)} ms, p99 ${fmt(r.latency.p99Ms)} ms; ${r.connectionsOpen} of ${r.connectionsAsked} connections open at the end, ` +
    `${r.connectFailures} connects failed, ${r.closedByServer} closed by the server (${r.lostToClose} requests lost with them), ${r.unanswered.toLocaleString('en')} unanswered at the stop`
  );
}

/** The side-by-side table of every flood, as the terminal and BENCHMARKS.md show it. */
export function abuseMarkdown(figs: FloodFigures[]): string {
  const out: string[] = [];
  for (const f of figs) {
    const runs = f.run === 0 ? ` (medians of ${f.runs} runs)` : f.runs > 1 ? ` (run ${f.run} of ${f.runs})` : '';
    out.push(`#### ${f.flood}: ${f.describe}${runs}`, '', `| well-behaved client | idle (${f.idle.windowS} s) | under the flood (${f.underFlood.windowS} s) | flood ÷ idle |`, '|---|---:|---:|---:|');
    for (const a of Object.keys(f.idle.activities) as Activity[]) {
      const idle = f.idle.activities[a];
      const flood = f.underFlood.activities[a];
      if (idle && flood) for (const row of activityRows(a, idle, flood)) out.push(`| ${row.join(' | ')} |`);
    }
    const recovered = f.recoveredInS === null ? 'not served normally within a minute of the stop' : `served normally again ${f.recoveredInS} s after the stop`;
    out.push('', `${floodersLine(f.flooders)}. Well-behaved client ${recovered}.`, '');
  }
  return out.join('\n');
}

/** The issue's targets for one flood, each against the idle phase. */
export function abuseComparisons(f: FloodFigures, minLogins: number): Comparison[] {
  const out: Comparison[] = [];
  const idle = f.idle.activities;
  const flood = f.underFlood.activities;
  // Latency is of the calls that succeeded, so a target on it is met only when none failed:
  // a server that refuses quickly is not fast. With none succeeding there is no latency (NaN: "–").
  const failed = (a: ActivityFigures): string => (a.ok < a.count ? `, ${a.count - a.ok} of ${a.count} failed` : '');
  const p50 = (label: string, a: ActivityFigures | undefined, b: ActivityFigures | undefined): void => {
    if (!a || !b) return;
    const ratio = a.latency.p50Ms > 0 && b.ok > 0 ? b.latency.p50Ms / a.latency.p50Ms : null;
    out.push({ what: `${f.flood}: ${label} p50${failed(b)}`, value: b.ok > 0 ? b.latency.p50Ms : Number.NaN, unit: 'ms', baseline: 'idle', baselineValue: a.latency.p50Ms, ratio, target: '≤ 3× idle, none failing', met: ratio !== null && ratio <= 3 && b.ok === b.count });
  };
  if (flood.mine) {
    p50('reservations.mine', idle.mine, flood.mine);
    const m = flood.mine;
    out.push({ what: `${f.flood}: reservations.mine p99${failed(m)}`, value: m.ok > 0 ? m.latency.p99Ms : Number.NaN, unit: 'ms', baseline: 'idle', baselineValue: idle.mine?.latency.p99Ms ?? null, ratio: null, target: '< 100 ms, none failing', met: m.ok > 0 && m.ok === m.count && m.latency.p99Ms < 100 });
  }
  if (flood.book) {
    // "Keep succeeding": none refused, and the loop keeps its pace — at least half as many a
    // second as idle (a booking that takes seconds succeeds, but nobody would call that working).
    const b = flood.book;
    const rate = (a: ActivityFigures | undefined, p: PhaseFigures): number => (a && p.windowS > 0 ? round1(a.ok / p.windowS) : 0);
    const [idleRate, floodRate] = [rate(idle.book, f.idle), rate(b, f.underFlood)];
    out.push({
      what: `${f.flood}: bookings a second${failed(b)}`, value: floodRate, unit: '/s', baseline: 'idle', baselineValue: idleRate,
      ratio: idleRate > 0 ? round3(floodRate / idleRate) : null, target: 'keep succeeding: none fail, ≥ ½ the idle pace',
      met: b.ok > 0 && b.ok === b.count && floodRate >= idleRate / 2,
    });
  }
  if (flood.login) {
    out.push({ what: `${f.flood}: honest logins ok (of ${flood.login.count})`, value: flood.login.ok, unit: 'logins', baseline: 'idle', baselineValue: idle.login?.ok ?? null, ratio: null, target: `every one, at least ${minLogins}`, met: flood.login.ok === flood.login.count && flood.login.count >= minLogins });
    p50('auth.login', idle.login, flood.login);
  }
  if (flood.readyz) {
    out.push({ what: `${f.flood}: /readyz answered 200`, value: okShare(flood.readyz), unit: '%', baseline: 'idle', baselineValue: okShare(idle.readyz), ratio: null, target: 'stays 200: 100%', met: flood.readyz.count > 0 && flood.readyz.ok === flood.readyz.count });
  }
  return out;
}

/** The flood as a run of the report: what the flooders got, with both phases in `extra`. */
export function abuseRecord(f: FloodFigures, target: string, o: AbuseOptions): RunRecord {
  const r = f.flooders;
  const answers = r ? Object.values(r.answers).reduce((a, b) => a + b, 0) : 0;
  const okCode = f.flood === 'health' ? '200' : 'OK';
  const shape = f.flood === 'health' ? { connections: o.health.connections, depth: 1 } : o[f.flood];
  const { histogram, ...flooders } = r ?? { histogram: undefined };
  return customRecord({
    scenario: 'abuse',
    label: `abuse ${f.flood}: the flooders (${f.describe})`,
    target,
    connections: shape.connections,
    depth: shape.depth,
    rate: null,
    windowS: r?.windowS ?? 0,
    throughput: r && r.windowS > 0 ? Math.round(answers / r.windowS) : 0,
    unit: 'answers/s',
    latencyHistogram: histogram ? LatencyHistogram.decode(histogram) : new LatencyHistogram(),
    errors: Object.fromEntries(Object.entries(r?.answers ?? {}).filter(([k]) => k !== okCode)),
    connectFailures: r?.connectFailures ?? 0,
    neverAnswered: 0,
    unanswered: r?.unanswered ?? 0,
    serverRssMb: f.server?.maxRssMb ?? null,
    serverCpuPct: f.server?.cpuPct ?? null,
    clientCpuPct: f.floodCpuPct ?? 0,
    extra: { flood: f.flood, describe: f.describe, idle: f.idle, underFlood: f.underFlood, flooders: r ? flooders : null },
  });
}

// --- medians of several runs ----------------------------------------------------------------

const med = (xs: number[]): number => (xs.length ? round3(median(xs)) : 0);

function medianSummary(ss: LatencySummary[]): LatencySummary {
  const keys = ['count', 'meanMs', 'p50Ms', 'p90Ms', 'p99Ms', 'p999Ms', 'maxMs'] as const;
  return Object.fromEntries(keys.map((k) => [k, med(ss.map((s) => s[k]))])) as unknown as LatencySummary;
}

function medianCounts(maps: Array<Record<string, number>>): Record<string, number> {
  const codes = [...new Set(maps.flatMap((m) => Object.keys(m)))];
  return Object.fromEntries(codes.map((c) => [c, med(maps.map((m) => m[c] ?? 0))]).filter(([, v]) => (v as number) > 0));
}

function medianActivity(as: ActivityFigures[]): ActivityFigures {
  // Latency only from the runs where something succeeded: a run with none has no latency, not 0 ms.
  const served = as.filter((a) => a.ok > 0);
  return {
    count: med(as.map((a) => a.count)),
    ok: med(as.map((a) => a.ok)),
    outcomes: medianCounts(as.map((a) => a.outcomes)),
    latency: medianSummary(served.map((a) => a.latency)),
    wait: medianSummary(as.filter((a) => a.count > 0).map((a) => a.wait)),
  };
}

function medianPhase(ps: PhaseFigures[]): PhaseFigures {
  const names = [...new Set(ps.flatMap((p) => Object.keys(p.activities)))] as Activity[];
  return {
    windowS: med(ps.map((p) => p.windowS)),
    activities: Object.fromEntries(names.map((n) => [n, medianActivity(ps.flatMap((p) => p.activities[n] ?? []))])),
  };
}

function medianFlooders(rs: FloodResult[]): FloodResult | null {
  if (rs.length === 0) return null;
  const m = (k: keyof FloodResult): number => med(rs.map((r) => r[k] as number));
  return {
    connectionsAsked: m('connectionsAsked'), connectionsOpen: m('connectionsOpen'), connectFailures: m('connectFailures'),
    closedByServer: m('closedByServer'), sent: m('sent'), answers: medianCounts(rs.map((r) => r.answers)), unanswered: m('unanswered'),
    lostToClose: m('lostToClose'), windowS: m('windowS'), latency: medianSummary(rs.map((r) => r.latency)), histogram: '',
  };
}

const medianOrNull = (xs: Array<number | null | undefined>): number | null => {
  const known = xs.filter((x): x is number => typeof x === 'number');
  return known.length ? med(known) : null;
};

/**
 * Each figure's median over the runs of each flood (counts per code too; latencies over the runs
 * where something succeeded). One FloodFigures per flood, run 0, in the order first run.
 */
export function medianFloods(figs: FloodFigures[]): FloodFigures[] {
  const names = [...new Set(figs.map((f) => f.flood))];
  return names.map((name) => {
    const runs = figs.filter((f) => f.flood === name);
    return {
      flood: name,
      run: 0,
      runs: runs.length,
      describe: runs[0]!.describe,
      idle: medianPhase(runs.map((f) => f.idle)),
      underFlood: medianPhase(runs.map((f) => f.underFlood)),
      flooders: medianFlooders(runs.flatMap((f) => f.flooders ?? [])),
      floodCpuPct: medianOrNull(runs.map((f) => f.floodCpuPct)),
      recoveredInS: medianOrNull(runs.map((f) => f.recoveredInS)),
      server: runs.some((f) => f.server)
        ? { maxRssMb: medianOrNull(runs.map((f) => f.server?.maxRssMb)), cpuPct: medianOrNull(runs.map((f) => f.server?.cpuPct)) }
        : null,
    };
  });
}
