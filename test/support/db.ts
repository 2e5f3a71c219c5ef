// A fresh database per test file, cloned from the run's migrated and seeded template.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createPool } from '../../src/db/pool.js';
import { Db } from '../../src/db/db.js';
import { readDeploymentId } from '../../src/db/deployment.js';
import { migrate, seed } from '../../src/db/migrate.js';
import { silentLogger } from '../../src/obs/log.js';

export interface TestDatabase {
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function freshDatabase(poolSize = 10): Promise<TestDatabase> {
  return createDatabase(poolSize, 'clone');
}

/**
 * A database created from nothing, migrated and seeded as a new deployment's is: unlike a clone of
 * the template, it has an identity of its own (docs/redis.md), as a recreated database has.
 */
export async function newDatabase(poolSize = 10): Promise<TestDatabase> {
  const db = await createDatabase(poolSize, 'empty');
  await migrate(db.pool, silentLogger);
  await seed(db.pool, silentLogger);
  return db;
}

async function createDatabase(poolSize: number, from: 'clone' | 'empty'): Promise<TestDatabase> {
  const adminUrl = inject('pgAdminUrl');
  const template = inject('pgTemplate');
  const name = `carrel_t${randomBytes(4).toString('hex')}_${template.slice('carrel_tpl_'.length)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(from === 'clone' ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const pool = createPool({ url, poolSize, connectTimeoutMs: 5000, statementTimeoutMs: 30000 }, silentLogger);
  return {
    url,
    pool,
    drop: async () => {
      await pool.end().catch(() => undefined);
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Where the instances over this database keep their Redis keys: `<keyPrefix>:<deployment id>` (docs/redis.md). */
export async function deploymentKeys(db: pg.Pool, keyPrefix: string): Promise<string> {
  return `${keyPrefix}:${await readDeploymentId(new Db(db))}`;
}
