// The database's schema, as `carrel serve` (db.migrateOnStart) and `carrel db migrate` bring it up
// to date (docs/operations.md, "The database"):
//
// 1. numbered migrations from db/migrations (NNN_name.sql), each applied once, in order, in its
//    own transaction, and recorded in schema_migrations: tables, indexes, data;
// 2. then every SQL function from db/functions, one file per function (with its overloads), all
//    of them every time, in one transaction: each file says CREATE OR REPLACE, so this is the
//    one place a function's definition lives, whatever migration a database was created at.
//
// Seed files from db/seed are idempotent by construction. A session advisory lock
// (SessionLock.migrate) makes concurrent starters (cluster workers, instances) take turns; it
// also keeps two from replacing one function at once, which PostgreSQL refuses.
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

/** The SQL function files of a directory, by name. */
export function listFunctionFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => join(dir, f));
}

export const migrationsDir = (): string => join(projectRoot, 'db', 'migrations');
export const functionsDir = (): string => join(projectRoot, 'db', 'functions');
export const seedDir = (): string => join(projectRoot, 'db', 'seed');

export interface SchemaDirs {
  migrations?: string;
  functions?: string;
}

/** Applies pending migrations, then every SQL function; returns the migrations applied now. */
export async function migrate(pool: pg.Pool, log: Logger, dirs: SchemaDirs = {}): Promise<Migration[]> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [SessionLock.migrate]);
    const applied = await applyMigrations(client, log, dirs.migrations ?? migrationsDir());
    await applyFunctions(client, log, dirs.functions ?? functionsDir());
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [SessionLock.migrate]).catch(() => undefined);
    client.release();
  }
}

async function applyMigrations(client: pg.PoolClient, log: Logger, dir: string): Promise<Migration[]> {
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
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
}

async function applyFunctions(client: pg.PoolClient, log: Logger, dir: string): Promise<void> {
  const files = listFunctionFiles(dir);
  await client.query('BEGIN');
  // The files go in name order, and one function may call another stated in a later file. So
  // every file is applied twice: first with bodies unchecked, so that each function exists, then
  // checked, with every function there (a body that does not compile still fails the file).
  for (const check of ['off', 'on']) {
    await client.query(`SET LOCAL check_function_bodies = ${check}`);
    for (const file of files) {
      try {
        await client.query(readFileSync(file, 'utf8'));
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`SQL function file ${basename(file)} failed: ${(err as Error).message}`);
      }
    }
  }
  await client.query('COMMIT');
  log.info({ files: files.map((f) => basename(f)) }, 'SQL functions applied');
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
