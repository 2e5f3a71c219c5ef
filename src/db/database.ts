// Opens the database carrel runs on (docs/operations.md, "The database"): the one at db.url when
// given, else an embedded PostgreSQL in db.embedded.dataDir that survives restarts, with a `carrel`
// database created, migrated and (on first start) seeded in it.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { Config } from '../config/schema.js';
import type { Logger } from '../obs/log.js';
import { createPool } from './pool.js';
import { migrate, seed } from './migrate.js';
import { startEmbeddedPostgres, type EmbeddedPg } from './embeddedPostgres.js';

export interface OpenDatabase {
  pool: pg.Pool;
  url: string;
  embedded: boolean;
  /** Ends the pool, then stops the embedded PostgreSQL, if any. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Apply pending migrations (serve does when db.migrateOnStart; `db migrate` always). */
  migrate: boolean;
  /** Seed a freshly initialised embedded database. */
  seedIfNew: boolean;
  /** Aborted (a signal during start-up): stop what was started, PostgreSQL included, and reject. */
  signal?: AbortSignal;
  /**
   * Use the embedded PostgreSQL a running `carrel serve` started in the data directory, on its
   * port, instead of refusing (the `db` commands beside a server); close() leaves it running.
   */
  attach?: boolean;
}

const EMBEDDED_DB = 'carrel';

export async function openDatabase(config: Readonly<Config>, log: Logger, opts: OpenOptions): Promise<OpenDatabase> {
  let embedded: EmbeddedPg | undefined;
  let url = config.db.url;
  let fresh = false;
  if (url === null) {
    const dataDir = resolve(config.db.embedded.dataDir);
    fresh = !existsSync(join(dataDir, 'PG_VERSION'));
    log.info({ dataDir, port: config.db.embedded.port, fresh }, 'starting embedded PostgreSQL');
    embedded = await startEmbeddedPostgres({
      dataDir,
      port: config.db.embedded.port,
      onLog: (line) => log.debug({ postgres: line }, 'embedded postgres'),
      // An OS user created, a directory's permissions changed: an operator should know.
      onNotice: (level, message) => log[level]({ dataDir }, message),
      signal: opts.signal,
      attach: opts.attach,
    });
    try {
      opts.signal?.throwIfAborted();
      url = await ensureDatabase(embedded.url, EMBEDDED_DB);
    } catch (err) {
      await embedded.stop();
      throw err;
    }
  }
  const pool = createPool(
    {
      url,
      poolSize: config.db.poolSize,
      connectTimeoutMs: config.db.connectTimeoutMs,
      statementTimeoutMs: config.db.statementTimeoutMs,
    },
    log,
  );
  const close = async (): Promise<void> => {
    await pool.end().catch(() => undefined);
    await embedded?.stop();
  };
  try {
    opts.signal?.throwIfAborted();
    if (opts.migrate) await migrate(pool, log);
    opts.signal?.throwIfAborted();
    if (opts.seedIfNew && fresh && config.db.embedded.seedOnFirstStart) await seed(pool, log);
    opts.signal?.throwIfAborted();
  } catch (err) {
    await close();
    throw err;
  }
  return { pool, url, embedded: embedded !== undefined, close };
}

/** Creates `name` in the server at adminUrl if missing; returns a URL pointing at it. */
export async function ensureDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  // Without a listener a server going away mid-query kills the process; the query rejects anyway.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      // A server starting beside us (serve and `db seed` at once) may create it first.
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((err: unknown) => {
        if ((err as { code?: string }).code !== '42P04') throw err; // duplicate_database
      });
    }
  } finally {
    await client.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}
