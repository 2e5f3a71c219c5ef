import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, insertReservation, seatEvents, sendReadings, subscribe, userId, waitFor } from '../support/live.js';
import { dropKeys, redisAvailable, redisUrl, testKeyPrefix } from '../support/redis.js';

const suite = redisAvailable ? describe : describe.skip;

// A booking on B that conflicts with one made on A needs the booking engineer's
// reservations.create (branch `core`); it is not in this branch, so that case is not here.
suite('two instances over one PostgreSQL and one Redis', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  const keyPrefix = testKeyPrefix('instances');
  beforeAll(async () => {
    db = await freshDatabase(6);
    a = await startTestServer({ redis: { url: redisUrl, keyPrefix } }, { db });
    b = await startTestServer({ redis: { url: redisUrl, keyPrefix } }, { db });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
    await dropKeys(keyPrefix);
  });

  it('a reading sent to A reaches subscribers on A and B with the same seq', async () => {
    const [seat] = await branchSeats(db.pool, 'Main Library', 1);
    const onA = await subscribe(a.server.ports.pubsub, { branch: 'Main Library' });
    const onB = await subscribe(b.server.ports.pubsub, { branch: 'Main Library' });
    await onA.waitFrames(2);
    await onB.waitFrames(2);
    expect(onA.frames[1]!.seq).toBe(onB.frames[1]!.seq);
    const sensor = await connectSensor(a.server.ports.sensor);
    await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: Date.now() }]);
    const evA = await waitFor(onA, (f) => f.type === 'seat');
    const evB = await waitFor(onB, (f) => f.type === 'seat');
    expect(evB).toEqual(evA);
    expect(evA).toMatchObject({ seatId: seat, state: 'occupied', seq: (onA.frames[1]!.seq as number) + 1 });
    // B's live model learned the reading too: its snapshot shows it.
    const late = await subscribe(b.server.ports.pubsub, { branch: 'Main Library' });
    const snap = await waitFor(late, (f) => f.type === 'snapshot');
    expect((snap.seats as Array<{ seatId: number; state: string }>).find((s) => s.seatId === seat)).toMatchObject({ state: 'occupied' });
    for (const p of [sensor, onA, onB, late]) p.destroy();
  });

  it('a subscriber resumes on B from a seq it got on A', async () => {
    const [, seat] = await branchSeats(db.pool, 'Main Library', 2);
    const onA = await subscribe(a.server.ports.pubsub, { branch: 'Main Library' });
    await onA.waitFrames(2);
    const sensor = await connectSensor(a.server.ports.sensor);
    const t0 = Date.now() - 60_000;
    await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: t0 }]);
    const seen = await waitFor(onA, (f) => f.type === 'seat');
    onA.destroy();
    await sendReadings(sensor, [{ seatId: seat!, occupied: false, at: t0 + 1000 }]);
    await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: t0 + 2000 }]);
    const since = seen.seq as number;
    const onB = await subscribe(b.server.ports.pubsub, { branch: 'Main Library', since });
    await waitFor(onB, (f) => f.seq === since + 2);
    expect(onB.frames[0]).toMatchObject({ type: 'subscribed', resumed: true });
    expect(seatEvents(onB).map((f) => [f.seq, f.state])).toEqual([
      [since + 1, 'free'],
      [since + 2, 'occupied'],
    ]);
    sensor.destroy();
    onB.destroy();
  });

  it('a resume older than B\'s local memory is served from the shared stream', async () => {
    {
      const [, , seat] = await branchSeats(db.pool, 'Medical Library', 3);
      const onA = await subscribe(a.server.ports.pubsub, { branch: 'Medical Library' });
      await onA.waitFrames(2);
      const base = onA.frames[1]!.seq as number;
      const sensor = await connectSensor(a.server.ports.sensor);
      await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: Date.now() - 5000 }]);
      await waitFor(onA, (f) => f.type === 'seat');
      // A fresh instance started after those events has none of them in memory.
      const d = await startTestServer({ redis: { url: redisUrl, keyPrefix } }, { db });
      try {
        const onD = await subscribe(d.server.ports.pubsub, { branch: 'Medical Library', since: base });
        const ev = await waitFor(onD, (f) => f.type === 'seat');
        expect(onD.frames[0]).toMatchObject({ resumed: true });
        expect(ev).toMatchObject({ seq: base + 1, seatId: seat, state: 'occupied' });
        onD.destroy();
      } finally {
        await d.close();
      }
      sensor.destroy();
      onA.destroy();
    }
  });

  it('a booking committed on A changes the seat for subscribers of B; B\'s model learns the booking', async () => {
    const [, , , seat] = await branchSeats(db.pool, 'Engineering Library', 4);
    const uid = await userId(db.pool);
    const onB = await subscribe(b.server.ports.pubsub, { branch: 'Engineering Library' });
    await onB.waitFrames(2);
    const now = Date.now();
    const fact = await insertReservation(db.pool, { seatId: seat!, userId: uid, startMs: now - 60_000, endMs: now + 3_600_000 });
    a.server.coreEvents.emit({ type: 'reservation', cause: 'reservation.created', reservation: fact, at: new Date().toISOString() });
    expect(await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seat)).toMatchObject({ state: 'reserved', cause: 'reservation.created' });
    // Someone sits down in it, reported to B: occupied and not unbooked, because B knows the booking.
    const sensor = await connectSensor(b.server.ports.sensor);
    await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: Date.now() }]);
    expect(await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seat && f.state === 'occupied')).toMatchObject({ flags: {} });
    sensor.destroy();
    onB.destroy();
  });

  it('a branch added after both started is picked up by each, and its events carry one seq across them', async () => {
    const hours = JSON.stringify(Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, { open: '00:00', close: '24:00' }])));
    const branchId = (await db.pool.query<{ id: number }>(`INSERT INTO branches (name, timezone, hours) VALUES ('Law Library', 'UTC', $1) RETURNING id`, [hours])).rows[0]!.id;
    const seat = (await db.pool.query<{ id: number }>(`INSERT INTO seats (branch_id, area, label) VALUES ($1, 'Stacks', 'L-01') RETURNING id`, [branchId])).rows[0]!.id;
    const onA = await subscribe(a.server.ports.pubsub, { branch: 'Law Library' });
    const onB = await subscribe(b.server.ports.pubsub, { branch: 'Law Library' });
    await onA.waitFrames(2);
    await onB.waitFrames(2);
    expect([onA.frames[1], onB.frames[1]]).toMatchObject([{ type: 'snapshot', seq: 0 }, { type: 'snapshot', seq: 0 }]);
    const sensor = await connectSensor(a.server.ports.sensor);
    await sendReadings(sensor, [{ seatId: seat, occupied: true, at: Date.now() }]);
    const evA = await waitFor(onA, (f) => f.type === 'seat');
    const evB = await waitFor(onB, (f) => f.type === 'seat');
    expect(evA).toMatchObject({ branchId, seatId: seat, state: 'occupied', seq: 1 });
    expect(evB).toEqual(evA);
    for (const p of [sensor, onA, onB]) p.destroy();
  });
});
