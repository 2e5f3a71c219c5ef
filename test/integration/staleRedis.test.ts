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
