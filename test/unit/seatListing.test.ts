import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { FakeClock } from '../../src/core/clock.js';
import { SeatListing } from '../../src/core/seatListing.js';

const rules = configSchema.parse({}).rules;
const row = (id: number, branchId: number, available: boolean) => ({
  id, branch_id: branchId, branch: `B${branchId}`, area: 'A', label: `L${id}`, has_power: true, has_monitor: false,
  status: 'IN_SERVICE', available, live: available ? 'free' : 'reserved',
});

/** A pool stand-in that counts queries and can run a hook while a query is "in flight". */
function fakeDb(rows: () => unknown[]) {
  const db = { calls: 0, names: [] as string[], during: undefined as (() => void) | undefined };
  const pool = {
    query: async (q: { name: string }) => {
      db.calls++;
      db.names.push(q.name);
      const hook = db.during;
      db.during = undefined;
      hook?.();
      return { rows: rows() };
    },
  } as unknown as pg.Pool;
  return { db, pool };
}

describe('seat listing cache', () => {
  const clock = new FakeClock(Date.parse('2030-01-07T15:07:00Z'));

  it('answers a repeated listing from the cache until an event for its branch', async () => {
    let available = true;
    const { db, pool } = fakeDb(() => [row(1, 7, available)]);
    const listing = new SeatListing({ db: pool, clock, rules, cache: { enabled: true, maxEntries: 10 } });
    const first = await listing.listJson({ branchId: 7 });
    expect(await listing.listJson({ branchId: 7 })).toBe(first);
    expect(db.calls).toBe(1);
    listing.onCoreEvent({ type: 'seatStatus', cause: 'admin', seatId: 3, branchId: 8, status: 'OUT_OF_SERVICE', at: '' });
    expect(await listing.listJson({ branchId: 7 })).toBe(first);
    expect(db.calls).toBe(1);
    available = false;
    listing.onCoreEvent({ type: 'seatStatus', cause: 'admin', seatId: 1, branchId: 7, status: 'OUT_OF_SERVICE', at: '' });
    expect(JSON.parse(await listing.listJson({ branchId: 7 }))[0].available).toBe(false);
    expect(db.calls).toBe(2);
  });

  it('never caches a listing read while a change committed', async () => {
    const { db, pool } = fakeDb(() => [row(1, 7, true)]);
    const listing = new SeatListing({ db: pool, clock, rules, cache: { enabled: true, maxEntries: 10 } });
    db.during = () => listing.invalidate(7);
    await listing.listJson({ branchId: 7 });
    await listing.listJson({ branchId: 7 });
    expect(db.calls).toBe(2);
  });

  it('keys on the slot: the next slot is read afresh; filters get their own prepared statements', async () => {
    const { db, pool } = fakeDb(() => [row(1, 7, true)]);
    const c = new FakeClock(Date.parse('2030-01-07T15:07:00Z'));
    const listing = new SeatListing({ db: pool, clock: c, rules, cache: { enabled: true, maxEntries: 10 } });
    await listing.listJson({ branchName: 'B7', hasPower: true });
    c.set('2030-01-07T15:14:59Z');
    await listing.listJson({ branchName: 'B7', hasPower: true });
    expect(db.calls).toBe(1);
    c.set('2030-01-07T15:15:00Z');
    await listing.listJson({ branchName: 'B7', hasPower: true });
    await listing.listJson({ area: 'A', availableOnly: true });
    expect(db.calls).toBe(3);
    expect(new Set(db.names).size).toBe(2);
    expect(db.names.every((n) => n.startsWith('carrel.seats.list.'))).toBe(true);
  });

  it('treats an empty listing by branch name as involving every branch', async () => {
    const { db, pool } = fakeDb(() => []);
    const listing = new SeatListing({ db: pool, clock, rules, cache: { enabled: true, maxEntries: 10 } });
    await listing.listJson({ branchName: 'Nowhere', availableOnly: true });
    listing.invalidate(42);
    await listing.listJson({ branchName: 'Nowhere', availableOnly: true });
    expect(db.calls).toBe(2);
  });

  it('stays within maxEntries', async () => {
    const { db, pool } = fakeDb(() => [row(1, 7, true)]);
    const listing = new SeatListing({ db: pool, clock, rules, cache: { enabled: true, maxEntries: 2 } });
    for (const area of ['a', 'b', 'c']) await listing.listJson({ branchId: 7, area });
    await listing.listJson({ branchId: 7, area: 'a' });
    expect(db.calls).toBe(4);
    await listing.listJson({ branchId: 7, area: 'c' });
    expect(db.calls).toBe(4);
  });
});
