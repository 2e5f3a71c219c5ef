// The account service on its own, over a stand-in for the database: a taken student id is
// answered CONFLICT before any hashing, and, once seen taken, from memory for a minute.
import { afterEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { AccountService } from '../../src/core/accounts.js';
import { Db } from '../../src/db/db.js';
import { PasswordHasher } from '../../src/auth/passwordHasher.js';
import { FakeClock } from '../../src/core/clock.js';
import { codeOf } from '../support/codeOf.js';

let hasher: PasswordHasher | undefined;
afterEach(async () => {
  await hasher?.close();
  hasher = undefined;
});

/** Every id but "free-*" is taken; inserts succeed. Counts the lookups. */
function fakeDb() {
  const lookups: string[] = [];
  const client = {
    query: async (text: string, values: unknown[]) => {
      if (text.startsWith('SELECT 1 FROM users')) {
        lookups.push(values[0] as string);
        return { rowCount: String(values[0]).startsWith('free-') ? 0 : 1, rows: [] };
      }
      return { rowCount: 1, rows: [{ id: 1, student_id: values[0], name: values[1], role: 'student', password_hash: values[2] }] };
    },
    release: () => undefined,
  };
  const db = new Db({ connect: async () => client } as unknown as pg.Pool);
  return { db, lookups };
}

describe('registering a taken student id', () => {
  it('is a CONFLICT before any hash; seen once, it is answered from memory for a minute, then looked up again', async () => {
    hasher = new PasswordHasher({ workers: 1, maxQueuedJobs: 4, maxQueuedRegisterJobs: 4, registerWorkerShare: 0.25 });
    const clock = new FakeClock();
    const { db, lookups } = fakeDb();
    const accounts = new AccountService({ db, bcryptCost: 4, hasher, now: () => clock.now() });
    const register = (studentId: string) => accounts.register({ studentId, name: 'N', password: 'long-enough' });
    expect(await codeOf(register('Taken'))).toBe('CONFLICT');
    for (let i = 0; i < 100; i++) expect(await codeOf(register(i % 2 ? 'TAKEN' : 'taken'))).toBe('CONFLICT');
    expect(lookups).toEqual(['taken']);
    clock.advance(60_000);
    expect(await codeOf(register('taken'))).toBe('CONFLICT');
    expect(lookups).toEqual(['taken', 'taken']);
    expect(hasher.lanes.register).toMatchObject({ started: 0, refused: 0, queued: 0 });
    // A free id is hashed and registered — and from then on is taken in memory too.
    expect((await register('Free-1')).studentId).toBe('free-1');
    expect(await codeOf(register('free-1'))).toBe('CONFLICT');
    expect(lookups).toEqual(['taken', 'taken', 'free-1']);
    expect(hasher.lanes.register.started).toBe(1);
  });
});
