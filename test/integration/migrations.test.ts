import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createPool } from '../../src/db/pool.js';
import { listSqlFiles, migrate, migrationsDir, seed } from '../../src/db/migrate.js';
import { silentLogger } from '../../src/obs/log.js';
import { withDatabase } from '../support/db.js';

// An empty database (not the template) so the migrations run from nothing.
const name = `carrel_tm${randomBytes(4).toString('hex')}_${inject('pgTemplate').slice('carrel_tpl_'.length)}`;
let pool: pg.Pool;

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  pool = createPool({ url: withDatabase(inject('pgAdminUrl'), name), poolSize: 4, connectTimeoutMs: 5000, statementTimeoutMs: 30000 }, silentLogger);
});
afterAll(async () => {
  await pool.end();
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
});

describe('migrations and seed', () => {
  it('apply every numbered file in order, record each, and apply nothing the second time', async () => {
    const files = listSqlFiles(migrationsDir());
    const applied = await migrate(pool, silentLogger);
    expect(applied.map((m) => m.version)).toEqual(files.map((f) => f.version));
    const rows = await pool.query('SELECT version, name FROM schema_migrations ORDER BY version');
    expect(rows.rows.map((r) => r.version)).toEqual(files.map((f) => f.version));
    expect(await migrate(pool, silentLogger)).toEqual([]);
  });

  it('concurrent migrators take turns and apply each migration once', async () => {
    const results = await Promise.all([migrate(pool, silentLogger), migrate(pool, silentLogger)]);
    expect(results.flat()).toEqual([]);
  });

  it('a failing migration rolls back and names itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carrel-mig-'));
    writeFileSync(join(dir, '001_ok.sql'), 'CREATE TABLE mig_probe (id int);');
    writeFileSync(join(dir, '002_broken.sql'), 'CREATE TABLE mig_probe2 (id int); SELECT * FROM no_such_table;');
    const other = `carrel_tm${randomBytes(4).toString('hex')}_${inject('pgTemplate').slice('carrel_tpl_'.length)}`;
    await admin((c) => c.query(`CREATE DATABASE ${other}`));
    const p = createPool({ url: withDatabase(inject('pgAdminUrl'), other), poolSize: 2, connectTimeoutMs: 5000, statementTimeoutMs: 30000 }, silentLogger);
    try {
      await expect(migrate(p, silentLogger, { migrations: dir })).rejects.toThrow(/002_broken/);
      const tables = await p.query("SELECT tablename FROM pg_tables WHERE tablename LIKE 'mig_probe%' ORDER BY 1");
      expect(tables.rows.map((r) => r.tablename)).toEqual(['mig_probe']);
      expect((await p.query('SELECT version FROM schema_migrations')).rows).toEqual([{ version: 1 }]);
    } finally {
      await p.end();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${other} WITH (FORCE)`));
    }
  });

  it('seed gives 3 branches with timezones and hours, 150+ seats with flags, an admin, and is idempotent', async () => {
    await seed(pool, silentLogger);
    const count = async () =>
      (await pool.query(`SELECT
        (SELECT count(*) FROM branches)::int AS branches,
        (SELECT count(*) FROM seats)::int AS seats,
        (SELECT count(*) FROM seats WHERE has_power)::int AS powered,
        (SELECT count(*) FROM seats WHERE has_monitor)::int AS monitors,
        (SELECT count(DISTINCT area) FROM seats)::int AS areas,
        (SELECT count(*) FROM users WHERE role = 'admin')::int AS admins,
        (SELECT count(*) FROM users)::int AS users,
        (SELECT count(*) FROM sensor_keys)::int AS keys,
        (SELECT count(DISTINCT timezone) FROM branches)::int AS timezones`)).rows[0];
    const first = await count();
    expect(first.branches).toBe(3);
    expect(first.timezones).toBe(3);
    expect(first.seats).toBeGreaterThanOrEqual(150);
    expect(first.powered).toBeGreaterThan(0);
    expect(first.monitors).toBeGreaterThan(0);
    expect(first.areas).toBeGreaterThanOrEqual(6);
    expect(first.admins).toBe(1);
    expect(first.keys).toBe(1);
    await seed(pool, silentLogger);
    expect(await count()).toEqual(first);
  });

  it('the exclusion constraint refuses overlapping active bookings and allows back-to-back ones', async () => {
    const seat = (await pool.query('SELECT id FROM seats ORDER BY id LIMIT 1')).rows[0].id;
    const user = (await pool.query("SELECT id FROM users WHERE student_id = 's1001'")).rows[0].id;
    const insert = (start: string, end: string, status = 'CONFIRMED') =>
      pool.query(
        `INSERT INTO reservations (seat_id, user_id, during, hold, status) VALUES ($1, $2, tstzrange($3, $4, '[)'), tstzrange($3, $4, '[)'), $5)`,
        [seat, user, start, end, status],
      );
    await insert('2030-01-01T10:00Z', '2030-01-01T11:00Z');
    await insert('2030-01-01T11:00Z', '2030-01-01T12:00Z');
    await expect(insert('2030-01-01T10:30Z', '2030-01-01T11:30Z')).rejects.toMatchObject({ code: '23P01' });
    await insert('2030-01-01T10:30Z', '2030-01-01T11:30Z', 'CANCELLED');
  });
});
