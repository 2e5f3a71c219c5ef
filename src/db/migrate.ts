// Numbered SQL migrations from db/migrations, applied in order, each in its own transaction
// and recorded in schema_migrations; seed files from db/seed, idempotent by construction.
// An advisory lock makes concurrent starters (cluster workers) take turns.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type pg from 'pg';
import type { Logger } from '../obs/log.js';
import { projectRoot } from '../paths.js';
import { SessionLock } from './lockKeys.js';

export interface Migration {
  version: number;
  name: string;
  file: string;
}

export function listSqlFiles(dir: string): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d+_.+\.sql$/.test(f));
  const migrations = files.map((file) => ({
    version: Number(file.slice(0, file.indexOf('_'))),
    name: file.slice(file.indexOf('_') + 1, -'.sql'.length),
    file: join(dir, file),
  }));
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) {
      throw new Error(`two files in ${dir} share number ${migrations[i]!.version}`);
    }
  }
  return migrations;
}

export const migrationsDir = (): string => join(projectRoot, 'db', 'migrations');
export const seedDir = (): string => join(projectRoot, 'db', 'seed');

/** Applies pending migrations; returns the ones applied now. */
export async function migrate(pool: pg.Pool, log: Logger, dir = migrationsDir()): Promise<Migration[]> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [SessionLock.migrate]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
    );
    const applied: Migration[] = [];
    for (const m of listSqlFiles(dir)) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(readFileSync(m.file, 'utf8'));
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${basename(m.file)} failed: ${(err as Error).message}`);
      }
      log.info({ version: m.version, name: m.name }, 'migration applied');
      applied.push(m);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [SessionLock.migrate]).catch(() => undefined);
    client.release();
  }
}

/** Runs every seed file in order, in one transaction. Safe to run again. */
export async function seed(pool: pg.Pool, log: Logger, dir = seedDir()): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    for (const s of listSqlFiles(dir)) await client.query(readFileSync(s.file, 'utf8'));
    await client.query('COMMIT');
    log.info('seed data applied');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
