// Redis state bound to the database it describes (docs/redis.md). Instances of one deployment
// share Redis keys; a database recreated from nothing (or a second deployment on the same Redis
// and key prefix) used to read the seat states and counters another database left there: a
// reading that changed a seat was dropped as a repeat of the other database's last published
// state, and no instance told its subscribers. Here every file's deployments share one key
// prefix, as two deployments left at the default prefix do.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase, newDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, seatEvents, sendReadings, subscribe, waitFor, type Frame } from '../support/live.js';
import type { RawPeer } from '../support/peer.js';
import { dropKeys, redisAvailable, redisUrl, testKeyPrefix } from '../support/redis.js';
import { CuttableProxy } from '../support/proxy.js';
import { PassThrough } from 'node:stream';
import { watch } from '../../clients/watch.js';

const suite = redisAvailable ? describe : describe.skip;
const branch = 'Main Library';

/** What a test opened, closed after it (newest first) even when it failed. */
const undo: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of undo.splice(0).reverse()) await f();
});

async function serve(keyPrefix: string | null, db: TestDatabase): Promise<TestServer> {
  const t = await startTestServer({ redis: { url: keyPrefix === null ? null : redisUrl, keyPrefix: keyPrefix ?? 'carrel' }, lifecycle: { enabled: false } }, { db });
  undo.push(() => t.close());
  return t;
}

async function database(kind: 'new' | 'clone'): Promise<TestDatabase> {
  const db = kind === 'new' ? await newDatabase(6) : await freshDatabase(6);
  undo.push(() => db.drop());
  return db;
}

async function watcher(t: TestServer, req: Frame = { branch }): Promise<RawPeer> {
  const peer = await subscribe(t.server.ports.pubsub, req);
  undo.push(() => peer.destroy());
  return peer;
}

async function sensor(t: TestServer, sensorId: string): Promise<RawPeer> {
  const peer = await connectSensor(t.server.ports.sensor, { sensorId });
  undo.push(() => peer.destroy());
  return peer;
}

function stateIn(snapshot: Frame, seatId: number): string | undefined {
  return (snapshot.seats as Array<{ seatId: number; state: string }>).find((s) => s.seatId === seatId)?.state;
}

/** One instance of another database publishes readings for `seats` (occupied) and stops; its keys stay. */
async function leaveStaleKeys(keyPrefix: string, db: TestDatabase, seats: number[]): Promise<{ seq: number; epoch: unknown }> {
  const x = await startTestServer({ redis: { url: redisUrl, keyPrefix }, lifecycle: { enabled: false } }, { db });
  try {
    const onX = await subscribe(x.server.ports.pubsub, { branch });
    const sensorX = await connectSensor(x.server.ports.sensor, { sensorId: 'gw-old' });
    for (const [i, seatId] of seats.entries()) await sendReadings(sensorX, [{ seatId, occupied: true, at: Date.now() - 1000 + i }]);
    const last = await waitFor(onX, (f) => f.type === 'seat' && f.seatId === seats[seats.length - 1]);
    const subscribed = onX.frames[0]!;
    onX.destroy();
    sensorX.destroy();
    return { seq: last.seq as number, epoch: subscribed.epoch };
  } finally {
    await x.close();
  }
}

suite('Redis state of another database is never used', () => {
  const keyPrefix = testKeyPrefix('stale');
  afterAll(async () => dropKeys(keyPrefix));

  it('stale keys written by another database\'s instance + a fresh database: a sensor reading produces the seat event on every instance', async () => {
    const old = await database('new');
    const seats = await branchSeats(old.pool, branch, 3);
    await leaveStaleKeys(keyPrefix, old, seats);

    // The database is recreated: the same branches and seats (same ids), no readings.
    const fresh = await database('new');
    expect(await branchSeats(fresh.pool, branch, 3)).toEqual(seats);
    const a = await serve(keyPrefix, fresh);
    const b = await serve(keyPrefix, fresh);
    const onA = await watcher(a);
    const onB = await watcher(b);
    const [snapA, snapB] = [await waitFor(onA, (f) => f.type === 'snapshot'), await waitFor(onB, (f) => f.type === 'snapshot')];
    expect(seats.map((s) => [stateIn(snapA, s), stateIn(snapB, s)])).toEqual(seats.map(() => ['free', 'free']));

    // The other database's last published states were "occupied": the same readings now must still be told.
    const sensorA = await sensor(a, 'gw-a');
    const sensorB = await sensor(b, 'gw-b');
    await sendReadings(sensorA, [{ seatId: seats[0]!, occupied: true, at: Date.now() }]);
    await sendReadings(sensorB, [{ seatId: seats[1]!, occupied: true, at: Date.now() }]);
    for (const seatId of seats.slice(0, 2)) {
      const evA = await waitFor(onA, (f) => f.type === 'seat' && f.seatId === seatId);
      const evB = await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seatId);
      expect(evA).toMatchObject({ state: 'occupied', cause: 'sensor' });
      expect(evB).toEqual(evA);
    }
    // Numbered in this database's own sequence, from its start.
    expect(seatEvents(onA).map((f) => f.seq)).toEqual([1, 2]);
    expect(seatEvents(onB).map((f) => f.seq)).toEqual([1, 2]);
  }, 30_000);

  it('a subscriber resuming across a sequence restart is told (a fresh snapshot, reason "seqReset"), never replayed the new sequence\'s events', async () => {
    const old = await database('new');
    const seats = await branchSeats(old.pool, branch, 4);
    // Its subscriber saw seq 1 of the old database.
    const before = await leaveStaleKeys(keyPrefix, old, seats.slice(0, 1));
    expect(before.seq).toBeGreaterThanOrEqual(1);
    expect(typeof before.epoch).toBe('string');

    const fresh = await database('new');
    const a = await serve(keyPrefix, fresh);
    const onA = await watcher(a);
    const sensorA = await sensor(a, 'gw-a');
    // The new sequence runs past the old one: seqs 1..3, other seats.
    for (const [i, seatId] of seats.slice(1).entries()) await sendReadings(sensorA, [{ seatId, occupied: true, at: Date.now() - 100 + i }]);
    await waitFor(onA, (f) => f.type === 'seat' && f.seq === 3);
    const now = onA.frames[0]!;
    expect(now.epoch).not.toBe(before.epoch);

    // Resuming from seq 1 of the old sequence: told, with the whole current state.
    const resumed = await watcher(a, { branch, since: before.seq, epoch: before.epoch });
    const snap = await waitFor(resumed, (f) => f.type === 'snapshot');
    expect(resumed.frames[0]).toMatchObject({ type: 'subscribed', resumed: false, epoch: now.epoch, branches: [{ seq: 3, resumed: false, epoch: now.epoch }] });
    expect(snap).toMatchObject({ fresh: true, reason: 'seqReset', seq: 3, epoch: now.epoch });
    expect(seats.slice(1).map((s) => stateIn(snap, s))).toEqual(['occupied', 'occupied', 'occupied']);
    expect(seatEvents(resumed)).toEqual([]);
    // The same seq with the current epoch resumes as before.
    const again = await watcher(a, { branch, since: 2, epoch: now.epoch });
    await waitFor(again, (f) => f.type === 'seat' && f.seq === 3);
    expect(again.frames[0]).toMatchObject({ resumed: true });
  }, 30_000);

  it('a restored backup (same deployment id) behind what Redis last published: a reading still produces the seat event on every instance', async () => {
    const db = await database('clone');
    const prefix = `${keyPrefix}:restore`;
    const seats = await branchSeats(db.pool, branch, 2);
    await leaveStaleKeys(prefix, db, seats);
    // The backup was taken before those readings.
    await db.pool.query('DELETE FROM seat_live WHERE seat_id = ANY($1)', [seats]);

    const a = await serve(prefix, db);
    const b = await serve(prefix, db);
    const onA = await watcher(a);
    const onB = await watcher(b);
    const snapA = await waitFor(onA, (f) => f.type === 'snapshot');
    await waitFor(onB, (f) => f.type === 'snapshot');
    expect(seats.map((s) => stateIn(snapA, s))).toEqual(['free', 'free']);
    const sensorB = await sensor(b, 'gw-b');
    await sendReadings(sensorB, [{ seatId: seats[0]!, occupied: true, at: Date.now() }]);
    const evA = await waitFor(onA, (f) => f.type === 'seat' && f.seatId === seats[0]);
    const evB = await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seats[0]);
    expect(evA).toMatchObject({ state: 'occupied', seq: (snapA.seq as number) + 1 });
    expect(evB).toEqual(evA);
  }, 30_000);
});

describe('one instance without Redis, restarted', () => {
  it('a subscriber resuming after the restart is told its sequence restarted, not replayed the new one', async () => {
    const db = await database('clone');
    const seats = await branchSeats(db.pool, branch, 3);
    const first = await serve(null, db);
    const onFirst = await watcher(first);
    const sensor1 = await sensor(first, 'gw-1');
    await sendReadings(sensor1, [{ seatId: seats[0]!, occupied: true, at: Date.now() - 100 }]);
    const seen = await waitFor(onFirst, (f) => f.type === 'seat');
    const epoch = onFirst.frames[0]!.epoch;
    onFirst.destroy();
    sensor1.destroy();
    await first.close();

    const second = await serve(null, db);
    const sensor2 = await sensor(second, 'gw-2');
    await sendReadings(sensor2, [{ seatId: seats[1]!, occupied: true, at: Date.now() - 50 }]);
    await sendReadings(sensor2, [{ seatId: seats[2]!, occupied: true, at: Date.now() }]);
    const probe = await watcher(second);
    await waitFor(probe, (f) => f.type === 'snapshot' && f.seq === 2);
    const resumed = await watcher(second, { branch, since: seen.seq, epoch });
    const snap = await waitFor(resumed, (f) => f.type === 'snapshot');
    expect(resumed.frames[0]).toMatchObject({ resumed: false });
    expect(snap).toMatchObject({ fresh: true, reason: 'seqReset', seq: 2 });
    expect(seats.map((s) => stateIn(snap, s))).toEqual(['occupied', 'occupied', 'occupied']);
    expect(seatEvents(resumed)).toEqual([]);
  }, 30_000);
});

describe('`carrel watch` across a restart of a server without Redis', () => {
  it('resumes with its epoch, is told the sequence restarted, and takes the fresh snapshot instead of the new sequence\'s events', async () => {
    const db = await database('clone');
    const seats = await branchSeats(db.pool, branch, 3);
    const first = await serve(null, db);
    // The watcher reaches the server through a proxy, so the restarted server answers on the same port.
    let proxy = new CuttableProxy({ host: '127.0.0.1', port: first.server.ports.pubsub });
    await proxy.open();
    undo.push(() => proxy.cut());
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const frames = () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Frame);
    const stop = new AbortController();
    const watching = watch({ branch, server: `127.0.0.1:${proxy.port}`, json: true, out, signal: stop.signal, durationSec: 25 });
    undo.push(async () => {
      stop.abort();
      await watching;
    });
    const until = async (what: string, cond: () => boolean) => {
      for (const deadline = Date.now() + 10_000; !cond(); await new Promise((r) => setTimeout(r, 20))) if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${text.slice(-500)}`);
    };
    await until('the snapshot', () => frames().some((f) => f.type === 'snapshot'));
    const sensor1 = await sensor(first, 'gw-1');
    await sendReadings(sensor1, [{ seatId: seats[0]!, occupied: true, at: Date.now() - 100 }]);
    await until('seq 1', () => frames().some((f) => f.type === 'seat' && f.seq === 1));
    sensor1.destroy();

    await proxy.cut();
    await first.close();
    const second = await serve(null, db);
    const sensor2 = await sensor(second, 'gw-2');
    await sendReadings(sensor2, [{ seatId: seats[1]!, occupied: true, at: Date.now() - 50 }]);
    await sendReadings(sensor2, [{ seatId: seats[2]!, occupied: true, at: Date.now() }]);
    const before = frames().length;
    const port = proxy.port;
    proxy = new CuttableProxy({ host: '127.0.0.1', port: second.server.ports.pubsub });
    proxy.port = port;
    await proxy.open();
    await until('the answer after the restart', () => frames().slice(before).some((f) => f.type === 'snapshot'));
    const after = frames().slice(before);
    expect(after.map((f) => f.type).slice(0, 2)).toEqual(['subscribed', 'snapshot']);
    expect(after[0]).toMatchObject({ resumed: false });
    expect(after[1]).toMatchObject({ fresh: true, reason: 'seqReset', seq: 2 });
    expect(seats.map((id) => stateIn(after[1]!, id))).toEqual(['occupied', 'occupied', 'occupied']);
  }, 30_000);
});


describe('the deployment id (migration 012)', () => {
  it('is one row that a second insert cannot join; two databases made from nothing get different ids; a database without it is refused at start', async () => {
    const db = await database('clone');
    const ids = await db.pool.query<{ id: string }>('SELECT id::text AS id FROM deployment');
    expect(ids.rows).toHaveLength(1);
    await expect(db.pool.query('INSERT INTO deployment DEFAULT VALUES')).rejects.toMatchObject({ code: '23505' });
    await expect(db.pool.query('INSERT INTO deployment (one) VALUES (false)')).rejects.toMatchObject({ code: '23514' });
    const [x, y] = [await database('new'), await database('new')];
    const idOf = async (d: TestDatabase) => (await d.pool.query<{ id: string }>('SELECT id::text AS id FROM deployment')).rows[0]!.id;
    expect(await idOf(x)).not.toBe(await idOf(y));
    await db.pool.query('DROP TABLE deployment');
    await expect(startTestServer({ lifecycle: { enabled: false } }, { db })).rejects.toThrow(/no deployment id .*carrel db migrate/);
  }, 30_000);
});
