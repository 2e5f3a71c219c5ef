// Branches and seats added while the server runs (README: `npm start`, then `npx carrel db seed`):
// the live model, loaded once at start, picks them up on demand and on a timer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { connectSensor, sendReadings, subscribe, waitFor } from '../support/live.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase(4);
});
afterAll(async () => {
  await db.drop();
});

const HOURS = JSON.stringify(Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, { open: '00:00', close: '24:00' }])));

/** A branch with `n` seats, straight in SQL as the seed (or an operator) would add it. */
async function addBranch(name: string, n: number): Promise<{ id: number; seats: number[] }> {
  const b = await db.pool.query<{ id: number }>(`INSERT INTO branches (name, timezone, hours) VALUES ($1, 'UTC', $2) RETURNING id`, [name, HOURS]);
  const id = b.rows[0]!.id;
  const s = await db.pool.query<{ id: number }>(
    `INSERT INTO seats (branch_id, area, label, has_power, has_monitor)
     SELECT $1, 'Hall', 'H-' || lpad(i::text, 2, '0'), true, false FROM generate_series(1, $2) AS i ORDER BY i RETURNING id`,
    [id, n],
  );
  return { id, seats: s.rows.map((r) => r.id).sort((x, y) => x - y) };
}

type Counts = { total: number; free: number; reserved: number; occupied: number; unavailable: number };
async function countsOf(rpc: RpcClient, name: string): Promise<Counts | undefined> {
  const list = await rpc.call<Array<{ name: string; counts: Counts }>>('branches.list');
  return list.find((b) => b.name === name)?.counts;
}

describe('branches and seats added after start', () => {
  let t: TestServer;
  let rpc: RpcClient;
  beforeAll(async () => {
    // No timer and no rate limit here: every unknown name makes the model look.
    // branches.list read from SQL on every call: these tests follow its totals as seats are
    // inserted behind the server's back (fairReads.test.ts covers the cached list).
    t = await startTestServer({ live: { refreshEveryMs: 0, refreshMinIntervalMs: 0 }, discovery: { branchListCacheMs: 0 } }, { db });
    rpc = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
  });
  afterAll(async () => {
    rpc.close();
    await t.close();
  });

  it('a new branch can be watched, its seats take readings, and branches.list counts them live', async () => {
    const everything = await subscribe(t.server.ports.pubsub, { branch: '*' });
    await waitFor(everything, (f) => f.type === 'snapshot');
    const annex = await addBranch('North Annex', 3);
    // Counted at once: branches.list has the model look for the branch, then counts from it.
    expect(await countsOf(rpc, 'North Annex')).toEqual({ total: 3, free: 3, reserved: 0, occupied: 0, away: 0, unavailable: 0 });

    const sub = await subscribe(t.server.ports.pubsub, { branch: 'North Annex' });
    expect(sub.frames[0]).toMatchObject({ type: 'subscribed', branch: 'North Annex', branches: [{ id: annex.id, name: 'North Annex', seq: 0 }] });
    const snap = await waitFor(sub, (f) => f.type === 'snapshot');
    expect((snap.seats as Array<{ seatId: number; state: string }>).map((s) => [s.seatId, s.state])).toEqual(annex.seats.map((id) => [id, 'free']));
    // A "*" subscriber gets the new branch's snapshot too.
    expect(await waitFor(everything, (f) => f.type === 'snapshot' && f.branchId === annex.id)).toMatchObject({ branch: 'North Annex', seq: 0 });

    const sensor = await connectSensor(t.server.ports.sensor);
    expect(await sendReadings(sensor, [{ seatId: annex.seats[1]!, occupied: true, at: Date.now() }])).toMatchObject({ applied: 1, unknownSeats: [] });
    expect(await waitFor(sub, (f) => f.type === 'seat')).toMatchObject({ branchId: annex.id, seatId: annex.seats[1], seq: 1, state: 'occupied' });
    await waitFor(everything, (f) => f.type === 'seat' && f.branchId === annex.id);
    // Occupied by a sensor: only the live model knows that, so these counts are its own.
    expect(await countsOf(rpc, 'North Annex')).toEqual({ total: 3, free: 2, reserved: 0, occupied: 1, away: 0, unavailable: 0 });
    for (const p of [sub, everything, sensor]) p.destroy();
  });

  it('a seat added to a known branch: its first reading is unknown and makes the model look; the next one applies', async () => {
    const main = (await db.pool.query<{ id: number }>(`SELECT id FROM branches WHERE name = 'Main Library'`)).rows[0]!.id;
    const addSeat = async (label: string) =>
      (await db.pool.query<{ id: number }>(`INSERT INTO seats (branch_id, area, label, has_power, has_monitor) VALUES ($1, 'Quiet Floor', $2, true, true) RETURNING id`, [main, label]))
        .rows[0]!.id;
    const before = (await countsOf(rpc, 'Main Library'))!;
    const seat = await addSeat('Q-99');
    const sensor = await connectSensor(t.server.ports.sensor);
    const at = Date.now();
    expect(await sendReadings(sensor, [{ seatId: seat, occupied: true, at }])).toMatchObject({ applied: 0, unknownSeats: [seat] });
    await t.live.discover(); // the look that reading started, or one after it
    expect(t.live.model.seat(seat)).toMatchObject({ id: seat, label: 'Q-99', area: 'Quiet Floor', state: 'free' });
    const sub = await subscribe(t.server.ports.pubsub, { branch: 'Main Library' });
    const snap = await waitFor(sub, (f) => f.type === 'snapshot');
    const labels = (snap.seats as Array<{ label: string }>).map((s) => s.label);
    // In display order: after Q-18, the last of the Quiet Floor.
    expect(labels.slice(labels.indexOf('Q-18'), labels.indexOf('Q-18') + 2)).toEqual(['Q-18', 'Q-99']);
    expect(await sendReadings(sensor, [{ seatId: seat, occupied: true, at: at + 1 }])).toMatchObject({ applied: 1, unknownSeats: [] });
    expect(await waitFor(sub, (f) => f.type === 'seat' && f.seatId === seat)).toMatchObject({ state: 'occupied' });
    expect(await countsOf(rpc, 'Main Library')).toMatchObject({ total: before.total + 1, occupied: before.occupied + 1 });
    // One more seat: the database counts more seats than the model knows, so branches.list has
    // the model look first, then counts from it — the new seat's total with the sensor's
    // occupancy, never a total behind the database nor counts that know nothing of sensors.
    await addSeat('Q-98');
    const looks = t.live.counters.refreshes;
    expect(await countsOf(rpc, 'Main Library')).toMatchObject({ total: before.total + 2, occupied: before.occupied + 1 });
    expect(t.live.counters.refreshes).toBe(looks + 1);
    // seats.list names the seat with the model's state; nothing left to look for.
    const listed = await rpc.call<Array<{ label: string; live: string }>>('seats.list', { branch: 'Main Library' });
    expect(listed.filter((x) => x.label.startsWith('Q-9')).map((x) => [x.label, x.live]).sort()).toEqual([
      ['Q-98', 'free'],
      ['Q-99', 'occupied'],
    ]);
    expect(t.live.counters.refreshes).toBe(looks + 1);
    sub.destroy();
    sensor.destroy();
  });
});

describe('looking for added branches', () => {
  it('is rate-limited to live.refreshMinIntervalMs; a branch that does not exist is still NOT_FOUND', async () => {
    const t = await startTestServer({ live: { refreshEveryMs: 0, refreshMinIntervalMs: 60_000 } }, { db });
    try {
      const looks = () => t.live.counters.refreshes;
      const a = await subscribe(t.server.ports.pubsub, { branch: 'Nowhere Library' });
      expect(a.frames[0]).toMatchObject({ type: 'error', code: 'NOT_FOUND' });
      expect(looks()).toBe(1);
      // Within the interval: answered from what the model knows, without a look.
      const west = await addBranch('West Annex', 1);
      const b = await subscribe(t.server.ports.pubsub, { branch: 'West Annex' });
      expect(b.frames[0]).toMatchObject({ type: 'error', code: 'NOT_FOUND' });
      const sensor = await connectSensor(t.server.ports.sensor);
      expect(await sendReadings(sensor, [{ seatId: west.seats[0]!, occupied: true, at: Date.now() }])).toMatchObject({ unknownSeats: [west.seats[0]] });
      expect(looks()).toBe(1);
      // The same connection may ask again once refused.
      await t.live.refresh();
      b.send({ type: 'subscribe', branch: 'West Annex' });
      expect(await waitFor(b, (f) => f.type === 'subscribed')).toMatchObject({ branch: 'West Annex' });
      for (const p of [a, b, sensor]) p.destroy();
    } finally {
      await t.close();
    }
  });

  it('a listing naming seats the model does not know looks once, whatever the rate limit; a flood of listings then costs no look', async () => {
    const t = await startTestServer({ live: { refreshEveryMs: 0, refreshMinIntervalMs: 60_000 }, discovery: { branchListCacheMs: 0 }, rateLimit: { enabled: false } }, { db });
    try {
      const looks = () => t.live.counters.refreshes;
      const rpc = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
      await t.live.refresh(); // the rate limit's interval starts now
      const east = await addBranch('East Annex', 2);
      const before = looks();
      // The rows name seats that exist: a look begun after they were read finds them.
      const listed = await rpc.call<Array<{ id: number; live: string }>>('seats.list', { branch: 'East Annex' });
      expect(listed.map((x) => [x.id, x.live])).toEqual(east.seats.map((id) => [id, 'free']));
      expect(looks()).toBe(before + 1);
      for (let i = 0; i < 20; i++) await Promise.all([rpc.call('seats.list', { branch: 'East Annex' }), rpc.call('branches.list')]);
      expect(looks()).toBe(before + 1);
      expect(await countsOf(rpc, 'East Annex')).toEqual({ total: 2, free: 2, reserved: 0, occupied: 0, away: 0, unavailable: 0 });
      rpc.close();
    } finally {
      await t.close();
    }
  });

  it('runs every live.refreshEveryMs and finds a branch nobody asked for', async () => {
    const t = await startTestServer({ live: { refreshEveryMs: 50, refreshMinIntervalMs: 60_000 } }, { db });
    try {
      const south = await addBranch('South Annex', 2);
      for (let i = 0; i < 200 && !t.live.hub.branchIds().includes(south.id); i++) await new Promise((r) => setTimeout(r, 10));
      expect(t.live.hub.branchIds()).toContain(south.id);
      const rpc = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
      const branches = await rpc.call<Array<{ id: number; counts: unknown }>>('branches.list');
      rpc.close();
      expect(branches.find((x) => x.id === south.id)?.counts).toEqual({ total: 2, free: 2, reserved: 0, occupied: 0, away: 0, unavailable: 0 });
    } finally {
      await t.close();
    }
  });
});
