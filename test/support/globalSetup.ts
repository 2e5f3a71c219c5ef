// One PostgreSQL per test run (STYLE, Tests): the machine's own when DATABASE_URL is set (CI),
// else an embedded one in a cache directory. A template database is migrated and seeded once;
// each test file clones its own fresh database from it (see test/support/db.ts).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { createPool } from '../../src/db/pool.js';
import { migrate, seed } from '../../src/db/migrate.js';
import type { EmbeddedPg } from '../../src/db/embeddedPostgres.js';
import { silentLogger } from '../../src/obs/log.js';
import { projectRoot } from '../../src/paths.js';
import { alive, freePort } from './processes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplate: string;
  }
}

let embedded: EmbeddedPg | undefined;
let adminUrl = '';
let template = '';

export async function setup(project: TestProject): Promise<void> {
  if (process.env.DATABASE_URL) {
    adminUrl = process.env.DATABASE_URL;
  } else {
    const dataDir = join(projectRoot, 'node_modules', '.cache', 'carrel-test-pg');
    mkdirSync(dataDir, { recursive: true });
    const { startEmbeddedPostgres } = await import('../../src/db/embeddedPostgres.js');
    embedded = await startEmbeddedPostgres({ dataDir, port: await freePort() });
    adminUrl = embedded.url;
    process.stderr.write(`tests: DATABASE_URL is unset, using embedded PostgreSQL at ${adminUrl}\n`);
  }
  template = `carrel_tpl_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await dropStale(admin);
    await admin.query(`CREATE DATABASE ${template}`);
  } finally {
    await admin.end();
  }
  const pool = createPool({ url: withDatabase(adminUrl, template), poolSize: 2, connectTimeoutMs: 5000, statementTimeoutMs: 30000 }, silentLogger);
  try {
    await migrate(pool, silentLogger);
    await seed(pool, silentLogger);
  } finally {
    await pool.end();
  }
  project.provide('pgAdminUrl', adminUrl);
  project.provide('pgTemplate', template);
}

export async function teardown(): Promise<void> {
  if (adminUrl) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await dropStale(admin, process.pid);
    } finally {
      await admin.end();
    }
  }
  await embedded?.stop();
}

/**
 * Drops test databases whose run has ended (killed runs leave them behind); databases of runs
 * still alive (another checkout testing against the same server) are left alone.
 */
async function dropStale(admin: pg.Client, onlyPid?: number): Promise<void> {
  const rows = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname ~ '^carrel_t.*_[0-9]+$'");
  for (const { datname } of rows.rows) {
    const pid = Number(datname.slice(datname.lastIndexOf('_') + 1));
    const mine = pid === process.pid;
    if (onlyPid !== undefined ? pid !== onlyPid : mine || alive(pid)) continue;
    await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  }
}

export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}
