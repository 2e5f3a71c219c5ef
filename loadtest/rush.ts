// `carrel bench rush`: the opening rush (docs/operations.md, "The load generator"). U users (one
// connection each) and B scripts (a user with C connections and D creates pipelined on each) ask
// for a seat of the rush branch (RUSH_BRANCH, 2,000 seats open around the clock, which `carrel
// bench` adds to its database) for the same window at the same instant: every connection is
// opened and answers a PING first, then every request is written in one tick. `best` asks for any
// free seat of the branch (no seatId, docs/protocol.md, `reservations.create`); `seat` names a
// seat id chosen at random, as every client had to before.
//
// Each user wants one seat. A refusal for load (RESOURCE_EXHAUSTED) is sent again after its
// retryAfterMs, as the protocol asks of a client (docs/protocol.md, "Refusals"), until the user
// is settled: it holds a seat (a booking, or FAILED_PRECONDITION overlapsOwnBooking) or was told
// that none is free (CONFLICT noSeatFree); then its refusals are final. Every other answer is
// final. The run ends when every request has a final answer, or maxMs after the release. Then
// the bookings are read back in SQL: overlapping bookings of one seat, and the most seats one
// user holds for the window.
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import pg from 'pg';
import { FrameSplitter, bytesAreSuccess, bytesRpcId, frameText } from './frames.js';
import { LatencyHistogram, round3, type LatencySummary } from './histogram.js';
import { customRecord, round1, sampleServer, type RunRecord } from './record.js';
import type { Comparison } from './report.js';
import { openSockets } from './rpcLoad.js';
import type { BenchContext } from './scenarios.js';
import { RUSH_BRANCH, isLoopback } from './target.js';

export const RUSH_MODES = ['best', 'seat'] as const;
export type RushMode = (typeof RUSH_MODES)[number];

export interface RushOptions {
  mode: RushMode;
  /** Ordinary users, one connection and one request each. */
  users: number;
  /** Scripted users, each with scriptConnections connections of scriptDepth pipelined creates. */
  scripts: number;
  scriptConnections: number;
  scriptDepth: number;
  /** The run stops this long after the release, whatever is still unanswered. */
  maxMs: number;
  /** Seeds the order the connections are written in and seat mode's seat ids. */
  seed?: number;
  /**
   * The opening (rushOpening): the carrel this bench starts opens the window's day at opensAtMs
   * with an opening lottery of lotteryMs, and the release is then, not at once.
   */
  opening?: RushOpening;
}

/** When the rush branch's day opens, and its lottery (rules.bookingOpensAt, rules.openingLotteryMs). */
export interface RushOpening {
  opensAtMs: number;
  lotteryMs: number;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/**
 * An opening for a run started now: the first whole minute (UTC, the rush branch's zone) at least
 * `leadMs` away, time enough to register the users and open the connections before it.
 */
export function rushOpening(lotteryMs: number, leadMs: number, nowMs = Date.now()): RushOpening {
  return { opensAtMs: Math.ceil((nowMs + leadMs) / MINUTE_MS) * MINUTE_MS, lotteryMs };
}

/** The setup a rush needs before its opening: registering everyone (~6 ms a user here) and connecting. */
export function rushLeadMs(o: Pick<RushOptions, 'users' | 'scripts'>): number {
  return 20_000 + (o.users + o.scripts) * 8;
}

export const RUSH_DEFAULTS = { users: 5000, scripts: 50, scriptConnections: 20, scriptDepth: 100, maxMs: 180_000 };

/** The window every request of one run asks for. */
const WINDOW_MS = 3_600_000;
/** Answers after which a user wants nothing more: it holds a seat, or none is free. */
const SETTLING = new Set(['OK', 'FAILED_PRECONDITION (overlapsOwnBooking)', 'CONFLICT (noSeatFree)']);
/** The constraint's statuses (db/migrations/001_init.sql, reservations_no_overlap): what holds a seat. */
const HOLDING = `('CONFIRMED', 'CHECKED_IN', 'OFFERED')`;

export function rushConnections(o: Pick<RushOptions, 'users' | 'scripts' | 'scriptConnections'>): number {
  return o.users + o.scripts * o.scriptConnections;
}

/**
 * What the carrel that `carrel bench` starts needs for a rush of this size: room for every
 * connection at once (limits.maxConnections ships at 4,096; the default rush opens 6,000).
 */
export function rushServerConfig(o: Pick<RushOptions, 'users' | 'scripts' | 'scriptConnections' | 'scriptDepth' | 'opening'>): Record<string, unknown> {
  // A script's connection that waits behind its user's booking is not read, but what it had sent
  // by then was read into memory (~100 creates, 35 KB): the shipped budget for such bytes (32 MiB a
  // port) would close the scripts' connections holding the most — the bound working as meant, but
  // then the run measures that, not the queue. Room for all of it.
  const held = o.scripts * o.scriptConnections * Math.min(o.scriptDepth, 256) * 400;
  const config: Record<string, unknown> = {
    limits: { maxConnections: Math.max(4096, rushConnections(o) + 256), maxPartialFrameBytesPerPort: Math.max(32 * 1024 * 1024, held * 2) },
  };
  if (o.opening) {
    // The window is on the day after the opening's (rushWindowFrom): that day opens one day before.
    const d = new Date(o.opening.opensAtMs);
    const clock = `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
    config.rules = { bookingOpensAt: clock, maxDaysAhead: 1, openingLotteryMs: o.opening.lotteryMs };
  }
  return config;
}

/** What a rush run reports (RunRecord.extra), read by the report's rush table. */
export interface RushFigures {
  mode: RushMode;
  branch: string;
  window: { start: string; end: string };
  seats: number;
  users: number;
  scripts: number;
  scriptConnections: number;
  scriptDepth: number;
  requests: number;
  /** min(users + scripts, seats): what a fair, correct server books. */
  expectedSuccesses: number;
  successes: number;
  /** From the release to the last success / to the expectedSuccesses-th / to half of them, ms. */
  lastSuccessMs: number | null;
  allTakenMs: number | null;
  halfTakenMs: number | null;
  /** How long writing every request took (the release is one loop over the connections), ms. */
  releaseWriteMs: number;
  /** Final answers by outcome: OK, a code, or a code with details.reason / rule / limit: "CONFLICT (noSeatFree)". */
  outcomes: Record<string, number>;
  /** Refusals for load that were sent again after their retryAfterMs, by outcome. */
  retried: Record<string, number>;
  /** The retryAfterMs of every refusal for load, as the server gave it (the client waits at most 5 s). */
  retryHints: LatencySummary;
  /** Answers received, retried refusals included. */
  attempts: number;
  /** Server CPU per answer, µs. */
  serverCpuUsPerOp: number | null;
  /** From the release to the final answer: of the bookings, of the ordinary users' requests, of the scripts'. */
  successLatency: LatencySummary;
  userLatency: LatencySummary;
  scriptLatency: LatencySummary;
  /** Share of ordinary users and of scripts that got a seat, and scripts ÷ users. */
  successRate: { users: number | null; scripts: number | null; ratio: number | null };
  seatsHeldByScripts: number;
  /** Read back from the database after the run. */
  sql: { bookings: number; seats: number; users: number; maxSeatsPerUser: number; overlappingPairs: number; seatsDoubleBooked: number };
  setup: { registerS: number; connectS: number };
  /** The window's day opened at the release, with this lottery (absent: open all along). */
  opening?: { opensAt: string; lotteryMs: number };
}

interface RushRequest {
  user: number;
  script: boolean;
  /** The request's JSON text without its rpcId. */
  body: string;
}

/** One connection of the rush: requests by rpcId, frames written in batches. */
class RushConnection {
  readonly pending = new Map<number, RushRequest>();
  private readonly splitter = new FrameSplitter();
  private nextId = 1;
  private out: Buffer[] = [];
  closed = false;
  /** Every reply's payload bytes, with its rpcId read from them (-1: none). */
  onFrame: (id: number, buf: Buffer, start: number, end: number) => void = () => undefined;
  onClose: () => void = () => undefined;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.splitter.pushBytes(chunk, (buf, start, end) => this.onFrame(bytesRpcId(buf, start, end), buf, start, end)));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.onClose();
    });
  }

  frame(req: RushRequest): Buffer {
    const id = this.nextId++;
    this.pending.set(id, req);
    return frameText(`{"rpcId":${id},${req.body.slice(1)}`);
  }

  /** Queues a request; everything queued in one turn goes in one write. */
  send(req: RushRequest): void {
    if (this.out.length === 0) setImmediate(() => this.flush());
    this.out.push(this.frame(req));
  }

  private flush(): void {
    if (!this.closed && this.out.length) this.socket.write(this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out));
    this.out = [];
  }

  /** Resolves true once the connection answers a PING (rpcId 0), false if it closes or stays silent. */
  warm(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const end = (ok: boolean): void => {
        clearTimeout(timer);
        this.onFrame = () => undefined;
        this.onClose = () => undefined;
        resolve(ok);
      };
      this.onFrame = (id, buf, start, end_) => end(id === 0 && bytesAreSuccess(buf, start, end_));
      this.onClose = () => end(false);
      this.socket.write(frameText('{"rpcId":0,"method":"PING"}'));
    });
  }
}

/** The outcome of an answer: OK, or the code with the reason, rule or limit the server named. */
function outcomeOf(text: string): { key: string; code: string; retryAfterMs: number | undefined } {
  let error: { code?: unknown; details?: Record<string, unknown> } | null | undefined;
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error;
  } catch {
    return { key: 'BAD_REPLY', code: 'BAD_REPLY', retryAfterMs: undefined };
  }
  if (!error) return { key: 'OK', code: 'OK', retryAfterMs: undefined };
  const code = typeof error.code === 'string' ? error.code : 'BAD_REPLY';
  const d = error.details ?? {};
  const why = [d.reason, d.rule, d.limit].find((x) => typeof x === 'string');
  const retryAfterMs = typeof d.retryAfterMs === 'number' ? d.retryAfterMs : undefined;
  return { key: why ? `${code} (${String(why)})` : code, code, retryAfterMs };
}

/** The soft limit of open files of this process (null when /proc does not say). */
function openFilesLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return !m ? null : m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return null;
  }
}

/**
 * The first whole hour from `fromMs` (at least a day ahead), within `days`, on which no seat of the
 * rush branch is held. With an opening, the day after it (the day that opening opens).
 */
async function freeWindow(db: pg.Client, opening?: RushOpening): Promise<{ start: string; end: string }> {
  const fromMs = opening ? Math.floor(opening.opensAtMs / DAY_MS) * DAY_MS + DAY_MS : Math.ceil((Date.now() + DAY_MS) / WINDOW_MS) * WINDOW_MS;
  const days = opening ? '23 hours' : '10 days';
  const r = await db.query<{ w: Date }>(
    `SELECT w FROM generate_series($2::timestamptz, $2::timestamptz + $3::interval, interval '1 hour') AS w
     WHERE NOT EXISTS (SELECT 1 FROM reservations r JOIN seats s ON s.id = r.seat_id JOIN branches b ON b.id = s.branch_id
                       WHERE b.name = $1 AND r.status IN ${HOLDING} AND r.hold && tstzrange(w, w + interval '1 hour'))
     ORDER BY w LIMIT 1`,
    [RUSH_BRANCH, new Date(fromMs).toISOString(), days],
  );
  const w = r.rows[0]?.w;
  if (!w) throw new Error(`the ${RUSH_BRANCH} has no free hour from ${new Date(fromMs).toISOString()} for ${days}`);
  return { start: w.toISOString(), end: new Date(w.getTime() + WINDOW_MS).toISOString() };
}

/** The bookings of the window read back, and overlapping bookings of one seat anywhere on the branch. */
export async function readBack(db: pg.Client, window: { start: string; end: string }): Promise<RushFigures['sql']> {
  const booked = await db.query<{ bookings: number; seats: number; users: number; most: number }>(
    `SELECT count(*)::int AS bookings, count(DISTINCT seat_id)::int AS seats, count(DISTINCT user_id)::int AS users,
            coalesce(max(per_user), 0)::int AS most
     FROM (SELECT r.seat_id, r.user_id, count(*) OVER (PARTITION BY r.user_id) AS per_user
           FROM reservations r JOIN seats s ON s.id = r.seat_id JOIN branches b ON b.id = s.branch_id
           WHERE b.name = $1 AND r.status IN ${HOLDING} AND r.during && tstzrange($2, $3)) x`,
    [RUSH_BRANCH, window.start, window.end],
  );
  // The exclusion constraint forbids these; this reads what is there, not what should be.
  const overlaps = await db.query<{ pairs: number; seats: number }>(
    `SELECT count(*)::int AS pairs, count(DISTINCT a.seat_id)::int AS seats
     FROM reservations a JOIN reservations o ON o.seat_id = a.seat_id AND o.id > a.id AND o.hold && a.hold
     JOIN seats s ON s.id = a.seat_id JOIN branches b ON b.id = s.branch_id
     WHERE b.name = $1 AND a.status IN ${HOLDING} AND o.status IN ${HOLDING}`,
    [RUSH_BRANCH],
  );
  const b = booked.rows[0]!;
  const o = overlaps.rows[0]!;
  return { bookings: b.bookings, seats: b.seats, users: b.users, maxSeatsPerUser: b.most, overlappingPairs: o.pairs, seatsDoubleBooked: o.seats };
}

function describe(o: RushOptions, seats: number): string {
  const how = `${o.mode === 'best' ? 'best-available' : 'random seat ids'}${o.opening ? `, opening lottery ${o.opening.lotteryMs} ms` : ''}`;
  return `rush, ${how}: ${o.users.toLocaleString('en')} users + ${o.scripts} scripts (${o.scriptConnections} conns × ${o.scriptDepth}) on ${seats.toLocaleString('en')} seats`;
}

export async function rush(ctx: BenchContext, o: RushOptions): Promise<RunRecord> {
  if (!isLoopback(ctx.host)) throw Object.assign(new Error(`bench rush aims only at a server on this machine (127.0.0.1), not ${ctx.host}`), { exitCode: 2 });
  const dbUrl = ctx.target.dbUrl;
  if (!dbUrl) throw Object.assign(new Error('bench rush reads the bookings back in SQL: it needs the benchmark database (run without --server)'), { exitCode: 2 });
  const nConns = rushConnections(o);
  const files = openFilesLimit();
  if (files !== null && files < nConns + 256) {
    throw Object.assign(new Error(`bench rush opens ${nConns} connections, and this process may open ${files} files: raise the limit (ulimit -n ${nConns + 1024})`), { exitCode: 2 });
  }
  const db = new pg.Client({ connectionString: dbUrl });
  // A connection lost while the rush runs (the database dropped under it) fails the read-back, not the process.
  db.on('error', () => undefined);
  await db.connect();
  try {
    return await run(ctx, o, db);
  } finally {
    await db.end();
  }
}

async function run(ctx: BenchContext, o: RushOptions, db: pg.Client): Promise<RunRecord> {
  const t00 = performance.now();
  const seatIds = (await ctx.seats(RUSH_BRANCH).catch((err: Error) => {
    throw new Error(`${err.message}: bench rush needs the "${RUSH_BRANCH}" branch that \`carrel bench\` adds to the database it starts`);
  })).map((s) => s.id);
  const everyone = await ctx.usersFor(o.users + o.scripts, 'rush');
  const registerS = round1((performance.now() - t00) / 1000);
  const window = await freeWindow(db, o.opening);
  const label = describe(o, seatIds.length);

  let seed = o.seed ?? 20_260_101;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const branch = JSON.stringify(RUSH_BRANCH);
  const bodyFor = (user: number): string => {
    const where = o.mode === 'best' ? `"branch":${branch}` : `"seatId":${seatIds[Math.floor(rand() * seatIds.length)]}`;
    return `{"method":"reservations.create","args":[{${where},"start":"${window.start}","end":"${window.end}"}],"token":"${everyone[user]!.token}"}`;
  };

  // Connections: one per ordinary user, then each script's; each opened and answering a PING.
  const t01 = performance.now();
  ctx.onProgress?.(label, 0, 'connecting');
  const { sockets, failures } = await openSockets(ctx.host, ctx.rpcPort, rushConnections(o));
  const conns = sockets.map((s) => new RushConnection(s));
  const cleanup = (): void => {
    for (const c of conns) c.socket.destroy();
  };
  if (failures > 0) {
    cleanup();
    throw new Error(`${failures} of ${rushConnections(o)} connections could not be opened`);
  }
  const warm = await Promise.all(conns.map((c) => c.warm(30_000)));
  const cold = warm.filter((ok) => !ok).length;
  if (cold > 0) {
    cleanup();
    throw new Error(`${cold} of ${conns.length} connections did not answer a PING before the release (is the server's limits.maxConnections at least ${conns.length}?)`);
  }
  const connectS = round1((performance.now() - t01) / 1000);

  // Every request, framed before the release; the connections written in a random order.
  const releases: Array<{ conn: RushConnection; bytes: Buffer }> = conns.map((conn, i) => {
    const script = i >= o.users;
    const user = script ? o.users + Math.floor((i - o.users) / o.scriptConnections) : i;
    const n = script ? o.scriptDepth : 1;
    return { conn, bytes: Buffer.concat(Array.from({ length: n }, () => conn.frame({ user, script, body: bodyFor(user) }))) };
  });
  for (let i = releases.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [releases[i], releases[j]] = [releases[j]!, releases[i]!];
  }
  const total = o.users + o.scripts * o.scriptConnections * o.scriptDepth;

  // Waits of minutes are possible (the run's own limit, and the server's hints): kept exactly.
  const longest = o.maxMs + 60_000;
  const latency = new LatencyHistogram(longest);
  const successLatency = new LatencyHistogram(longest);
  const userLatency = new LatencyHistogram(longest);
  const scriptLatency = new LatencyHistogram(longest);
  const retryHints = new LatencyHistogram(3_600_000);
  const outcomes: Record<string, number> = {};
  const retried: Record<string, number> = {};
  const seatsHeld = new Int32Array(o.users + o.scripts);
  const successTimes: number[] = [];
  let attempts = 0;
  let finals = 0;
  let unmatched = 0;
  let t0 = 0;
  let done = false;
  let finish: () => void = () => undefined;

  const settled = new Uint8Array(o.users + o.scripts);
  const final = (req: RushRequest, key: string, ms: number): void => {
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    latency.recordMs(ms);
    (req.script ? scriptLatency : userLatency).recordMs(ms);
    if (SETTLING.has(key)) settled[req.user] = 1;
    if (key === 'OK') {
      successLatency.recordMs(ms);
      successTimes.push(ms);
      seatsHeld[req.user]!++;
    }
    if (++finals === total) finish();
  };
  /** After a refusal's retryAfterMs: sent again, unless its user has settled meanwhile (then the refusal stands). */
  const retry = (conn: RushConnection, req: RushRequest, refusal: string, refusedAt: number): void => {
    if (done) return;
    if (settled[req.user]) return final(req, refusal, refusedAt);
    if (conn.closed) return final(req, 'CONNECTION_CLOSED', performance.now() - t0);
    retried[refusal] = (retried[refusal] ?? 0) + 1;
    conn.send(req);
  };

  for (const conn of conns) {
    conn.onFrame = (id, buf, start, end) => {
      if (done) return;
      const ms = performance.now() - t0;
      const req = conn.pending.get(id);
      if (!req) {
        unmatched++;
        return;
      }
      conn.pending.delete(id);
      attempts++;
      if (bytesAreSuccess(buf, start, end)) return final(req, 'OK', ms);
      const out = outcomeOf(buf.toString('utf8', start, end));
      if (out.code === 'RESOURCE_EXHAUSTED' && out.retryAfterMs !== undefined) retryHints.recordMs(out.retryAfterMs);
      if (out.code !== 'RESOURCE_EXHAUSTED' || settled[req.user] || ms >= o.maxMs) return final(req, out.key, ms);
      setTimeout(() => retry(conn, req, out.key, ms), Math.min(5000, Math.max(5, out.retryAfterMs ?? 100))).unref();
    };
    conn.onClose = () => {
      if (done) return;
      const lost = [...conn.pending.values()];
      conn.pending.clear();
      for (const req of lost) final(req, 'CONNECTION_CLOSED', performance.now() - t0);
    };
  }

  const sampling = sampleServer(ctx.target);
  const cpu0 = process.cpuUsage();
  const progress = setInterval(() => ctx.onProgress?.(label, finals / total, `${successTimes.length.toLocaleString('en')} seats taken`), 250);
  const finished = new Promise<void>((resolve) => {
    finish = () => {
      if (done) return;
      done = true;
      resolve();
    };
  });
  // With an opening, the release is just after it: a request before it is refused bookingNotOpen.
  if (o.opening) {
    const wait = o.opening.opensAtMs + 5 - Date.now();
    if (wait < 0) {
      cleanup();
      throw new Error(`setup took until ${-wait} ms after the opening it was given: give it more lead (fewer --users)`);
    }
    ctx.onProgress?.(label, 0, `release at the opening, ${new Date(o.opening.opensAtMs).toISOString()}`);
    await new Promise((r) => setTimeout(r, wait));
  }
  // The release: every request written in one loop, nothing awaited between.
  t0 = performance.now();
  for (const r of releases) r.conn.socket.write(r.bytes);
  const releaseWriteMs = round3(performance.now() - t0);
  const deadline = setTimeout(() => finish(), o.maxMs);
  await finished;
  const wallMs = performance.now() - t0;
  clearTimeout(deadline);
  clearInterval(progress);
  const cpu = process.cpuUsage(cpu0);
  const server = sampling.stop();
  cleanup();

  const sql = await readBack(db, window);
  const seats = seatIds.length;
  const expected = Math.min(o.users + o.scripts, seats);
  successTimes.sort((a, b) => a - b);
  const at = (n: number): number | null => (n > 0 && successTimes.length >= n ? round3(successTimes[n - 1]!) : null);
  const share = (from: number, to: number): number | null => {
    if (to <= from) return null;
    let got = 0;
    for (let u = from; u < to; u++) if (seatsHeld[u]! > 0) got++;
    return round3(got / (to - from));
  };
  const users = share(0, o.users);
  const scripts = share(o.users, o.users + o.scripts);
  let seatsHeldByScripts = 0;
  for (let u = o.users; u < o.users + o.scripts; u++) seatsHeldByScripts += seatsHeld[u]!;
  const successes = successTimes.length;
  const figures: RushFigures = {
    mode: o.mode,
    branch: RUSH_BRANCH,
    window,
    seats,
    users: o.users,
    scripts: o.scripts,
    scriptConnections: o.scriptConnections,
    scriptDepth: o.scriptDepth,
    requests: total,
    expectedSuccesses: expected,
    successes,
    lastSuccessMs: at(successes),
    allTakenMs: at(expected),
    halfTakenMs: at(Math.ceil(expected / 2)),
    releaseWriteMs,
    outcomes,
    retried,
    retryHints: retryHints.summary(),
    attempts,
    // Per answer, not per booking: most answers of a rush are refusals.
    serverCpuUsPerOp: server.cpuPct === null || attempts === 0 ? null : Math.round(((server.cpuPct / 100) * wallMs * 1000) / attempts),
    successLatency: successLatency.summary(),
    userLatency: userLatency.summary(),
    scriptLatency: scriptLatency.summary(),
    successRate: { users, scripts, ratio: users && scripts !== null ? round3(scripts / users) : null },
    seatsHeldByScripts,
    sql,
    setup: { registerS, connectS },
    ...(o.opening ? { opening: { opensAt: new Date(o.opening.opensAtMs).toISOString(), lotteryMs: o.opening.lotteryMs } } : {}),
  };
  return customRecord({
    scenario: 'rush',
    label,
    target: ctx.target.describe,
    connections: conns.length,
    depth: o.scriptDepth,
    rate: null,
    windowS: round3(wallMs / 1000),
    // Bookings a second from the release to the last one.
    throughput: successes && figures.lastSuccessMs ? Math.round(successes / (figures.lastSuccessMs / 1000)) : 0,
    unit: 'bookings/s',
    latencyHistogram: latency,
    errors: Object.fromEntries(Object.entries(outcomes).filter(([k]) => k !== 'OK')),
    connectFailures: 0,
    neverAnswered: 0,
    unanswered: total - finals,
    serverRssMb: server.maxRssMb,
    serverCpuPct: server.cpuPct,
    clientCpuPct: round1(((cpu.user + cpu.system) / 1000 / wallMs) * 100),
    extra: { ...figures, ...(unmatched ? { unmatched } : {}) },
  });
}

/** The issue's targets for a rush run (met or not: seat mode is measured against them too, for comparison). */
export function rushComparisons(r: RunRecord): Comparison[] {
  const f = r.extra as unknown as RushFigures;
  const row = (what: string, value: number, unit: string, target: string, met: boolean): Comparison => ({ what: `${r.label}: ${what}`, value, unit, baseline: null, baselineValue: null, ratio: null, target, met });
  const pct = (x: number | null): string => (x === null ? '–' : `${round1(x * 100)}%`);
  return [
    row(`min(U + B, seats) = ${f.expectedSuccesses} bookings made (ms after the release)`, f.allTakenMs ?? Number.NaN, 'ms', `≤ 2,000 ms, and no more bookings than that (got ${f.successes}, the last at ${f.lastSuccessMs ?? '–'} ms)`, f.allTakenMs !== null && f.allTakenMs <= 2000 && f.successes === f.expectedSuccesses),
    row('p99 latency, every request', r.latency.p99Ms, 'ms', `< 1,000 ms (p50 ${r.latency.p50Ms}, max ${r.latency.maxMs}; users' p99 ${f.userLatency.p99Ms}, scripts' ${f.scriptLatency.p99Ms}; ${r.unanswered} unanswered)`, r.latency.p99Ms < 1000 && r.unanswered === 0),
    row('overlapping bookings in SQL', f.sql.overlappingPairs, 'pairs', `0 (seats double-booked: ${f.sql.seatsDoubleBooked})`, f.sql.overlappingPairs === 0),
    row('most seats one user holds for the window', f.sql.maxSeatsPerUser, 'seats', '1', f.sql.maxSeatsPerUser === 1),
    row('success rate, scripts ÷ users', f.successRate.ratio ?? Number.NaN, '×', `≤ 1.1× (scripts ${pct(f.successRate.scripts)}, users ${pct(f.successRate.users)}; scripts hold ${f.seatsHeldByScripts} seats)`, f.successRate.ratio !== null && f.successRate.ratio <= 1.1),
  ];
}
