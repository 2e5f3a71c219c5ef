// One canonical form of a student id (docs/accounts.md, "Student ids"): migration 010 folds
// the ids already stored — keeping the oldest of rows that collide, renaming the others to a
// reserved form and recording each rename, never merging or deleting a user or a booking — and
// its SQL canonical form agrees with the server's on awkward input. From then on the database
// itself refuses a non-canonical id.
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool } from '../../src/db/pool.js';
import { listSqlFiles, migrate, migrationsDir, seed } from '../../src/db/migrate.js';
import { silentLogger } from '../../src/obs/log.js';
import { canonicalStudentId, isCanonicalStudentId } from '../../src/auth/studentId.js';
import { withDatabase } from '../support/db.js';

// An empty database (not the template), brought to the schema before migration 010.
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
  const before = mkdtempSync(join(tmpdir(), 'carrel-mig-before-010-'));
  for (const m of listSqlFiles(migrationsDir()).filter((f) => f.version < 10)) copyFileSync(m.file, join(before, basename(m.file)));
  // The schema before 010, without today's function files: they belong to the tables of the
  // migrations after it (a database is never given newer functions than its migrations).
  await migrate(pool, silentLogger, { migrations: before, functions: mkdtempSync(join(tmpdir(), 'carrel-no-functions-')) });
  await seed(pool, silentLogger);
});
afterAll(async () => {
  await pool?.end();
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
});

interface UserRow {
  id: number;
  student_id: string;
}

describe('migration 010 on ids stored as typed', () => {
  const ids: Record<string, number> = {};
  let seat: number;

  beforeAll(async () => {
    // Rows the old server (or a hand-written INSERT) could hold, oldest first within each group.
    const rows: Array<[label: string, studentId: string, createdAt: string | null]> = [
      ['VID1234', 'VID1234', '2026-01-01T00:00:00Z'],
      ['vid1234', 'vid1234', '2026-02-01T00:00:00Z'],
      [' Vid1234', ' Vid1234', '2026-03-01T00:00:00Z'],
      ['fullwidth', 'ＶＩＤ１２３４', '2026-04-01T00:00:00Z'],
      ['ADMIN', 'ADMIN', null], // newer than the seeded admin
      ['Mixed.Case', 'Mixed.Case', null],
      ['has space', 'has space', null],
      ['too long', 'x'.repeat(65), null],
      ['zero-width', 'a\u200bb', null],
    ];
    for (const [label, studentId, createdAt] of rows) {
      const r = await pool.query<{ id: number }>(
        `INSERT INTO users (student_id, name, password_hash, created_at) VALUES ($1, $2, 'x', coalesce($3::timestamptz, now())) RETURNING id`,
        [studentId, label, createdAt],
      );
      ids[label] = r.rows[0]!.id;
    }
    ids.admin = (await pool.query<{ id: number }>("SELECT id FROM users WHERE student_id = 'admin'")).rows[0]!.id;
    seat = (await pool.query<{ id: number }>('SELECT id FROM seats ORDER BY id LIMIT 1')).rows[0]!.id;
    // A booking for each user of the colliding group: none of them may be lost.
    let hour = 10;
    for (const label of ['VID1234', 'vid1234', ' Vid1234', 'fullwidth', 'ADMIN']) {
      await pool.query(
        `INSERT INTO reservations (seat_id, user_id, during, hold, status)
         VALUES ($1, $2, tstzrange($3, $4, '[)'), tstzrange($3, $4, '[)'), 'CONFIRMED')`,
        [seat, ids[label], `2030-01-01T${hour}:00Z`, `2030-01-01T${hour + 1}:00Z`],
      );
      hour++;
    }
    await migrate(pool, silentLogger);
  });

  const studentIdOf = async (id: number) => (await pool.query<UserRow>('SELECT id, student_id FROM users WHERE id = $1', [id])).rows[0]!.student_id;

  it('the oldest of rows that fold together keeps the canonical id; the others get a reserved id no login can reach', async () => {
    expect(await studentIdOf(ids.VID1234!)).toBe('vid1234');
    for (const label of ['vid1234', ' Vid1234', 'fullwidth']) expect(await studentIdOf(ids[label]!)).toBe(`!collision-${ids[label]}`);
    expect(await studentIdOf(ids.admin!)).toBe('admin');
    expect(await studentIdOf(ids.ADMIN!)).toBe(`!collision-${ids.ADMIN}`);
    for (const label of ['vid1234', ' Vid1234', 'fullwidth', 'ADMIN']) expect(isCanonicalStudentId(await studentIdOf(ids[label]!))).toBe(false);
  });

  it('a lone row is folded in place, and one that folds to no valid id is reserved as invalid', async () => {
    expect(await studentIdOf(ids['Mixed.Case']!)).toBe('mixed.case');
    for (const label of ['has space', 'too long', 'zero-width']) expect(await studentIdOf(ids[label]!)).toBe(`!invalid-${ids[label]}`);
  });

  it('records every rename with the id it had and who kept the canonical one', async () => {
    const r = await pool.query(
      `SELECT user_id, original_student_id, canonical_student_id, reason, kept_by_user_id FROM student_id_renames ORDER BY user_id`,
    );
    expect(r.rows).toEqual(
      [
        { user_id: ids.vid1234, original_student_id: 'vid1234', canonical_student_id: 'vid1234', reason: 'collision', kept_by_user_id: ids.VID1234 },
        { user_id: ids[' Vid1234'], original_student_id: ' Vid1234', canonical_student_id: 'vid1234', reason: 'collision', kept_by_user_id: ids.VID1234 },
        { user_id: ids.fullwidth, original_student_id: 'ＶＩＤ１２３４', canonical_student_id: 'vid1234', reason: 'collision', kept_by_user_id: ids.VID1234 },
        { user_id: ids.ADMIN, original_student_id: 'ADMIN', canonical_student_id: 'admin', reason: 'collision', kept_by_user_id: ids.admin },
        { user_id: ids['has space'], original_student_id: 'has space', canonical_student_id: null, reason: 'invalid', kept_by_user_id: null },
        { user_id: ids['too long'], original_student_id: 'x'.repeat(65), canonical_student_id: null, reason: 'invalid', kept_by_user_id: null },
        { user_id: ids['zero-width'], original_student_id: 'a\u200bb', canonical_student_id: null, reason: 'invalid', kept_by_user_id: null },
      ].sort((a, b) => a.user_id! - b.user_id!),
    );
  });

  it('merges and deletes nothing: every user and every booking is still there, on its own user', async () => {
    expect(Number((await pool.query('SELECT count(*) FROM users WHERE id = ANY($1)', [Object.values(ids)])).rows[0].count)).toBe(
      Object.keys(ids).length,
    );
    const bookings = await pool.query<{ user_id: number }>('SELECT user_id FROM reservations WHERE seat_id = $1 ORDER BY lower(during)', [seat]);
    expect(bookings.rows.map((b) => b.user_id)).toEqual([ids.VID1234, ids.vid1234, ids[' Vid1234'], ids.fullwidth, ids.ADMIN]);
  });

  it('from now on the database refuses a non-canonical id, and an admin resolves a rename with a canonical one', async () => {
    for (const bad of ['Upper', ' lead', 'trail ', 'ＦＵＬＬ', '!collision-x', '']) {
      await expect(pool.query(`INSERT INTO users (student_id, name, password_hash) VALUES ($1, 'Bad', 'x')`, [bad])).rejects.toMatchObject({
        code: '23514',
      });
    }
    await pool.query('UPDATE users SET student_id = $1 WHERE id = $2', ['vid1234-b', ids.vid1234]);
    expect(await studentIdOf(ids.vid1234!)).toBe('vid1234-b');
  });
});

describe('the canonical form in SQL and in the server', () => {
  it('agree on awkward input: equal whenever the server finds a valid id, invalid in both otherwise', async () => {
    const inputs = [
      'ADMIN', ' admin', 'admin\u00a0', '\u3000admin\u3000', 'ａｄｍｉｎ', '\ufeffadmin', 'S1001\t', '\n s1001 \r',
      '\u1680s1', '\u2000\u200as1\u202f', '\u205fs1\u2028', '\u2029s1', '\u0085s1', 'a\u200bb',
      'ﬁle', 'Ⅻ', '\u212a', '¹²³', '①', 'Ａ-Ｚ＠＿．', 'İstanbul', 'straße', 'ǅ', 'x'.repeat(64), 'x'.repeat(65),
      'has space', '', ' ', 'vid1234', 'Vid.1234@uni-x_y',
    ];
    let valid = 0;
    for (const raw of inputs) {
      const js = canonicalStudentId(raw);
      const sql = (await pool.query<{ c: string }>('SELECT carrel_canonical_student_id($1) AS c', [raw])).rows[0]!.c;
      if (isCanonicalStudentId(js)) {
        valid++;
        expect({ raw, sql }).toEqual({ raw, sql: js });
      } else {
        expect({ raw, valid: isCanonicalStudentId(sql) }).toEqual({ raw, valid: false });
      }
    }
    expect(valid).toBeGreaterThan(15);
  });
});
