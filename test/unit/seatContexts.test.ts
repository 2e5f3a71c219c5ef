// SeatContexts: bookings that miss the cache together share one read (the opening rush sent
// thousands of identical branch look-ups to the database gate at once), and only a success is
// shared.
import { describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { FakeClock } from '../../src/core/clock.js';
import { SeatContexts } from '../../src/core/seatContexts.js';
import { CarrelError, ErrorCode } from '../../src/errors.js';

const row = { id: 7, name: 'Main Library', timezone: 'America/New_York', hours: {}, padding_minutes: 0 };

function fakeDb(answer: () => Promise<unknown>) {
  let queries = 0;
  const db = {
    query: async () => {
      queries++;
      return answer();
    },
  } as unknown as Db;
  return { db, queries: () => queries };
}

describe('SeatContexts', () => {
  it('concurrent look-ups of one branch share one read, and later ones are served from the cache', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { db, queries } = fakeDb(async () => {
      await gate;
      return { rows: [row] };
    });
    const contexts = new SeatContexts({ db, clock: new FakeClock(), contextCacheMs: 2_000 });
    const all = Array.from({ length: 1000 }, () => contexts.branchContext({ name: 'Main Library' }));
    release();
    const got = await Promise.all(all);
    expect(queries()).toBe(1);
    expect(new Set(got.map((c) => c.branchId))).toEqual(new Set([7]));
    await contexts.branchContext({ id: 7 });
    expect(queries()).toBe(1);
  });

  it("the first asker's failure is not shared: the others read for themselves", async () => {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { db, queries } = fakeDb(async () => {
      if (calls++ === 0) {
        await gate;
        throw new CarrelError(ErrorCode.DEADLINE_EXCEEDED, "the first asker's deadline");
      }
      return { rows: [row] };
    });
    const contexts = new SeatContexts({ db, clock: new FakeClock(), contextCacheMs: 0 });
    const first = contexts.branchContext({ id: 7 });
    const second = contexts.branchContext({ id: 7 });
    release();
    await expect(first).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await expect(second).resolves.toMatchObject({ branchId: 7 });
    expect(queries()).toBe(2);
  });
});
