import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Deadline } from '../../src/deadline.js';
import { Db } from '../../src/db/db.js';
import { DEADLINE_MARGIN_MS, connectWithin, lockBudgetMs } from '../../src/db/deadline.js';

/** A deadline whose remaining time the test sets. */
function deadline(ms: number): Deadline & { left: number } {
  const d = { left: ms, remainingMs: () => d.left };
  return d;
}

/** A pool whose one connection is handed over when `hand()` is called; its queries are recorded. */
function slowPool(onHandOver: () => void) {
  const queries: pg.QueryConfig[] = [];
  let released = 0;
  let hand: () => void = () => undefined;
  const client = {
    query: async (config: pg.QueryConfig) => {
      queries.push(config);
      return { rows: [] };
    },
    release: () => void released++,
  };
  const pool = {
    connect: () =>
      new Promise((resolve) => {
        hand = () => {
          onHandOver();
          resolve(client);
        };
      }),
  } as unknown as pg.Pool;
  return { pool, queries, hand: () => hand(), released: () => released };
}

describe('request deadlines in the database layer', () => {
  it('a lock budget is the time left less the margin, and there is none once that is gone', () => {
    expect(lockBudgetMs(undefined)).toBeNull();
    expect(lockBudgetMs(deadline(1000))).toBe(1000 - DEADLINE_MARGIN_MS);
    expect(() => lockBudgetMs(deadline(DEADLINE_MARGIN_MS))).toThrow(expect.objectContaining({ code: 'DEADLINE_EXCEEDED' }));
  });

  it('the lock budget is taken when the connection arrives, so the wait for it counts against the deadline', async () => {
    const d = deadline(1000);
    const p = slowPool(() => {
      d.left = 300; // 700 ms went by waiting for the connection
    });
    const done = new Db(p.pool).query((lockTimeoutMs) => ({ text: 'SELECT carrel_book($1)', values: [lockTimeoutMs] }), d);
    p.hand();
    await done;
    expect(p.queries.map((q) => q.values)).toEqual([[300 - DEADLINE_MARGIN_MS]]);
    expect(p.released()).toBe(1);
  });

  it('nothing is sent when no time is left once the connection arrives, and the connection goes back', async () => {
    const d = deadline(1000);
    const p = slowPool(() => {
      d.left = 5;
    });
    const done = new Db(p.pool).query((lockTimeoutMs) => ({ text: 'SELECT 1', values: [lockTimeoutMs] }), d).catch((e: unknown) => e);
    p.hand();
    expect(await done).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(p.queries).toEqual([]);
    expect(p.released()).toBe(1);
  });

  it('a request with no time left does not even queue for a connection', async () => {
    let asked = 0;
    const pool = { connect: async () => void asked++ } as unknown as pg.Pool;
    await expect(connectWithin(pool, deadline(0))).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(asked).toBe(0);
  });
});
