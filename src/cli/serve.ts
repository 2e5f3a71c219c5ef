// `carrel serve`: opens the database (embedded when no DATABASE_URL), starts every port, prints
// how to connect, and shuts down gracefully on SIGTERM/SIGINT (docs/operations.md). With --workers N > 1
// the process becomes a node:cluster primary: it migrates once, then forks N workers that share
// the ports and talk through Redis (so N > 1 needs REDIS_URL).
import cluster from 'node:cluster';
import type { Config } from '../config/schema.js';
import { DEFAULT_JWT_SECRET, loadConfig } from '../config/load.js';
import { openDatabase, type OpenDatabase } from '../db/database.js';
import type { Logger } from '../obs/log.js';
import { commandLogger, resolveLogFormat } from './logging.js';
import { CarrelServer, type BoundPorts } from '../server.js';
import { VERSION } from '../version.js';

export interface ServeOptions {
  config?: string;
  workers?: number;
}

interface UpMessage {
  type: 'carrel:up';
  ports: BoundPorts;
}

export async function serve(opts: ServeOptions): Promise<void> {
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw Object.assign(new Error(`--workers must be an integer from 1 to 64, not ${String(opts.workers)}`), { exitCode: 2 });
  }
  if (workers > 1 && cluster.isPrimary) return servePrimary(opts, workers);
  return serveOne(opts);
}

async function serveOne(opts: ServeOptions): Promise<void> {
  const config = loadConfig({ file: opts.config });
  const log = commandLogger(config);
  const started = performance.now();
  // A cluster worker's primary has migrated already and handed it DATABASE_URL.
  const worker = cluster.isWorker;
  if (!worker) warnAtStart(config, log);
  // The signals are handled from here on, before anything is started: a SIGTERM while the
  // embedded PostgreSQL is still coming up used to kill node outright and leave the postmaster
  // running. Now it aborts the start-up, which stops whatever it had started.
  const startup = new AbortController();
  let running: { server: CarrelServer; database: OpenDatabase } | undefined;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    // The whole stop — draining, closing, the pool, the embedded PostgreSQL — fits in the grace
    // (docs/operations.md); server.shutdown keeps the last part of it for database.close.
    const signalledAt = Date.now();
    const deadline = signalledAt + config.shutdown.graceMs;
    log.info({ signal, graceMs: config.shutdown.graceMs, starting: running === undefined }, 'shutting down');
    const hardStop = setTimeout(() => {
      log.error({ graceMs: config.shutdown.graceMs }, 'shutdown did not finish within shutdown.graceMs; exiting');
      process.exit(1);
    }, config.shutdown.graceMs);
    hardStop.unref();
    if (!running) {
      startup.abort(new StartupAborted(signal));
      return; // the start-up path below stops what it started, and exits
    }
    const { server, database } = running;
    void (async () => {
      await server.shutdown(deadline);
      // Past the deadline the hard stop exits without waiting; an embedded PostgreSQL, in a
      // process group of its own, then finishes its fast shutdown by itself.
      await database.close();
      log.info({ tookMs: Date.now() - signalledAt }, 'stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  let database: OpenDatabase | undefined;
  let server: CarrelServer | undefined;
  try {
    database = await openDatabase(config, log, { migrate: config.db.migrateOnStart && !worker, seedIfNew: !worker, signal: startup.signal });
    server = await CarrelServer.start({ config, log, db: database.pool });
    startup.signal.throwIfAborted();
  } catch (err) {
    await server?.shutdown();
    await database?.close();
    if (!startup.signal.aborted) throw err;
    log.info({ signal: (startup.signal.reason as StartupAborted).signal }, 'stopped during start-up');
    process.exit(0);
  }
  running = { server, database };
  log.info(
    { ports: server.ports, db: database.embedded ? 'embedded' : 'external', bus: config.redis.url ? 'redis' : 'local', startupMs: Math.round(performance.now() - started) },
    'carrel is up',
  );
  if (worker) process.send?.({ type: 'carrel:up', ports: server.ports } satisfies UpMessage);
  else process.stderr.write(banner(config, server.ports, database.embedded ? ' (embedded PostgreSQL)' : ''));
}

/**
 * What an operator must hear about before anything starts, in every mode: the shipped JWT
 * secret (which NODE_ENV=production refuses at load, src/config/load.ts) lets anyone who has read
 * the repository sign a token for any account. One log line for the log pipeline, one stderr
 * line for the person at the terminal.
 */
export function startupWarnings(config: Readonly<Config>): string[] {
  const warnings: string[] = [];
  if (config.auth.jwtSecret === DEFAULT_JWT_SECRET) {
    warnings.push('auth.jwtSecret is the shipped development secret: anyone can sign a token for any account. Set JWT_SECRET (or auth.jwtSecret) to a secret of your own; NODE_ENV=production refuses to start with it.');
  }
  return warnings;
}

function warnAtStart(config: Readonly<Config>, log: Logger): void {
  // A pretty log on the same terminal as stderr has just said it, to the same person.
  const sameTerminal = resolveLogFormat(config.log.format, process.stdout.isTTY === true) === 'pretty' && process.stderr.isTTY === true;
  for (const warning of startupWarnings(config)) {
    log.warn(warning);
    if (!sameTerminal) process.stderr.write(`carrel: warning: ${warning}\n`);
  }
}

/** Why a start-up was abandoned: a signal arrived before the server was up. */
class StartupAborted extends Error {
  constructor(readonly signal: string) {
    super(`start-up interrupted by ${signal}`);
  }
}

async function servePrimary(opts: ServeOptions, workers: number): Promise<void> {
  const config = loadConfig({ file: opts.config });
  if (config.redis.url === null) {
    throw Object.assign(
      new Error(`--workers ${workers} needs Redis so the workers share events and sequence numbers: set REDIS_URL (or redis.url in the config)`),
      { exitCode: 2 },
    );
  }
  const log = commandLogger(config);
  warnAtStart(config, log);
  let stopping = false;
  // As in serveOne: a signal before the database is open aborts its start-up.
  const startup = new AbortController();
  const early = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, starting: true }, 'shutting down');
    setTimeout(() => process.exit(1), config.shutdown.graceMs).unref();
    startup.abort(new StartupAborted(signal));
  };
  const onEarlyTerm = (): void => early('SIGTERM');
  const onEarlyInt = (): void => early('SIGINT');
  process.on('SIGTERM', onEarlyTerm);
  process.on('SIGINT', onEarlyInt);
  // Migrate (and start the embedded PostgreSQL) once, here; the workers only connect.
  let database: OpenDatabase | undefined;
  try {
    database = await openDatabase(config, log, { migrate: config.db.migrateOnStart, seedIfNew: true, signal: startup.signal });
    startup.signal.throwIfAborted();
  } catch (err) {
    await database?.close();
    if (!startup.signal.aborted) throw err;
    log.info({ signal: (startup.signal.reason as StartupAborted).signal }, 'stopped during start-up');
    process.exit(0);
  }
  process.removeListener('SIGTERM', onEarlyTerm);
  process.removeListener('SIGINT', onEarlyInt);
  let announced = false;
  const fork = (): void => {
    const w = cluster.fork({ DATABASE_URL: database.url });
    w.on('message', (m: UpMessage) => {
      if (m?.type !== 'carrel:up' || announced) return;
      announced = true;
      process.stderr.write(banner(config, m.ports, `${database.embedded ? ' (embedded PostgreSQL)' : ''}, ${workers} workers over Redis`));
    });
  };
  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    log.error({ worker: w.process.pid, code, signal }, 'worker died; starting another');
    setTimeout(fork, 1_000).unref();
  });
  for (let i = 0; i < workers; i++) fork();

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers }, 'shutting down workers');
    const hardStop = setTimeout(() => process.exit(1), config.shutdown.graceMs + 10_000);
    hardStop.unref();
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    const waitAll = (): void => {
      if (Object.keys(cluster.workers ?? {}).length > 0) return void setTimeout(waitAll, 50);
      void database.close().then(() => process.exit(0));
    };
    waitAll();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * What `serve` prints when it is up. Every `try:` command works as printed, whatever the ports:
 * each names the addresses that differ from the client defaults (the simulator lists a
 * branch's seats on the subscriber port, so it gets --pubsub too).
 */
export function banner(config: Readonly<Config>, ports: BoundPorts, note: string): string {
  const host = config.host;
  const at = (p: number) => `${host}:${p}`;
  const flag = (p: number, dflt: number) => (p === dflt ? '' : ` --server ${at(p)}`);
  const simFlags = ports.sensor === 9001 && ports.pubsub === 9002 ? '' : ` --server ${at(ports.sensor)} --pubsub ${at(ports.pubsub)}`;
  return [
    '',
    `carrel ${VERSION} is up${note}`,
    `  rpc      ${at(ports.rpc)}   framed JSON RPC`,
    `  sensor   ${at(ports.sensor)}   occupancy sensors (key: sensors.keys / sensor_keys)`,
    `  pubsub   ${at(ports.pubsub)}   live seat events for subscribers`,
    `  http     ${at(ports.http)}   /healthz /readyz /metrics, WebSockets /ws/rpc /ws/live`,
    '',
    `try:  npx carrel call PING${flag(ports.rpc, 9000)}`,
    `      npx carrel watch 'Main Library'${flag(ports.pubsub, 9002)}`,
    `      npx carrel sensors simulate --branch 'Main Library'${simFlags}`,
    '      npx carrel --help',
    // One line for scripts and tests that start carrel on port 0.
    `ports ${JSON.stringify(ports)}`,
    '',
  ].join('\n');
}
