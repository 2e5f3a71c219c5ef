import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { deploymentKeys, freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, seatEvents, sendReadings, subscribe, waitFor } from '../support/live.js';
import { dropKeys, redisAvailable, redisUrl, testKeyPrefix } from '../support/redis.js';
import { CuttableProxy } from '../support/proxy.js';

const suite = redisAvailable ? describe : describe.skip;

suite('when Redis goes away', () => {
  let db: TestDatabase;
  let proxy: CuttableProxy;
  let a: TestServer;
  let b: TestServer;
  const keyPrefix = testKeyPrefix('outage');
  beforeAll(async () => {
    db = await freshDatabase(6);
    const u = new URL(redisUrl);
    proxy = new CuttableProxy({ host: u.hostname, port: Number(u.port || 6379) });
    await proxy.open();
    a = await startTestServer({ redis: { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix } }, { db });
    b = await startTestServer({ redis: { url: redisUrl, keyPrefix } }, { db });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await proxy?.cut();
    await db?.drop();
    await dropKeys(keyPrefix);
  });

  it('an instance keeps serving its own events, then catches up and resyncs its subscribers when Redis is back', async () => {
    const [seatA, seatB] = await branchSeats(db.pool, 'Main Library', 2);
    const onA = await subscribe(a.server.ports.pubsub, { branch: 'Main Library' });
    const onB = await subscribe(b.server.ports.pubsub, { branch: 'Main Library' });
    await onA.waitFrames(2);
    await onB.waitFrames(2);
    const sensorA = await connectSensor(a.server.ports.sensor);
    const sensorB = await connectSensor(b.server.ports.sensor);

    await proxy.cut();
    const bus = () => a.live.busStats();
    for (let i = 0; i < 200 && bus().connected; i++) await new Promise((r) => setTimeout(r, 10));
    expect(bus().connected).toBe(false);

    // A's own sensor still reaches A's subscribers, numbered locally; B's reading does not reach A.
    await sendReadings(sensorA, [{ seatId: seatA!, occupied: true, at: Date.now() }]);
    expect(await waitFor(onA, (f) => f.type === 'seat' && f.seatId === seatA)).toMatchObject({ state: 'occupied' });
    await sendReadings(sensorB, [{ seatId: seatB!, occupied: true, at: Date.now() }]);
    await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seatB);
    expect(bus().queued).toBeGreaterThanOrEqual(1);

    await proxy.open();
    // Back: A's subscriber gets a fresh snapshot that includes B's change, B's subscriber gets A's.
    const resync = await waitFor(onA, (f) => f.type === 'snapshot' && f.fresh === true, { timeoutMs: 10_000 });
    expect(resync).toMatchObject({ reason: 'resync' });
    const seats = resync.seats as Array<{ seatId: number; state: string }>;
    expect(seats.find((s) => s.seatId === seatA)).toMatchObject({ state: 'occupied' });
    expect(seats.find((s) => s.seatId === seatB)).toMatchObject({ state: 'occupied' });
    const fromA = await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seatA, { timeoutMs: 10_000 });
    // Numbering stays monotonic for A's subscriber: the shared seq is past every local one.
    expect(resync.seq as number).toBeGreaterThanOrEqual(fromA.seq as number);
    // And live events flow to both again with one seq.
    await sendReadings(sensorB, [{ seatId: seatB!, occupied: false, at: Date.now() }]);
    const evA = await waitFor(onA, (f) => f.type === 'seat' && f.seatId === seatB && f.state === 'free');
    const evB = await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seatB && f.state === 'free');
    expect(evA.seq).toBe(evB.seq);
    for (const p of [onA, onB, sensorA, sensorB]) p.destroy();
  });

  it('two instances end with the same seat states, seat for seat, after readings on both during the outage and the reconnection', async () => {
    const branch = 'Engineering Library';
    const seats = await branchSeats(db.pool, branch, 54);
    const branchId = (await db.pool.query<{ id: number }>('SELECT id FROM branches WHERE name = $1', [branch])).rows[0]!.id;
    const sensorA = await connectSensor(a.server.ports.sensor, { sensorId: 'gw-a' });
    const sensorB = await connectSensor(b.server.ports.sensor, { sensorId: 'gw-b' });
    const busA = () => a.live.busStats();
    const t0 = Date.now() - 120_000; // inside sensors.maxAgeMs

    await proxy.cut();
    for (let i = 0; i < 200 && busA().connected; i++) await new Promise((r) => setTimeout(r, 10));
    expect(busA().connected).toBe(false);
    // During the outage: both report seats 0-5, overlapping on 2 and 3 (B received later on 2, A on
    // 3: a seat's readings count in the order the servers received them, docs/sensors.md).
    await sendReadings(sensorA, [0, 1, 2].map((i) => ({ seatId: seats[i]!, occupied: true, at: t0 + 1_000 })));
    await sendReadings(sensorB, [2, 3, 4, 5].map((i) => ({ seatId: seats[i]!, occupied: i !== 2, at: t0 + (i === 2 ? 5_000 : 2_000) })));
    await sendReadings(sensorA, [{ seatId: seats[3]!, occupied: true, at: t0 + 1_000 }]);

    // Reconnection: every command of A reaches Redis 25 ms late, while both keep sending readings
    // (each to a seat of its own, so an event one instance misses stays missed).
    proxy.delayMs = 25;
    const accepted = proxy.accepted;
    await proxy.open();
    // A reconnects on its own backoff (up to 2 s): the readings start when it is back at the proxy.
    for (let i = 0; i < 500 && proxy.accepted === accepted; i++) await new Promise((r) => setTimeout(r, 5));
    let next = 6;
    let aNext = 50;
    const bReads = async () => {
      await sendReadings(sensorB, [{ seatId: seats[next]!, occupied: true, at: t0 + 10_000 + next }]);
      next++;
    };
    for (let round = 0; next < 47 && !busA().connected; round++) {
      await bReads();
      if (round % 8 === 4 && aNext < 54) {
        await sendReadings(sensorA, [{ seatId: seats[aNext]!, occupied: true, at: t0 + 10_000 + aNext }]);
        aNext++;
      }
      await new Promise((r) => setTimeout(r, 12));
    }
    // A few more while A's reader catches up.
    while (next < 50) await bReads();
    for (let i = 0; i < 500 && !busA().connected; i++) await new Promise((r) => setTimeout(r, 10));
    expect(busA().connected).toBe(true);
    proxy.delayMs = 0;

    // Settled: both have delivered everything the shared counter handed out, and nothing moves.
    const redis = new Redis(redisUrl);
    try {
      let stable = 0;
      for (let i = 0; i < 500 && stable < 10; i++) {
        const counter = Number(await redis.get(`${await deploymentKeys(db.pool, keyPrefix)}:seq:${branchId}`));
        const ok = busA().queued === 0 && a.live.hub.seqOf(branchId) === counter && b.live.hub.seqOf(branchId) === counter;
        stable = ok ? stable + 1 : 0;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(stable).toBe(10);
    } finally {
      redis.disconnect();
    }

    const onA = await subscribe(a.server.ports.pubsub, { branch });
    const onB = await subscribe(b.server.ports.pubsub, { branch });
    const [snapA, snapB] = [await waitFor(onA, (f) => f.type === 'snapshot'), await waitFor(onB, (f) => f.type === 'snapshot')];
    expect(snapA.seq).toBe(snapB.seq);
    const states = (snap: Record<string, unknown>) => (snap.seats as Array<{ seatId: number; state: string; flags: object }>).map((s) => [s.seatId, s.state, s.flags]);
    expect(states(snapA)).toEqual(states(snapB));
    // What each reported is what both show; the overlapping seats follow the reading received last.
    const stateOf = (id: number) => states(snapA).find(([s]) => s === id)?.[1];
    expect(seats.slice(6, next).map(stateOf)).toEqual(seats.slice(6, next).map(() => 'occupied'));
    expect(seats.slice(50, aNext).map(stateOf)).toEqual(seats.slice(50, aNext).map(() => 'occupied'));
    expect([0, 1, 2, 3, 4, 5].map((i) => stateOf(seats[i]!))).toEqual(['occupied', 'occupied', 'free', 'occupied', 'occupied', 'occupied']);
    // And the live models (branches.list counts) agree with what subscribers see.
    const modelStates = (t: TestServer) => t.live.model.seatsOf(branchId).map((s) => [s.id, s.state]);
    expect(modelStates(a)).toEqual(states(snapA).map(([id, state]) => [id, state]));
    expect(modelStates(b)).toEqual(modelStates(a));
    for (const p of [onA, onB, sensorA, sensorB]) p.destroy();
  });

  it('readings dropped from the offline queue still reach the other instance: a seat\'s newest change is kept', async () => {
    const branch = 'Medical Library';
    const seats = await branchSeats(db.pool, branch, 3);
    const c = await startTestServer({ redis: { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix, offlineQueueMax: 1 } }, { db });
    try {
      const sensor = await connectSensor(c.server.ports.sensor);
      const bus = () => c.live.busStats();
      await proxy.cut();
      for (let i = 0; i < 200 && bus().connected; i++) await new Promise((r) => setTimeout(r, 10));
      expect(bus().connected).toBe(false);
      const t0 = Date.now() - 60_000;
      // Seat 0 twice (its first change is superseded), then seats 1 and 2: three drops from a queue of one.
      await sendReadings(sensor, [
        { seatId: seats[0]!, occupied: true, at: t0 },
        { seatId: seats[0]!, occupied: false, at: t0 + 1 },
        { seatId: seats[1]!, occupied: true, at: t0 + 2 },
        { seatId: seats[2]!, occupied: true, at: t0 + 3 },
      ]);
      expect(bus()).toMatchObject({ dropped: 3, queued: 3 });
      const onB = await subscribe(b.server.ports.pubsub, { branch });
      await onB.waitFrames(2);
      await proxy.open();
      for (let i = 0; i < 500 && !bus().connected; i++) await new Promise((r) => setTimeout(r, 10));
      expect(bus().connected).toBe(true);
      await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seats[2]);
      // B's subscriber got the final state of every seat c reported (without seat 0's superseded one).
      expect(seatEvents(onB).map((f) => [f.seatId, f.state])).toEqual([
        [seats[0], 'free'],
        [seats[1], 'occupied'],
        [seats[2], 'occupied'],
      ]);
      const onC = await subscribe(c.server.ports.pubsub, { branch });
      const onB2 = await subscribe(b.server.ports.pubsub, { branch });
      const pick = (snap: Record<string, unknown>) =>
        (snap.seats as Array<{ seatId: number; state: string }>).filter((x) => seats.includes(x.seatId)).map((x) => [x.seatId, x.state]);
      const [snapB, snapC] = [await waitFor(onB2, (f) => f.type === 'snapshot'), await waitFor(onC, (f) => f.type === 'snapshot')];
      expect(pick(snapB)).toEqual([
        [seats[0], 'free'],
        [seats[1], 'occupied'],
        [seats[2], 'occupied'],
      ]);
      expect(pick(snapC)).toEqual(pick(snapB));
      for (const p of [onB, onB2, onC, sensor]) p.destroy();
    } finally {
      await c.close();
    }
  });
});
