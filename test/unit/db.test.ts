// Db, the one way to the database (src/db/db.ts), over a scripted stand-in for the pool: what is
// retried and how, what a transaction sends, which connections go back and which are discarded,
// and that every attempt of a request takes its turn at the gate.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { Db } from '../../src/db/db.js';
import { DbConflict } from '../../src/db/errors.js';
import type { AdmissionGate, Deadline } from '../../src/deadline.js';
import { CarrelError, ErrorCode } from '../../src/errors.js';

/** An error as PostgreSQL reports one, with its SQLSTATE. */
function pgError(code: string): pg.DatabaseError {
  return Object.assign(new pg.DatabaseError(`sqlstate ${code}`, 0, 'error'), { code });
}

/**
 * A pool whose connections answer each statement with `answer` (a result, or a thrown error). It
 * records the statements sent, on which connection, and how each connection went back.
 */
function scriptedPool(answer: (text: string, n: number) => unknown) {
  const sent: Array<{ conn: number; text: string }> = [];
  const released: Array<'returned' | 'discarded'> = [];
  let connections = 0;
  const pool = {
    connect: async () => {
      const conn = ++connections;
      return {
        query: async (statement: string | pg.QueryConfig) => {
          const text = typeof statement === 'string' ? statement : statement.text;
          sent.push({ conn, text });
          const a = answer(text, sent.length);
          if (a instanceof Error) throw a;
          return a ?? { rows: [], rowCount: 0 };
        },
        release: (discard?: boolean) => void released.push(discard ? 'discarded' : 'returned'),
      };
    },
  } as unknown as pg.Pool;
  return { db: new Db(pool), sent, released, connections: () => connections };
}

/** A deadline far off whose client's turns at the gate are counted. */
function countedDeadline(): { deadline: Deadline; turns: () => number; given: () => number } {
  let turns = 0;
  let given = 0;
  const gate: AdmissionGate = {
    acquire: async () => {
      turns++;
      return () => void given++;
    },
    ticket: (client) => ({ gate, client }),
  };
  return { deadline: { remainingMs: () => 60_000, admission: gate.ticket('c') }, turns: () => turns, given: () => given };
}

describe('Db statements', () => {
  it('a deadlock is run again, each time on a new connection after a new turn at the gate, and after four attempts is CONFLICT', async () => {
    const p = scriptedPool(() => pgError('40P01'));
    const d = countedDeadline();
    const err = await p.db.query('UPDATE t SET x = 1', [], d.deadline).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DbConflict);
    expect(err).toMatchObject({ code: 'CONFLICT', reason: 'contention' });
    expect(p.sent.map((s) => s.conn)).toEqual([1, 2, 3, 4]);
    expect([d.turns(), d.given()]).toEqual([4, 4]);
    // PostgreSQL said what went wrong, so every connection was in a known state and went back.
    expect(p.released).toEqual(['returned', 'returned', 'returned', 'returned']);
  });

  it('returns the result once a serialisation failure clears', async () => {
    const p = scriptedPool((_t, n) => (n < 2 ? pgError('40001') : { rows: [{ ok: 1 }], rowCount: 1 }));
    expect((await p.db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    expect(p.sent).toHaveLength(2);
  });

  it('what cannot pass on a second try is mapped at once: a clash, a refusal of ours', async () => {
    const p = scriptedPool(() => pgError('23P01'));
    expect(await p.db.query('INSERT', []).catch((e: unknown) => e)).toMatchObject({ code: 'CONFLICT', reason: 'overlap' });
    expect(p.sent).toHaveLength(1);
  });

  it('a connection that failed under a statement is discarded, and the answer is UNAVAILABLE', async () => {
    const p = scriptedPool(() => new Error('Connection terminated unexpectedly'));
    expect(await p.db.query('SELECT 1').catch((e: unknown) => e)).toMatchObject({ code: ErrorCode.UNAVAILABLE });
    expect(p.released).toEqual(['discarded']);
  });

  it('a statement built with its lock budget gets the time left less the margin; one without a deadline gets null', async () => {
    const p = scriptedPool(() => undefined);
    const budgets: Array<number | null> = [];
    const build = (ms: number | null) => (budgets.push(ms), { text: 'SELECT carrel_book($1)', values: [ms] });
    await p.db.query(build, { remainingMs: () => 1000 });
    await p.db.query(build);
    expect(budgets[0]).toBeGreaterThan(900);
    expect(budgets[0]).toBeLessThanOrEqual(980);
    expect(budgets[1]).toBeNull();
  });
});

describe('Db transactions', () => {
  it('sends BEGIN, the statements and COMMIT on one connection', async () => {
    const p = scriptedPool(() => undefined);
    const value = await p.db.transaction(async (tx) => {
      await tx.query('UPDATE a');
      await tx.query('UPDATE b');
      return 'done';
    });
    expect(value).toBe('done');
    expect(p.sent).toEqual(['BEGIN', 'UPDATE a', 'UPDATE b', 'COMMIT'].map((text) => ({ conn: 1, text })));
    expect(p.released).toEqual(['returned']);
  });

  it("rolls back when fn throws, and what fn threw comes out unchanged and is not retried", async () => {
    const p = scriptedPool(() => undefined);
    const refusal = new CarrelError(ErrorCode.FAILED_PRECONDITION, 'no');
    expect(await p.db.transaction(async () => Promise.reject(refusal)).catch((e: unknown) => e)).toBe(refusal);
    expect(p.sent.map((s) => s.text)).toEqual(['BEGIN', 'ROLLBACK']);
    expect(p.released).toEqual(['returned']);
  });

  it('a deadlock inside runs the whole transaction again, from BEGIN, on a new connection', async () => {
    let deadlocks = 1;
    const p = scriptedPool((text) => (text === 'UPDATE a' && deadlocks-- > 0 ? pgError('40P01') : undefined));
    let runs = 0;
    await p.db.transaction(async (tx) => {
      runs++;
      await tx.query('UPDATE a');
    });
    expect(runs).toBe(2);
    expect(p.sent).toEqual([
      { conn: 1, text: 'BEGIN' },
      { conn: 1, text: 'UPDATE a' },
      { conn: 1, text: 'ROLLBACK' },
      { conn: 2, text: 'BEGIN' },
      { conn: 2, text: 'UPDATE a' },
      { conn: 2, text: 'COMMIT' },
    ]);
  });

  it('a connection whose ROLLBACK failed is discarded', async () => {
    const p = scriptedPool((text) => (text === 'UPDATE a' || text === 'ROLLBACK' ? new Error('Connection terminated unexpectedly') : undefined));
    expect(await p.db.transaction((tx) => tx.query('UPDATE a')).catch((e: unknown) => e)).toMatchObject({ code: ErrorCode.UNAVAILABLE });
    expect(p.released).toEqual(['discarded']);
  });
});

describe('Db sessions', () => {
  it('run everything on one connection, which goes back after success', async () => {
    const p = scriptedPool(() => undefined);
    await p.db.session(async (s) => {
      await s.query('SELECT pg_try_advisory_lock($1)', [1]);
      await s.transaction((tx) => tx.query('UPDATE a'));
      await s.query('SELECT pg_advisory_unlock($1)', [1]);
    });
    expect(new Set(p.sent.map((s) => s.conn))).toEqual(new Set([1]));
    expect(p.released).toEqual(['returned']);
  });

  it('discard their connection after any failure, ending what the session held', async () => {
    const p = scriptedPool((text) => (text === 'UPDATE a' ? pgError('23505') : undefined));
    const err = await p.db.session((s) => s.query('UPDATE a')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CONFLICT', reason: 'duplicate' });
    expect(p.connections()).toBe(1);
    expect(p.released).toEqual(['discarded']);
  });
});
