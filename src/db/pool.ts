// The pg Pool, sized from config, with the error listeners that keep a client's failure (a
// restarted PostgreSQL) from killing the process, and a statement timeout on every session.
import pg from 'pg';
import type { Logger } from '../obs/log.js';

// timestamptz comes back as a Date (pg's default); int8 ids fit in a JS number in practice,
// and returning them as numbers keeps the wire shape `id: 12`, not `id: "12"`.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export interface PoolOptions {
  url: string;
  poolSize: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  applicationName?: string;
}

export function createPool(opts: PoolOptions, log: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: opts.statementTimeoutMs,
    application_name: opts.applicationName ?? 'carrel',
  });
  // pg-pool listens for 'error' only on idle clients. A checked-out one (a transaction in
  // Db.transaction, the lifecycle's lock session, migrate) whose server goes away emits
  // 'error' with nobody listening — 57P01 when PostgreSQL is stopped — and that kills the
  // process. So every client gets a listener for life, here, the one place clients are made;
  // whoever holds it still sees the failure as its query's rejection.
  pool.on('connect', (client) => {
    let failed = false; // a dying connection emits twice (57P01, then "terminated"): log it once
    client.on('error', (err: Error & { code?: string }) => {
      if (failed) return;
      failed = true;
      log.warn({ err: err.message, code: err.code }, 'database connection failed');
    });
  });
  // Kept so pg-pool's own 'error' (an idle client failed, already logged above) has a listener.
  pool.on('error', () => undefined);
  return pool;
}
