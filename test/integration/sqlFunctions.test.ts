// The SQL functions live in db/functions, one file each, applied by every migrate after the
// numbered migrations (docs/operations.md, "The database"). Databases the previous layout
// migrated — carrel_book and the others restated across migrations 004-010, as in
// test/fixtures/migrations-0.1 — must come out of the new migrate exactly as a new database does,
// and the functions as the files state them must behave as the ones those migrations left.
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { LockClass, SessionLock } from '../../src/db/lockKeys.js';
import { listSqlFiles, migrate, migrationsDir, seed } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';
import { silentLogger } from '../../src/obs/log.js';
import { projectRoot } from '../../src/paths.js';
import { withDatabase } from '../support/db.js';

const created: Array<{ name: string; pool: pg.Pool }> = [];

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** An empty database of this test file, dropped at the end. */
async function emptyDatabase(): Promise<pg.Pool> {
  const name = `carrel_tf${randomBytes(4).toString('hex')}_${inject('pgTemplate').slice('carrel_tpl_'.length)}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const pool = createPool({ url: withDatabase(inject('pgAdminUrl'), name), poolSize: 3, connectTimeoutMs: 5000, statementTimeoutMs: 30000 }, silentLogger);
  created.push({ name, pool });
  return pool;
}

afterAll(async () => {
  for (const { name, pool } of created) {
    await pool.end();
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  }
});

/**
 * What the previous layout's migrate made of a database: migrations 001-012 as that release
 * shipped them (the ones since changed are in the fixture), and no functions directory.
 */
async function migrateAsPreviousRelease(pool: pg.Pool): Promise<void> {
  const fixture = join(projectRoot, 'test', 'fixtures', 'migrations-0.1');
  const old = mkdtempSync(join(tmpdir(), 'carrel-mig-0.1-'));
  for (const m of listSqlFiles(migrationsDir()).filter((f) => f.version <= 12)) {
    const shipped = join(fixture, basename(m.file));
    copyFileSync(existsSync(shipped) ? shipped : m.file, join(old, basename(m.file)));
  }
  await migrate(pool, silentLogger, { migrations: old, functions: mkdtempSync(join(tmpdir(), 'carrel-no-functions-')) });
}

/** Everything migrate makes, as text: functions, columns, indexes, constraints, table options, the record of migrations. */
async function schemaOf(pool: pg.Pool): Promise<Record<string, unknown[]>> {
  const rows = async (sql: string) => (await pool.query(sql)).rows;
  return {
    // Functions of the public schema that are not an extension's (btree_gist's).
    functions: await rows(`SELECT p.oid::regprocedure::text AS signature, pg_get_functiondef(p.oid) AS definition
      FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
      ORDER BY 1`),
    columns: await rows(`SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
      WHERE table_schema = 'public' ORDER BY 1, 2`),
    indexes: await rows(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`),
    constraints: await rows(`SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2`),
    tableOptions: await rows(`SELECT relname, reloptions FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1`),
    migrations: await rows('SELECT version, name FROM schema_migrations ORDER BY version'),
  };
}

/**
 * One run through every outcome of the functions, on a seeded database: each call's rows, or
 * its error's SQLSTATE and detail. Two databases whose functions behave alike give equal runs.
 */
async function exercise(pool: pg.Pool): Promise<unknown[]> {
  const out: unknown[] = [];
  const record = async (label: string, sql: string, values: unknown[]) => {
    try {
      const res = await pool.query(sql, values);
      out.push({ label, rows: JSON.parse(JSON.stringify(res.rows)) });
    } catch (err) {
      const e = err as { code?: string; detail?: string };
      out.push({ label, code: e.code, detail: e.detail });
    }
  };
  const users = (await pool.query<{ id: number }>(`SELECT id FROM users WHERE student_id IN ('s1001', 's1002', 's1003') ORDER BY student_id`)).rows.map((r) => r.id);
  const seats = (await pool.query<{ id: number }>('SELECT id FROM seats ORDER BY id LIMIT 4')).rows.map((r) => r.id);
  const [u1, u2, u3] = users as [number, number, number];
  const [s1, s2, s3, s4] = seats as [number, number, number, number];
  await pool.query('UPDATE branches SET padding_minutes = 15 WHERE id = (SELECT branch_id FROM seats WHERE id = $1)', [s1]);
  const now = '2030-01-07T08:00:00Z';
  const day = [['2030-01-07T00:00:00Z'], ['2030-01-08T00:00:00Z']];
  const book = 'SELECT * FROM carrel_book($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)';
  const bookArgs = (seat: number, user: number, start: string, end: string, key: string | null, maxActive: number, quota: number, lockMs: number | null = null) => [
    seat, user, start, end, key, now, LockClass.userBooking, maxActive, day[0], day[1], [quota], lockMs,
  ];
  await record('created', book, bookArgs(s1, u1, '2030-01-07T10:00:00Z', '2030-01-07T11:00:00Z', 'k1', 3, 240));
  await record('existing', book, bookArgs(s1, u1, '2030-01-07T10:00:00Z', '2030-01-07T11:00:00Z', 'k1', 3, 240));
  await record('overlap', book, bookArgs(s1, u2, '2030-01-07T10:30:00Z', '2030-01-07T11:30:00Z', null, 3, 240));
  await record('buffer only', book, bookArgs(s1, u2, '2030-01-07T11:00:00Z', '2030-01-07T12:00:00Z', null, 3, 240));
  await record('maxActive', book, bookArgs(s2, u1, '2030-01-07T12:00:00Z', '2030-01-07T13:00:00Z', 'k2', 1, 240));
  await record('quota', book, bookArgs(s2, u1, '2030-01-07T12:00:00Z', '2030-01-07T16:00:00Z', null, 5, 180));
  await pool.query(`UPDATE seats SET status = 'OUT_OF_SERVICE' WHERE id = $1`, [s3]);
  await record('outOfService', book, bookArgs(s3, u2, '2030-01-07T12:00:00Z', '2030-01-07T13:00:00Z', null, 3, 240));
  await record('the 11-argument form', 'SELECT * FROM carrel_book($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
    bookArgs(s2, u2, '2030-01-07T14:00:00Z', '2030-01-07T15:00:00Z', 'k3', 3, 240).slice(0, 11));
  await record('user rules', 'SELECT * FROM carrel_user_rules($1, $2, $3, $4, $5, $6, $7, $8)',
    [u1, '2030-01-07T18:00:00Z', '2030-01-07T19:00:00Z', now, 3, day[0], day[1], [90]]);

  // The user's lock held elsewhere: the booking gives up at its lock budget.
  const holder = await pool.connect();
  try {
    await holder.query('SELECT pg_advisory_lock($1, $2)', [LockClass.userBooking, u2]);
    await record('lock timeout', book, bookArgs(s2, u2, '2030-01-07T16:00:00Z', '2030-01-07T17:00:00Z', null, 3, 240, 50));
  } finally {
    await holder.query('SELECT pg_advisory_unlock_all()');
    holder.release();
  }

  // Waitlist offers to claim: one within the quota, one past it.
  const offer = async (start: string, end: string): Promise<number> => {
    const w = await pool.query<{ id: number }>(
      `INSERT INTO waitlist (user_id, seat_id, during, status, created_at, updated_at) VALUES ($1, $2, tstzrange($3, $4), 'OFFERED', $5, $5) RETURNING id`,
      [u3, s4, start, end, now],
    );
    const id = w.rows[0]!.id;
    await pool.query(
      `INSERT INTO reservations (seat_id, user_id, during, hold, status, waitlist_id, offer_expires_at, created_at, updated_at)
       VALUES ($1, $2, tstzrange($3, $4), tstzrange($3, $4), 'OFFERED', $5, $6::timestamptz + interval '10 minutes', $6, $6)`,
      [s4, u3, start, end, id, now],
    );
    return id;
  };
  const claim = 'SELECT * FROM carrel_claim($1, $2, $3, $4, $5, $6, $7, $8, $9)';
  const first = await offer('2030-01-07T18:00:00Z', '2030-01-07T19:00:00Z');
  const second = await offer('2030-01-07T19:00:00Z', '2030-01-07T21:00:00Z');
  await record('claimed', claim, [first, u3, now, LockClass.userBooking, 3, day[0], day[1], [240], null]);
  await record('claimed again: no offer', claim, [first, u3, now, LockClass.userBooking, 3, day[0], day[1], [240], null]);
  await record('claim past the quota', claim, [second, u3, now, LockClass.userBooking, 3, day[0], day[1], [120], null]);
  await record('canonical student id', 'SELECT carrel_canonical_student_id($1) AS c', [' ＶＩＤ１２３４ ']);
  return out;
}

describe('SQL functions applied from db/functions', () => {
  let old: pg.Pool;
  let fresh: pg.Pool;

  beforeAll(async () => {
    old = await emptyDatabase();
    fresh = await emptyDatabase();
    await migrateAsPreviousRelease(old);
    await migrate(fresh, silentLogger);
  });

  it('behave as the definitions the previous migrations left, outcome for outcome', async () => {
    // The fixture is the old layout: carrel_book as migration 009 wrote it.
    const before = await old.query<{ src: string }>(`SELECT prosrc AS src FROM pg_proc WHERE proname = 'carrel_book' AND pronargs = 12`);
    expect(before.rows[0]!.src).toContain("pg_advisory_xact_lock(1936025972, p_seat);  -- 'seat'");
    await seed(old, silentLogger);
    await seed(fresh, silentLogger);
    const a = await exercise(old);
    const b = await exercise(fresh);
    expect(a.map((r) => (r as { label: string }).label)).toHaveLength(14);
    // Every outcome was reached (a run that failed early would compare equal too).
    expect(a).toContainEqual(expect.objectContaining({ label: 'overlap', code: '23P01' }));
    expect(a).toContainEqual(expect.objectContaining({ label: 'lock timeout', code: '55P03' }));
    expect(a).toContainEqual({ label: 'claim past the quota', rows: [expect.objectContaining({ outcome: 'quota', period: 1 })] });
    expect(b).toEqual(a);
  });

  it('a database the previous release migrated comes out of migrate exactly as a new one', async () => {
    // Only the migrations written since that release (history, 013 on) are applied to it.
    const since = listSqlFiles(migrationsDir()).filter((m) => m.version > 12).map((m) => m.version);
    expect((await migrate(old, silentLogger)).map((m) => m.version)).toEqual(since);
    const upgraded = await schemaOf(old);
    expect(upgraded).toEqual(await schemaOf(fresh));
    expect(upgraded.functions!.map((f) => (f as { signature: string }).signature)).toEqual(expect.arrayContaining([
      'carrel_book(integer,integer,timestamp with time zone,timestamp with time zone,text,timestamp with time zone,integer,integer,timestamp with time zone[],timestamp with time zone[],integer[])',
      'carrel_book(integer,integer,timestamp with time zone,timestamp with time zone,text,timestamp with time zone,integer,integer,timestamp with time zone[],timestamp with time zone[],integer[],integer)',
      'carrel_book_batch(jsonb,timestamp with time zone,integer,integer,boolean)',
      'carrel_book_seat(integer,integer,timestamp with time zone,timestamp with time zone,text,timestamp with time zone,boolean,integer,integer)',
      'carrel_canonical_student_id(text)',
      'carrel_claim(bigint,integer,timestamp with time zone,integer,integer,boolean,timestamp with time zone[],timestamp with time zone[],integer[],integer)',
      'carrel_claim(bigint,integer,timestamp with time zone,integer,integer,timestamp with time zone[],timestamp with time zone[],integer[],integer)',
      'carrel_strike(bigint[],text,timestamp with time zone,integer,integer,integer)',
      'carrel_user_rules(integer,timestamp with time zone,timestamp with time zone,timestamp with time zone,integer,boolean,timestamp with time zone[],timestamp with time zone[],integer[])',
      'carrel_user_rules(integer,timestamp with time zone,timestamp with time zone,timestamp with time zone,integer,timestamp with time zone[],timestamp with time zone[],integer[])',
    ]));
    // And again: applying the files a second time changes nothing.
    await migrate(old, silentLogger);
    expect(await schemaOf(old)).toEqual(upgraded);
  });

  it('a function file that fails rolls every function file back, names itself, and keeps the migrations', async () => {
    const pool = await emptyDatabase();
    const functions = mkdtempSync(join(tmpdir(), 'carrel-functions-'));
    writeFileSync(join(functions, 'a_ok.sql'), 'CREATE OR REPLACE FUNCTION a_ok() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;');
    writeFileSync(join(functions, 'b_broken.sql'), 'CREATE OR REPLACE FUNCTION b_broken() RETURNS int LANGUAGE sql AS $$ SELECT * FROM no_such_table $$;');
    await expect(migrate(pool, silentLogger, { functions })).rejects.toThrow(/b_broken\.sql/);
    expect((await pool.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'a_ok'`)).rows[0].n).toBe(0);
    expect((await pool.query('SELECT count(*)::int AS n FROM schema_migrations')).rows[0].n).toBe(listSqlFiles(migrationsDir()).length);
  });

  it('the lock keys that were hashes in SQL are the values PostgreSQL computes, so old and new instances take the same locks', async () => {
    const r = await fresh.query<{ w: number; l: string }>(`SELECT hashtext('carrel.waitlist.user') AS w, hashtextextended('carrel.lifecycle', 0)::text AS l`);
    expect(r.rows[0]).toEqual({ w: LockClass.waitlistJoin, l: SessionLock.lifecycle.toString() });
  });
});
