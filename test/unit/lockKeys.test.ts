// Every advisory lock carrel takes has its key in src/db/lockKeys.ts (docs/architecture.md,
// "Advisory locks"): statements in src/ pass keys as parameters, the SQL functions in db/functions
// take the user class as an argument and state the seat class with its name, and nothing computes
// a key with hashtext.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LockClass, SessionLock } from '../../src/db/lockKeys.js';
import { projectRoot } from '../../src/paths.js';

function filesUnder(dir: string, ext: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(ext))
    .map((f) => join(dir, f));
}

const ADVISORY_CALL = /pg_(?:try_)?advisory_(?:xact_)?(?:un)?lock(?:_shared)?\s*\(([^)]*)\)(.*)/g;
const sources = filesUnder(join(projectRoot, 'src'), '.ts').filter((f) => !f.endsWith(join('db', 'lockKeys.ts')));
const functionFiles = filesUnder(join(projectRoot, 'db', 'functions'), '.sql');

describe('advisory-lock keys', () => {
  it('are distinct, and fit their key spaces (int4 classes, int8 session keys)', () => {
    const classes = Object.values(LockClass);
    expect(new Set(classes).size).toBe(classes.length);
    for (const c of classes) expect(Number.isInteger(c) && c >= -(2 ** 31) && c < 2 ** 31).toBe(true);
    const keys = Object.values(SessionLock);
    expect(new Set(keys).size).toBe(keys.length);
    for (const k of keys) expect(k >= -(2n ** 63n) && k < 2n ** 63n).toBe(true);
  });

  it('every statement in src/ that takes one passes its key as a parameter, from lockKeys.ts', () => {
    const calls: string[] = [];
    for (const file of sources) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(ADVISORY_CALL)) {
        const where = `${relative(projectRoot, file)}: ${m[0].trim()}`;
        calls.push(where);
        expect(m[1]!.split(',').every((arg) => /^\s*\$\d+\s*$/.test(arg)), where).toBe(true);
        expect(text, where).toMatch(/from '(\.\.\/db\/|\.\/)lockKeys\.js'/);
      }
    }
    // The migrator, the lifecycle worker (lock, unlock) and the waitlist join: none was missed.
    expect(calls.length).toBeGreaterThanOrEqual(5);
  });

  it('the SQL functions take the user class as p_lock_class and name any class they state', () => {
    const byValue = new Map<number, string>(Object.entries(LockClass).map(([name, value]) => [value, name]));
    let stated = 0;
    for (const file of functionFiles) {
      for (const m of readFileSync(file, 'utf8').matchAll(ADVISORY_CALL)) {
        const where = `${relative(projectRoot, file)}: ${m[0].trim()}`;
        const key = m[1]!.split(',')[0]!.trim();
        if (key === 'p_lock_class' || key === 'p_lock_key') continue;
        const name = byValue.get(Number(key));
        expect(name, where).toBeDefined();
        expect(m[2], where).toContain(`LockClass.${name}`);
        stated++;
      }
    }
    expect(stated).toBe(3); // the seat lock: carrel_book's, carrel_book_seat's (carrel_book_batch's) and carrel_walk_in's
  });

  it('no key is computed from text at run time', () => {
    for (const file of [...sources, ...functionFiles]) {
      expect(readFileSync(file, 'utf8'), relative(projectRoot, file)).not.toMatch(/hashtext/i);
    }
  });
});
