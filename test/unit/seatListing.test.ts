import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { FakeClock } from '../../src/core/clock.js';
import { SeatListing, type SeatFilter } from '../../src/core/seatListing.js';
import { Db } from '../../src/db/db.js';
import { LiveSeats } from '../../src/core/liveSeats.js';
import { LiveView } from '../../src/core/liveView.js';

const rules = configSchema.parse({}).rules;
const row = (id: number, branchId: number, available: boolean) => ({
  id, branch_id: branchId, branch: `B${branchId}`, area: 'A', label: `L${id}`, has_power: true, has_monitor: false,
  status: 'IN_SERVICE', available,
});

/** Where `live` comes from: a live model that knows seats 1–99 of branch 7, all free. */
function liveOf(clock: FakeClock): LiveView {
  const model = new LiveSeats(
    { instanceId: 'i', offlineAfterMs: 120_000, awayEndingMs: 300_000, autoCheckIn: false, autoRelease: false, checkInWindow: { opensBeforeMs: 0, graceMs: 0 } },
    { changes: { publishSeat: () => undefined } },
  );
  const seats = Array.from({ length: 99 }, (_, i) => ({ id: i + 1, branchId: 7, area: 'A', label: `L${i + 1}`, outOfService: false }));
  model.load({ branches: [{ id: 7, name: 'B7' }], seats, bookings: [], sensors: [] }, clock.now());
  return new LiveView(model, clock);
}

/** A pool stand-in that counts queries and can run a hook while a query is "in flight". */
function fakeDb(rows: () => unknown[]) {
  const db = { calls: 0, names: [] as string[], during: undefined as (() => void) | undefined };
  const client = {
    query: async (q: { name: string }) => {
      db.calls++;
      db.names.push(q.name);
      const hook = db.during;
      db.during = undefined;
      hook?.();
      return { rows: rows() };
    },
    release: () => undefined,
  };
  const pool = new Db({ connect: async () => client } as unknown as pg.Pool);
  return { db, pool };
}

const json = async (listing: SeatListing, filter: SeatFilter): Promise<string> => (await listing.list(filter)).bytes.toString('utf8');
/** A listing is stored on the second miss of its key: two reads make it cached. */
const warm = async (listing: SeatListing, filter: SeatFilter): Promise<string> => {
  await json(listing, filter);
  return json(listing, filter);
};

describe('seat listing cache', () => {
  const clock = new FakeClock(Date.parse('2030-01-07T15:07:00Z'));

  it('answers a repeated listing from the cache until an event for its branch', async () => {
    let available = true;
    const { db, pool } = fakeDb(() => [row(1, 7, available)]);
    const listing = new SeatListing({ db: pool, clock, rules, live: liveOf(clock), cache: { enabled: true, maxEntries: 10, maxBytes: 1 << 20 } });
    const first = await warm(listing, { branchId: 7 });
    expect(await json(listing, { branchId: 7 })).toBe(first);
    expect(db.calls).toBe(2);
    // A hit is answered synchronously: the reply can leave in the same turn.
    expect(listing.list({ branchId: 7 })).not.toBeInstanceOf(Promise);
    listing.onCoreEvent({ type: 'seatStatus', cause: 'admin', seatId: 3, branchId: 8, status: 'OUT_OF_SERVICE', at: '' });
    expect(await json(listing, { branchId: 7 })).toBe(first);
    expect(db.calls).toBe(2);
    available = false;
    listing.onCoreEvent({ type: 'seatStatus', cause: 'admin', seatId: 1, branchId: 7, status: 'OUT_OF_SERVICE', at: '' });
    expect(JSON.parse(await json(listing, { branchId: 7 }))[0].available).toBe(false);
    expect(db.calls).toBe(3);
    // A stored key that went stale is stored again on its next read: no second miss needed.
    await json(listing, { branchId: 7 });
    expect(db.calls).toBe(3);
  });

  it('never caches a listing read while a change committed', async () => {
    const { db, pool } = fakeDb(() => [row(1, 7, true)]);
    const listing = new SeatListing({ db: pool, clock, rules, live: liveOf(clock), cache: { enabled: true, maxEntries: 10, maxBytes: 1 << 20 } });
    await json(listing, { branchId: 7 }); // seen once
    db.during = () => listing.invalidate(7);
    await json(listing, { branchId: 7 }); // would be stored, but a change committed meanwhile
    await json(listing, { branchId: 7 });
    expect(db.calls).toBe(3);
  });

  it('keys on the slot: the next slot is read afresh; filters get their own prepared statements', async () => {
    const { db, pool } = fakeDb(() => [row(1, 7, true)]);
    const c = new FakeClock(Date.parse('2030-01-07T15:07:00Z'));
    const listing = new SeatListing({ db: pool, clock: c, rules, live: liveOf(c), cache: { enabled: true, maxEntries: 10, maxBytes: 1 << 20 } });
    await warm(listing, { branchName: 'B7', hasPower: true });
    c.set('2030-01-07T15:14:59Z');
    await json(listing, { branchName: 'B7', hasPower: true });
    expect(db.calls).toBe(2);
    c.set('2030-01-07T15:15:00Z');
    await json(listing, { branchName: 'B7', hasPower: true });
    await json(listing, { area: 'A', availableOnly: true });
    expect(db.calls).toBe(4);
    expect(new Set(db.names).size).toBe(2);
    expect(db.names.every((n) => n.startsWith('carrel.seats.list.'))).toBe(true);
  });

  it('treats an empty listing by branch name as involving every branch', async () => {
    const { db, pool } = fakeDb(() => []);
    const listing = new SeatListing({ db: pool, clock, rules, live: liveOf(clock), cache: { enabled: true, maxEntries: 10, maxBytes: 1 << 20 } });
    await warm(listing, { branchName: 'Nowhere', availableOnly: true });
    listing.invalidate(42);
    await json(listing, { branchName: 'Nowhere', availableOnly: true });
    expect(db.calls).toBe(3);
  });

  it('stays within maxEntries, evicting the least recently used', async () => {
    const { db, pool } = fakeDb(() => [row(1, 7, true)]);
    const listing = new SeatListing({ db: pool, clock, rules, live: liveOf(clock), cache: { enabled: true, maxEntries: 2, maxBytes: 1 << 20 } });
    await warm(listing, { branchId: 7, area: 'a' });
    await warm(listing, { branchId: 7, area: 'b' });
    await json(listing, { branchId: 7, area: 'a' }); // a hit: b is now the least recently used
    expect(db.calls).toBe(4);
    await warm(listing, { branchId: 7, area: 'c' }); // evicts b
    expect(listing.cacheSize().entries).toBe(2);
    await json(listing, { branchId: 7, area: 'a' });
    expect(db.calls).toBe(6);
    await warm(listing, { branchId: 7, area: 'b' }); // evicts a
    expect(db.calls).toBe(8);
    expect(listing.stats.evictions).toBe(2);
  });

  it('stays within maxBytes, and never caches a listing larger than all of it', async () => {
    let seats = 1;
    const { db, pool } = fakeDb(() => Array.from({ length: seats }, (_, i) => row(i + 1, 7, true)));
    const one = JSON.stringify([{ id: 1, branch: 'B7', area: 'A', label: 'L1', hasPower: true, hasMonitor: false, status: 'IN_SERVICE', available: true, live: 'free' }]).length;
    const listing = new SeatListing({ db: pool, clock, rules, live: liveOf(clock), cache: { enabled: true, maxEntries: 100, maxBytes: 3 * one } });
    for (const area of ['a', 'b', 'c', 'd']) await warm(listing, { branchId: 7, area });
    expect(listing.cacheSize()).toEqual({ entries: 3, bytes: 3 * one });
    await json(listing, { branchId: 7, area: 'a' }); // evicted first
    expect(db.calls).toBe(9);
    seats = 4;
    await warm(listing, { branchId: 7, area: 'big' });
    await json(listing, { branchId: 7, area: 'big' });
    expect(db.calls).toBe(12);
    expect(listing.cacheSize().bytes).toBeLessThanOrEqual(3 * one);
  });

  it('drops an entry found stale, so invalidated listings do not hold memory', async () => {
    const { pool } = fakeDb(() => [row(1, 7, true)]);
    const listing = new SeatListing({ db: pool, clock, rules, live: liveOf(clock), cache: { enabled: true, maxEntries: 10, maxBytes: 1 << 20 } });
    await warm(listing, { branchId: 7 });
    const before = listing.cacheSize();
    expect(before.entries).toBe(1);
    listing.invalidate(7);
    await json(listing, { branchId: 7 });
    expect(listing.cacheSize()).toEqual(before);
  });

  it('a scan of one-off windows cannot flush what others keep asking for', async () => {
    const { db, pool } = fakeDb(() => [row(1, 7, true)]);
    const listing = new SeatListing({ db: pool, clock, rules, live: liveOf(clock), cache: { enabled: true, maxEntries: 10, maxBytes: 1 << 20 } });
    await warm(listing, { branchId: 7 });
    const base = Date.parse('2030-01-08T00:00:00Z');
    for (let i = 0; i < 1000; i++) {
      await json(listing, { branchId: 7, startMs: base + i * 15 * 60_000, endMs: base + (i + 2) * 15 * 60_000 });
    }
    expect(db.calls).toBe(1002);
    expect(listing.cacheSize().entries).toBe(1); // none of the one-off windows was stored
    expect(listing.list({ branchId: 7 })).not.toBeInstanceOf(Promise); // still a hit
    expect(listing.stats.evictions).toBe(0);
  });

  it('widens windows to slot boundaries, so windows in the same slots share one entry', async () => {
    const { db, pool } = fakeDb(() => [row(1, 7, true)]);
    const listing = new SeatListing({ db: pool, clock, rules, live: liveOf(clock), cache: { enabled: true, maxEntries: 10, maxBytes: 1 << 20 } });
    const at = (hhmm: string) => Date.parse(`2030-01-08T${hhmm}:00Z`);
    expect(listing.window({ startMs: at('10:07'), endMs: at('11:01') })).toEqual({ startMs: at('10:00'), endMs: at('11:15') });
    expect(listing.window({ startMs: at('10:00'), endMs: at('11:00') })).toEqual({ startMs: at('10:00'), endMs: at('11:00') });
    await json(listing, { branchId: 7, startMs: at('10:07'), endMs: at('11:01') });
    await json(listing, { branchId: 7, startMs: at('10:03'), endMs: at('11:14') });
    expect(listing.list({ branchId: 7, startMs: at('10:14'), endMs: at('11:10') })).not.toBeInstanceOf(Promise);
    expect(db.calls).toBe(2);
    // Checked before widening: an end before the start is refused even within one slot.
    expect(() => listing.window({ startMs: at('10:07'), endMs: at('10:03') })).toThrow(/end must be after start/);
  });

  it('concurrent misses of one key share one read, unless a change came after it began', async () => {
    const { db, pool } = fakeDb(() => [row(1, 7, true)]);
    const listing = new SeatListing({ db: pool, clock, rules, live: liveOf(clock), cache: { enabled: true, maxEntries: 10, maxBytes: 1 << 20 } });
    const many = Array.from({ length: 50 }, () => listing.list({ branchId: 7 }));
    await Promise.all(many);
    expect(db.calls).toBe(1);
    const a = listing.list({ branchId: 7, area: 'A' });
    listing.invalidate(7);
    const b = listing.list({ branchId: 7, area: 'A' }); // may have begun before the change: not shared
    await Promise.all([a, b]);
    expect(db.calls).toBe(3);
  });
});
