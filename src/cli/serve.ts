// `carrel serve`: opens the database (embedded when no DATABASE_URL), starts every port, prints
// how to connect, and shuts down gracefully on SIGTERM/SIGINT (DESIGN §7).
import { loadConfig } from '../config/load.js';
import { openDatabase } from '../db/database.js';
import { createLogger } from '../obs/log.js';
import { CarrelServer } from '../server.js';

export interface ServeOptions {
  config?: string;
}

export async function serve(opts: ServeOptions): Promise<void> {
  const config = loadConfig({ file: opts.config });
  const log = createLogger(config.log.level);
  const started = performance.now();
  const database = await openDatabase(config, log, { migrate: config.db.migrateOnStart, seedIfNew: true });
  let server: CarrelServer;
  try {
    server = await CarrelServer.start({ config, log, db: database.pool });
  } catch (err) {
    await database.close();
    throw err;
  }
  const host = config.host;
  log.info(
    { ports: server.ports, db: database.embedded ? 'embedded' : 'external', startupMs: Math.round(performance.now() - started) },
    'carrel is up',
  );
  const rpcAt = `${host}:${server.ports.rpc}`;
  process.stderr.write(
    [
      '',
      `carrel ${server.info().version} is up${database.embedded ? ' (embedded PostgreSQL)' : ''}`,
      `  rpc      ${rpcAt}   framed JSON RPC`,
      `  http     ${host}:${server.ports.http}   /healthz /readyz /metrics`,
      '',
      `try:  npx carrel call PING${server.ports.rpc === 9000 ? '' : ` --server ${rpcAt}`}`,
      '      npx carrel --help',
      // One line for scripts and tests that start carrel on port 0.
      `ports ${JSON.stringify(server.ports)}`,
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const hardStop = setTimeout(() => {
      log.error('shutdown did not finish in time; exiting');
      process.exit(1);
    }, config.shutdown.graceMs + 5_000);
    hardStop.unref();
    void (async () => {
      await server.shutdown();
      await database.close();
      log.info('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
