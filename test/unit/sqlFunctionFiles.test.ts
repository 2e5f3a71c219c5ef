// Each SQL function is stated in one file, db/functions/<name>.sql, which migrate applies every time
// (docs/operations.md, "The database"): so every statement there is CREATE OR REPLACE of that
// function, and no numbered migration states it again.
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { functionsDir, listFunctionFiles, listSqlFiles, migrationsDir } from '../../src/db/migrate.js';

const CREATE = /\bCREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+([a-z_][a-z0-9_]*)\s*\(/gi;

/**
 * Migration 010 folds the stored student ids with carrel_canonical_student_id, and 013 makes the
 * first history partitions with carrel_history_partitions, so each must create the function it uses (with OR REPLACE, since a database may have it from the files already).
 */
const USED_BY_ITS_MIGRATION = new Map([
  ['carrel_canonical_student_id', '010_canonical_student_id.sql'],
  ['carrel_history_partitions', '013_occupancy_history.sql'],
]);

describe('SQL function files', () => {
  const files = listFunctionFiles(functionsDir());
  const owned = files.map((f) => basename(f, '.sql'));

  it('each states CREATE OR REPLACE of the function it is named after, and nothing else creates functions there', () => {
    expect(owned).toEqual(expect.arrayContaining(['carrel_book', 'carrel_claim', 'carrel_user_rules', 'carrel_canonical_student_id']));
    expect(readdirSync(functionsDir()).every((f) => f.endsWith('.sql'))).toBe(true);
    for (const file of files) {
      const creates = [...readFileSync(file, 'utf8').matchAll(CREATE)];
      expect(creates.length, file).toBeGreaterThan(0);
      for (const m of creates) {
        expect(m[1], `${file}: ${m[0]}`).toBeDefined();
        expect(m[2]!.toLowerCase(), file).toBe(basename(file, '.sql'));
      }
    }
  });

  it('no numbered migration states a function a file owns, but for one that uses it', () => {
    for (const m of listSqlFiles(migrationsDir())) {
      for (const c of readFileSync(m.file, 'utf8').matchAll(CREATE)) {
        const name = c[2]!.toLowerCase();
        if (!owned.includes(name)) continue;
        expect(USED_BY_ITS_MIGRATION.get(name), `${basename(m.file)} states ${name}`).toBe(basename(m.file));
        expect(c[1], `${basename(m.file)}: ${c[0]}`).toBeDefined();
      }
    }
  });
});
