// What the load generator measures: a carrel it starts itself (a child process over a fresh
// benchmark database, the default, so one command reproduces every figure), or one already
// running elsewhere (--server). Also starts the echo baseline as a process of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import pg from 'pg';
import { migrate, seed } from '../src/db/migrate.js';
import { silentLogger } from '../src/obs/log.js';
import { projectRoot } from '../src/paths.js';
import type { EmbeddedPg } from '../src/db/embeddedPostgres.js';
import { configSchema } from '../src/config/schema.js';

export interface Ports {
  rpc: number;
  sensor: number;
  pubsub: number;
  http: number;
}

export interface Target {
  host: string;
  ports: Ports;
  /** The benchmark database, when the target was started here (pgbench runs against it too). */
  dbUrl: string | undefined;
  /** Server process id when it runs on this machine and we know it. */
  pid: number | undefined;
  describe: string;
  /** Resident memory of the server process in bytes (via /proc, else the metrics port). */
  rssBytes(): Promise<number | null>;
  /** CPU time the server process has used so far, in ms (null when unknown). */
  cpuMs(): number | null;
  stop(): Promise<void>;
}

/** The branch the booking scenarios use: open around the clock, many seats, nobody else's. */
export const BENCH_BRANCH = 'Bench Library';
export const BENCH_SEATS = 2000;
/**
 * The database `carrel bench` drops and makes afresh; CARREL_BENCH_DB names another, so that two
 * benches on one PostgreSQL (two checkouts measuring before and after a change) do not drop each
 * other's. A plain identifier only: it goes into DROP and CREATE DATABASE as it is.
 */
export const BENCH_DB = benchDatabaseName(process.env.CARREL_BENCH_DB);

export function benchDatabaseName(name: string | undefined): string {
  if (name === undefined || name === '') return 'carrel_bench';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`CARREL_BENCH_DB must be a lower-case identifier (letters, digits, _), got ${JSON.stringify(name)}`);
  return name;
}
/** The branch the `rush` scenario books at its opening: open around the clock, nothing else on it. */
export const RUSH_BRANCH = 'Rush Library';
export const RUSH_SEATS = 2000;

/** The only hosts the scenarios that flood (`abuse`, `rush`) may aim at. */
export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1';
}

/**
 * What the spawned server's config changes from the shipped one, and why: these runs measure the
 * request path, not the policies. Every other setting (rate limits, login throttle, pool, limits)
 * is the shipped default.
 */
export const BENCH_CONFIG_OVERRIDES = {
  // The booking scenarios make tens of thousands of bookings from a few hundred users; the shipped
  // per-user limits (3 active, 4 h a day) would turn nearly all of them into FAILED_PRECONDITION.
  // The checks still run on every booking; only their thresholds are raised.
  rules: { maxActivePerUser: 1_000_000, dailyQuotaMinutes: 1_000_000, weeklyQuotaMinutes: 1_000_000 },
  // One address stands for thousands of clients here: limits kept per address, and those for
  // anonymous reads, would measure the limiter instead of the request path (the `abuse` scenario
  // measures them). Per-connection and per-user limits stay as shipped.
  rateLimit: { rules: configSchema.parse({}).rateLimit.rules.filter((r) => r.per !== 'address' && r.callers !== 'anonymous') },
  // Users are registered before the measured window (the rush registers 5,050); hashing at cost
  // 10, or registrations held to a quarter of the password workers, would only slow set-up.
  auth: { bcryptCost: 4, registerWorkerShare: 0.5 },
  // One line an hour instead of one a minute: nothing to read in a two-minute run.
  sla: { reportEveryMs: 3_600_000 },
  log: { level: 'warn' },
};

export function readProcRss(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function readProcCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat; clock ticks are 100 per second on Linux.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

async function metricsRss(host: string, httpPort: number): Promise<number | null> {
  try {
    const res = await fetch(`http://${host}:${httpPort}/metrics`, { signal: AbortSignal.timeout(2000) });
    const m = /^carrel_process_resident_memory_bytes (\d+(?:\.\d+)?)/m.exec(await res.text());
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function externalTarget(host: string, ports: Ports, pid?: number): Target {
  return {
    host,
    ports,
    dbUrl: undefined,
    pid,
    describe: `carrel at ${host}:${ports.rpc}`,
    rssBytes: async () => (pid ? readProcRss(pid) : metricsRss(host, ports.http)),
    cpuMs: () => (pid ? readProcCpuMs(pid) : null),
    stop: async () => undefined,
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A PostgreSQL to hold the benchmark database: DATABASE_URL's, else an embedded one. */
export interface BenchPostgres {
  adminUrl: string;
  embedded: boolean;
  stop(): Promise<void>;
}

export async function benchPostgres(): Promise<BenchPostgres> {
  const url = process.env.DATABASE_URL;
  if (url) return { adminUrl: url, embedded: false, stop: async () => undefined };
  const { startEmbeddedPostgres } = await import('../src/db/embeddedPostgres.js');
  const dataDir = join(projectRoot, '.carrel', 'bench-pgdata');
  mkdirSync(dataDir, { recursive: true });
  const pgServer: EmbeddedPg = await startEmbeddedPostgres({ dataDir, port: await freePort() });
  return { adminUrl: pgServer.url, embedded: true, stop: () => pgServer.stop() };
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Adds a branch (the bench branch by default): open around the clock in UTC, `seats` seats with contiguous ids. */
export async function addBenchBranch(pool: pg.Pool, seats = BENCH_SEATS, name = BENCH_BRANCH): Promise<number> {
  const allDay = JSON.stringify(
    Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, { open: '00:00', close: '24:00' }])),
  );
  const b = await pool.query<{ id: number }>(`INSERT INTO branches (name, timezone, hours) VALUES ($1, 'UTC', $2) RETURNING id`, [name, allDay]);
  const branchId = b.rows[0]!.id;
  await pool.query(
    `INSERT INTO seats (branch_id, area, label, has_power, has_monitor)
     SELECT $1, 'Hall ' || (n / 100 + 1), 'B-' || lpad(n::text, 4, '0'), n % 2 = 0, n % 5 = 0
     FROM generate_series(0, $2 - 1) AS n ORDER BY n`,
    [branchId, seats],
  );
  return branchId;
}

/** Past bookings the history adds: what a branch has after some weeks of use. */
export const BENCH_HISTORY = { users: 1000, perUser: 50 };

/**
 * A month of history: BENCH_HISTORY.users past users with perUser completed, cancelled or
 * no-show bookings each on the bench branch, and bookings ahead; the caller then ANALYZEs. A
 * database measured empty would be planned as empty (see db/migrations/008): a library's has
 * history, and PostgreSQL's statistics of it.
 */
export async function addHistory(pool: pg.Pool, h = BENCH_HISTORY): Promise<void> {
  await pool.query(
    `INSERT INTO users (student_id, name, password_hash)
     SELECT 'history-' || i, 'Past User ' || i, 'x' FROM generate_series(1, $1) AS i`,
    [h.users],
  );
  await pool.query(
    `INSERT INTO reservations (seat_id, user_id, during, hold, status, created_at, updated_at)
     SELECT s.first + (u.n * $1 + k) % s.n, u.id, r.during, r.during,
            (ARRAY['COMPLETED', 'COMPLETED', 'COMPLETED', 'CANCELLED', 'NO_SHOW'])[1 + (u.n + k) % 5],
            lower(r.during) - interval '1 day', upper(r.during)
     FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users WHERE student_id LIKE 'history-%') u
     CROSS JOIN generate_series(0, $1 - 1) AS k
     CROSS JOIN (SELECT min(s.id) AS first, count(*) AS n FROM seats s JOIN branches b ON b.id = s.branch_id WHERE b.name = $2) s
     CROSS JOIN LATERAL (SELECT tstzrange(date_trunc('hour', now()) - make_interval(days => 1 + (k % 30), hours => (u.n % 12)::int),
                                          date_trunc('hour', now()) - make_interval(days => 1 + (k % 30), hours => (u.n % 12)::int) + interval '1 hour') AS during) r`,
    [h.perUser, BENCH_BRANCH],
  );
  // And bookings ahead, as a library always has: three a seat, 14-16 days out, past every
  // slot the booking runs and the pgbench baseline use, so the active rows have statistics.
  await pool.query(
    `INSERT INTO reservations (seat_id, user_id, during, hold, status, created_at, updated_at)
     SELECT s.id, u.first + (s.id * 3 + d) % u.n, r.during, r.during, 'CONFIRMED', now(), now()
     FROM seats s JOIN branches b ON b.id = s.branch_id
     CROSS JOIN (SELECT min(id) AS first, count(*) AS n FROM users WHERE student_id LIKE 'history-%') u
     CROSS JOIN generate_series(14, 16) AS d
     CROSS JOIN LATERAL (SELECT tstzrange(date_trunc('day', now()) + make_interval(days => d, hours => 10),
                                          date_trunc('day', now()) + make_interval(days => d, hours => 11)) AS during) r
     WHERE b.name = $1`,
    [BENCH_BRANCH],
  );
}

/** Drops and recreates the benchmark database: migrated, seeded, the bench and rush branches, a month of history, analyzed. */
export async function freshBenchDatabase(adminUrl: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${BENCH_DB} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${BENCH_DB}`);
    // Per-function timings for whoever reads pg_stat_user_functions after a run.
    await admin.query(`ALTER DATABASE ${BENCH_DB} SET track_functions = 'pl'`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, BENCH_DB);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    await migrate(pool, silentLogger);
    await seed(pool, silentLogger);
    await addBenchBranch(pool);
    await addBenchBranch(pool, RUSH_SEATS, RUSH_BRANCH);
    await addHistory(pool);
    await pool.query('ANALYZE');
  } finally {
    await pool.end();
  }
  return url;
}

export interface SpawnOptions {
  dbUrl: string;
  /** Deep-merged over BENCH_CONFIG_OVERRIDES. */
  config?: Record<string, unknown>;
  /** Where the server's stdout (JSON log lines) goes. */
  logFile: string;
  workers?: number;
  redisUrl?: string;
  /** Write a V8 CPU profile of the server here (node --cpu-prof), read with DevTools or speedscope. */
  cpuProfileDir?: string;
}

/** Starts `carrel serve` as a child process on free ports and waits for its banner. */
export async function spawnCarrel(opts: SpawnOptions): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'carrel-bench-'));
  const configFile = join(dir, 'config.json');
  const config = deepMerge(
    { ...BENCH_CONFIG_OVERRIDES, ports: { rpc: 0, sensor: 0, pubsub: 0, http: 0 }, db: { url: opts.dbUrl } },
    opts.config ?? {},
  );
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: opts.dbUrl, CARREL_CONFIG: configFile };
  delete env.LOG_LEVEL;
  if (opts.redisUrl) env.REDIS_URL = opts.redisUrl;
  else delete env.REDIS_URL;
  const prof = opts.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`] : [];
  const args = [...prof, join(projectRoot, 'bin', 'carrel.js'), 'serve', '-c', configFile];
  if (opts.workers && opts.workers > 1) args.push('--workers', String(opts.workers));
  const child: ChildProcess = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logChunks: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => logChunks.push(c));
  const ports = await new Promise<Ports>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`carrel did not start within 60 s:\n${err}`)), 60_000);
    child.stderr!.on('data', (c: Buffer) => {
      // Kept with the log: a crash's stack is written here.
      logChunks.push(c);
      err += c.toString();
      const m = /^ports (\{.*\})$/m.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(JSON.parse(m[1]!) as Ports);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`carrel exited with ${code} before it was up:\n${err}`));
    });
  });
  const pid = child.pid!;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    writeFileSync(opts.logFile, Buffer.concat(logChunks));
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    host: '127.0.0.1',
    ports,
    dbUrl: opts.dbUrl,
    pid,
    describe: `carrel (child process ${pid})`,
    rssBytes: async () => readProcRss(pid),
    cpuMs: () => readProcCpuMs(pid),
    stop,
  };
}

/** Starts the echo baseline as its own process (answering non-PING methods with `cannedResult`, JSON text). */
export async function spawnEcho(cannedResult?: string): Promise<Target> {
  const script = join(projectRoot, 'dist', 'loadtest', 'echoServer.js');
  let dir: string | undefined;
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (cannedResult !== undefined) {
    dir = mkdtempSync(join(tmpdir(), 'carrel-echo-'));
    env.ECHO_RESULT_FILE = join(dir, 'result.json');
    writeFileSync(env.ECHO_RESULT_FILE, cannedResult);
  }
  const child = spawn(process.execPath, [script, '0'], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const [port, sensor, pubsub] = await new Promise<[number, number, number]>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /echo listening (\d+) (\d+) (\d+)/.exec(out);
      if (m) resolve([Number(m[1]), Number(m[2]), Number(m[3])]);
    });
    child.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
  });
  const pid = child.pid!;
  return {
    host: '127.0.0.1',
    ports: { rpc: port, sensor, pubsub, http: 0 },
    dbUrl: undefined,
    pid,
    describe: `echo baseline${cannedResult === undefined ? '' : ` with a ${Buffer.byteLength(cannedResult)}-byte canned result`} (process ${pid})`,
    rssBytes: async () => readProcRss(pid),
    cpuMs: () => readProcCpuMs(pid),
    stop: async () => {
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      prev && typeof prev === 'object' && !Array.isArray(prev) && v && typeof v === 'object' && !Array.isArray(v)
        ? deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
