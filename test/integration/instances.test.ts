import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, insertReservation, seatEvents, sendReadings, subscribe, userId, waitFor } from '../support/live.js';
import { dropKeys, redisAvailable, redisUrl, testKeyPrefix } from '../support/redis.js';
import { connect, errorOf, makeUsers } from '../support/core.js';
import { ensureBuilt, spawnServe, type ServedProcess } from '../support/serve.js';
import { RpcClient } from '../../clients/rpcClient.js';
import http from 'node:http';

const suite = redisAvailable ? describe : describe.skip;

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
    a.coreEvents.emit({ type: 'reservation', cause: 'reservation.created', reservation: fact, at: new Date().toISOString() });
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

  it('a booking made on B conflicts with the same slot booked on A: one PostgreSQL decides', async () => {
    const [, , , , , , , , , , seat] = await branchSeats(db.pool, 'Engineering Library', 11);
    const [onA, onB] = await makeUsers(a, 2, 'two-instances');
    // Tomorrow on a slot boundary, in a branch open around the clock.
    const slot = 15 * 60_000;
    const start = Math.ceil((Date.now() + 24 * 3_600_000) / slot) * slot;
    const iso = (min: number) => new Date(start + min * 60_000).toISOString();
    const ca = await connect(a, onA);
    const cb = await connect(b, onB);
    try {
      const made = await ca.call<{ id: number; status: string }>('reservations.create', { seatId: seat, start: iso(0), end: iso(60) });
      expect(made).toMatchObject({ status: 'CONFIRMED' });
      for (const [from, to] of [
        [0, 60],
        [30, 90],
        [-30, 15],
      ] as const) {
        const err = await errorOf(cb.call('reservations.create', { seatId: seat, start: iso(from), end: iso(to) }));
        expect(err.code).toBe('CONFLICT');
        expect(err.details?.conflict).toEqual({ start: iso(0), end: iso(60) });
      }
      // Back to back is no conflict, on either instance.
      await expect(cb.call('reservations.create', { seatId: seat, start: iso(60), end: iso(120) })).resolves.toMatchObject({ status: 'CONFIRMED' });
      const held = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM reservations WHERE seat_id = $1 AND status = 'CONFIRMED'`, [seat]);
      expect(held.rows[0]!.n).toBe(2);
    } finally {
      ca.close();
      cb.close();
    }
  });

  it('a window B knows full is bookable on B as soon as a cancellation on A reaches it through the bus', async () => {
    const ALL_DAY = JSON.stringify(Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, { open: '00:00', close: '24:00' }])));
    const branch = await db.pool.query<{ id: number }>(`INSERT INTO branches (name, timezone, hours) VALUES ('Two Seat Hall', 'UTC', $1) RETURNING id`, [ALL_DAY]);
    await db.pool.query(`INSERT INTO seats (branch_id, area, label) VALUES ($1, 'Hall', 'T-1'), ($1, 'Hall', 'T-2')`, [branch.rows[0]!.id]);
    const users = await makeUsers(a, 5, 'full-across');
    const slot = 15 * 60_000;
    const start = Math.ceil((Date.now() + 24 * 3_600_000) / slot) * slot;
    const window = { branch: 'Two Seat Hall', start: new Date(start).toISOString(), end: new Date(start + 3_600_000).toISOString() };
    const [c0, c1, c2, c3] = await Promise.all([connect(a, users[0]), connect(a, users[1]), connect(b, users[2]), connect(b, users[3])]);
    try {
      const first = await c0.call<{ id: number; seatId: number }>('reservations.create', window);
      await c1.call('reservations.create', window);
      // B walks the branch once and learns it is full; its next refusal costs no round trip.
      expect((await errorOf(c2.call('reservations.create', window))).details).toEqual({ reason: 'noSeatFree' });
      const batches = b.reservations.bookingStats().batches;
      expect((await errorOf(c3.call('reservations.create', window))).details).toEqual({ reason: 'noSeatFree' });
      expect(b.reservations.bookingStats().batches).toBe(batches);
      // A cancellation on A: B books the freed seat once the bus has brought the news (no walk meanwhile says full).
      await c0.call('reservations.cancel', { id: first.id });
      const until = Date.now() + 5_000;
      let booked: { seatId: number } | undefined;
      while (!booked && Date.now() < until) {
        const r = await c3.request('reservations.create', [window]);
        if (r.error === null) booked = r.result as { seatId: number };
        else {
          expect(r.error.details).toEqual({ reason: 'noSeatFree' });
          await new Promise((res) => setTimeout(res, 10));
        }
      }
      expect(booked?.seatId).toBe(first.seatId);
      const held = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM reservations r JOIN seats s ON s.id = r.seat_id WHERE s.branch_id = $1 AND r.status = 'CONFIRMED'`,
        [branch.rows[0]!.id],
      );
      expect(held.rows[0]!.n).toBe(2);
    } finally {
      for (const c of [c0, c1, c2, c3]) c.close();
    }
  });

  it("a user's bookings on two instances at once: one goes ahead, the other is refused bookingInFlight, never two seats", async () => {
    const [u] = await makeUsers(a, 1, 'two-at-once');
    const seats = await branchSeats(db.pool, 'Engineering Library', 40);
    const slot = 15 * 60_000;
    const start = Math.ceil((Date.now() + 2 * 24 * 3_600_000) / slot) * slot;
    const ca = await connect(a, u);
    const cb = await connect(b, u);
    try {
      // Rounds of one booking on each instance at the same moment, for the same hour on two seats
      // (three: rules.maxActivePerUser).
      for (let round = 0; round < 3; round++) {
        const when = { start: new Date(start + round * 3_600_000).toISOString(), end: new Date(start + (round + 1) * 3_600_000).toISOString() };
        const replies = await Promise.all([
          ca.request('reservations.create', [{ seatId: seats[2 * round]!, ...when }]),
          cb.request('reservations.create', [{ seatId: seats[2 * round + 1]!, ...when }]),
        ]);
        expect(replies.filter((r) => r.error === null)).toHaveLength(1);
        const refused = replies.find((r) => r.error !== null)!.error!;
        // Refused in the database while the other held the user's lock, or after it committed (one seat at a time).
        const why = refused.code === 'RESOURCE_EXHAUSTED' ? refused.details?.reason : refused.details?.rule;
        expect([
          ['RESOURCE_EXHAUSTED', 'bookingInFlight'],
          ['FAILED_PRECONDITION', 'overlapsOwnBooking'],
        ]).toContainEqual([refused.code, why]);
      }
      const held = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM reservations WHERE user_id = $1 AND status = 'CONFIRMED'`, [u!.id]);
      expect(held.rows[0]!.n).toBe(3);
    } finally {
      ca.close();
      cb.close();
    }
  });
});

/** GET /metrics on a connection of its own (so the cluster's round robin picks a worker each time). */
function metricsOnce(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false, headers: { connection: 'close' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

describe('`carrel serve --workers 2`', () => {
  let db: TestDatabase;
  const spawned: ServedProcess[] = [];
  beforeAll(async () => {
    db = await freshDatabase(2);
    ensureBuilt();
  });
  afterAll(async () => {
    for (const p of spawned) p.cleanup();
    await db?.drop();
  });

  it('without Redis exits 2 and says why', async () => {
    const p = spawnServe(['--workers', '2'], { ports: { rpc: 0, sensor: 0, pubsub: 0, http: 0 }, log: { level: 'warn' } }, { DATABASE_URL: db.url, REDIS_URL: undefined });
    spawned.push(p);
    expect(await p.exited).toEqual({ code: 2, signal: null });
    expect(p.stderr()).toMatch(/--workers 2 needs Redis .*set REDIS_URL/);
  });

  (redisAvailable ? it : it.skip)('with Redis: two workers on shared ports, a reading reaches subscribers of both with one seq', async () => {
    const keyPrefix = testKeyPrefix('workers');
    const p = spawnServe(
      ['--workers', '2'],
      { ports: { rpc: 0, sensor: 0, pubsub: 0, http: 0 }, log: { level: 'warn' }, lifecycle: { enabled: false }, redis: { keyPrefix } },
      { DATABASE_URL: db.url, REDIS_URL: redisUrl, LOG_LEVEL: 'warn' },
    );
    spawned.push(p);
    try {
      const ports = await p.ports;
      // The banner comes with the first worker; wait until a second one answers on the shared RPC port.
      const instances = new Set<string>();
      for (let i = 0; i < 200 && instances.size < 2; i++) {
        const c = await RpcClient.connect('127.0.0.1', ports.rpc);
        instances.add((await c.call<{ instanceId: string }>('server.info')).instanceId);
        c.close();
        if (instances.size < 2) await new Promise((r) => setTimeout(r, 25));
      }
      expect(instances.size).toBe(2);

      const [seat] = await branchSeats(db.pool, 'Main Library', 1);
      const first = await subscribe(ports.pubsub, { branch: 'Main Library' });
      const second = await subscribe(ports.pubsub, { branch: 'Main Library' });
      await first.waitFrames(2);
      await second.waitFrames(2);
      // Round robin put one subscriber on each worker: each worker counts exactly one.
      const counts: number[] = [];
      for (let i = 0; i < 4; i++) counts.push(Number(/^carrel_pubsub_subscribers (\d+)$/m.exec(await metricsOnce(ports.http))?.[1]));
      expect(counts).toEqual([1, 1, 1, 1]);
      expect(first.frames[1]!.seq).toBe(second.frames[1]!.seq);

      const sensor = await connectSensor(ports.sensor);
      await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: Date.now() }]);
      const one = await waitFor(first, (f) => f.type === 'seat');
      const two = await waitFor(second, (f) => f.type === 'seat');
      expect(one).toMatchObject({ seatId: seat, state: 'occupied', seq: (first.frames[1]!.seq as number) + 1 });
      expect(two).toEqual(one);
      for (const peer of [first, second, sensor]) peer.destroy();
      p.child.kill('SIGTERM');
      expect(await p.exited).toEqual({ code: 0, signal: null });
    } finally {
      await dropKeys(keyPrefix);
    }
  }, 30_000);
});
