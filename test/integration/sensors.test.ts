import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { sha256Hex } from '../../src/sensors/sensorKeys.js';
import { RawPeer, rawFrame } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, insertReservation, seatEvents, sendReadings, subscribe, userId, waitFor } from '../support/live.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase(4);
});
afterAll(async () => {
  await db.drop();
});

describe('sensor port: who may speak', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({}, { db });
  });
  afterAll(async () => t.close());

  it('refuses an unknown key with one PERMISSION_DENIED frame and closes', async () => {
    const peer = await RawPeer.connect(t.server.ports.sensor);
    peer.send({ type: 'hello', sensorId: 'gw-x', key: 'not-a-real-key' });
    await peer.closed;
    expect(peer.frames).toEqual([expect.objectContaining({ type: 'error', code: 'PERMISSION_DENIED' })]);
  });

  it('refuses anything before hello with an error and closes', async () => {
    const peer = await RawPeer.connect(t.server.ports.sensor);
    peer.send({ type: 'occupancy', readings: [{ seatId: 1, occupied: true, at: new Date().toISOString() }] });
    await peer.closed;
    expect(peer.frames).toEqual([expect.objectContaining({ type: 'error', code: 'UNAUTHENTICATED' })]);
  });

  it('accepts a key stored in sensor_keys by its SHA-256, and refuses it once revoked', async () => {
    await db.pool.query('INSERT INTO sensor_keys (name, key_sha256) VALUES ($1, $2)', ['east-wing', sha256Hex('east-wing-secret-1')]);
    const ok = await connectSensor(t.server.ports.sensor, { key: 'east-wing-secret-1' });
    expect(ok.frames[0]).toMatchObject({ type: 'welcome', sensorId: 'gw-test' });
    ok.destroy();
    await db.pool.query("UPDATE sensor_keys SET revoked_at = now() WHERE name = 'east-wing'");
    const peer = await RawPeer.connect(t.server.ports.sensor);
    peer.send({ type: 'hello', sensorId: 'gw-test', key: 'east-wing-secret-1' });
    await peer.closed;
    expect(peer.frames[0]).toMatchObject({ type: 'error', code: 'PERMISSION_DENIED' });
  });

  it('answers bad frames with stable codes, bad readings with per-reading codes, and keeps the connection', async () => {
    const [seat] = await branchSeats(db.pool, 'Medical Library', 1);
    const peer = await connectSensor(t.server.ports.sensor);
    const now = Date.now();
    peer.write(rawFrame('{"type": "occupancy", '));
    peer.send({ type: 'occupancy', ref: 1, readings: [{ seatId: seat, occupied: 'yes', at: new Date(now).toISOString() }] });
    peer.send({ type: 'occupancy', ref: 2, readings: [] });
    peer.send({ type: 'occupancy', ref: 3, readings: Array.from({ length: 501 }, () => ({ seatId: seat, occupied: true, at: new Date(now).toISOString() })) });
    peer.send({ type: 'occupancy', ref: 4, readings: [{ seatId: seat, occupied: true, at: 'yesterday-ish' }] });
    peer.send({ type: 'occupancy', ref: 5, readings: [{ seatId: seat, occupied: true, at: new Date(now + 3_600_000).toISOString() }] });
    peer.send({ type: 'dance' });
    peer.send({ type: 'occupancy', ref: 6, readings: [{ seatId: seat, occupied: true, at: new Date(now).toISOString() }, { seatId: 999_999, occupied: true, at: new Date(now).toISOString() }] });
    const frames = await peer.waitFrames(8);
    expect(frames.slice(1, 7).map((f) => f.code ?? f.type)).toEqual(['BAD_FRAME', 'ack', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'ack', 'ack']);
    expect(frames.slice(2, 7).map((f) => f.ref)).toEqual([1, 2, 3, 4, 5]);
    // A frame that is not a list of 1-500 readings is refused whole; a bad reading alone, with its code.
    expect(frames[2]).toEqual({ type: 'ack', ref: 1, applied: 0, stale: 0, refused: { INVALID_READING: [0] }, unknownSeats: [] });
    expect(frames[5]).toEqual({ type: 'ack', ref: 4, applied: 0, stale: 0, refused: { AT_NOT_RFC3339: [0] }, unknownSeats: [] });
    expect(frames[6]).toEqual({ type: 'ack', ref: 5, applied: 0, stale: 0, refused: { AT_IN_FUTURE: [0] }, unknownSeats: [] });
    expect(frames[7]).toMatchObject({ type: 'error', code: 'INVALID_REQUEST' });
    const ack = await waitFor(peer, (f) => f.ref === 6);
    expect(ack).toEqual({ type: 'ack', ref: 6, applied: 1, stale: 0, refused: { UNKNOWN_SEAT: [1] }, unknownSeats: [999_999] });
    peer.destroy();
  });
});

describe('sensor readings reach subscribers', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ sensors: { flushEveryMs: 60_000 } }, { db });
  });
  afterAll(async () => t.close());

  it('a reading becomes a seat event after the snapshot, with the next seq and the unbooked flag', async () => {
    const [seat] = await branchSeats(db.pool, 'Main Library', 1);
    const sub = await subscribe(t.server.ports.pubsub, { branch: 'Main Library' });
    const [subscribed, snapshot] = await sub.waitFrames(2);
    expect(subscribed).toMatchObject({ type: 'subscribed', branch: 'Main Library' });
    expect(snapshot).toMatchObject({ type: 'snapshot', branch: 'Main Library' });
    const seats = snapshot!.seats as Array<{ seatId: number; state: string; area: string }>;
    expect(seats.length).toBe(54);
    expect(seats.find((s) => s.seatId === seat)).toMatchObject({ state: 'free', flags: {} });
    const sensor = await connectSensor(t.server.ports.sensor);
    const at = new Date().toISOString();
    expect(await sendReadings(sensor, [{ seatId: seat!, occupied: true, at }])).toMatchObject({ applied: 1, stale: 0 });
    const ev = await waitFor(sub, (f) => f.type === 'seat');
    expect(ev).toEqual({
      type: 'seat',
      branch: 'Main Library',
      branchId: snapshot!.branchId,
      seq: (snapshot!.seq as number) + 1,
      seatId: seat,
      state: 'occupied',
      flags: { unbookedOccupancy: true },
      cause: 'sensor',
      at,
    });
    sensor.destroy();
    sub.destroy();
  });

  it('out-of-order and repeated readings change nothing', async () => {
    const [, seat] = await branchSeats(db.pool, 'Main Library', 2);
    const sub = await subscribe(t.server.ports.pubsub, { branch: 'Main Library' });
    await sub.waitFrames(2);
    const sensor = await connectSensor(t.server.ports.sensor);
    const t0 = Date.now() - 10_000;
    expect(await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: t0 }])).toMatchObject({ applied: 1 });
    expect(await sendReadings(sensor, [{ seatId: seat!, occupied: false, at: t0 + 1000 }])).toMatchObject({ applied: 1 });
    // A gateway resending after a reconnect: the same readings again, and an older one.
    expect(await sendReadings(sensor, [
      { seatId: seat!, occupied: true, at: t0 },
      { seatId: seat!, occupied: false, at: t0 + 1000 },
      { seatId: seat!, occupied: true, at: t0 + 500 },
    ])).toMatchObject({ applied: 0, stale: 3 });
    // A fresh reading afterwards still gets through, so we know the stream was not stuck.
    expect(await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: t0 + 2000 }])).toMatchObject({ applied: 1 });
    await waitFor(sub, (f) => f.type === 'seat' && f.at === new Date(t0 + 2000).toISOString());
    const events = seatEvents(sub).filter((f) => f.seatId === seat);
    expect(events.map((e) => [e.state, e.at])).toEqual([
      ['occupied', new Date(t0).toISOString()],
      ['free', new Date(t0 + 1000).toISOString()],
      ['occupied', new Date(t0 + 2000).toISOString()],
    ]);
    const seqs = seatEvents(sub).map((e) => e.seq as number);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    sensor.destroy();
    sub.destroy();
  });

  it('coalesces readings: seat_live gets the latest per seat in one statement per flush', async () => {
    const seats = await branchSeats(db.pool, 'Engineering Library', 3);
    const sensor = await connectSensor(t.server.ports.sensor);
    const t0 = Date.now() - 60_000;
    for (let i = 0; i < 20; i++) {
      await sendReadings(sensor, seats.map((seatId) => ({ seatId, occupied: i % 2 === 0, at: t0 + i * 1000 })));
    }
    const before = t.live.coalescer.stats.flushes;
    expect(t.live.coalescer.pendingCount).toBeGreaterThanOrEqual(3);
    await t.live.coalescer.flush();
    expect(t.live.coalescer.stats.flushes).toBe(before + 1);
    const rows = await db.pool.query<{ seat_id: number; occupied: boolean; reading_at: Date; sensor_id: string }>(
      'SELECT seat_id, occupied, reading_at, sensor_id FROM seat_live WHERE seat_id = ANY($1) ORDER BY seat_id',
      [seats],
    );
    expect(rows.rows.map((r) => [r.seat_id, r.occupied, r.reading_at.getTime(), r.sensor_id])).toEqual(
      seats.map((id) => [id, false, t0 + 19_000, 'gw-test']),
    );
    sensor.destroy();
  });

  it('a heartbeat keeps a sensor online; silence past offlineAfterMs flags the seat', async () => {
    const clock = new FakeClock(Date.now());
    const s = await startTestServer({ sensors: { offlineAfterMs: 60_000 } }, { db, clock });
    try {
      const [, , seat] = await branchSeats(db.pool, 'Medical Library', 3);
      const sub = await subscribe(s.server.ports.pubsub, { branch: 'Medical Library' });
      await sub.waitFrames(2);
      const sensor = await connectSensor(s.server.ports.sensor);
      await sendReadings(sensor, [{ seatId: seat!, occupied: false, at: clock.now() - 1000 }]);
      clock.advance(50_000);
      sensor.send({ type: 'heartbeat' });
      await sendReadings(sensor, [{ seatId: seat!, occupied: false, at: clock.now() - 1000 }]); // a stale-free no-op, proves the heartbeat was read
      clock.advance(50_000);
      s.live.tick();
      expect(seatEvents(sub).filter((e) => e.seatId === seat && (e.flags as object) && 'sensorOffline' in (e.flags as object))).toEqual([]);
      clock.advance(20_000);
      s.live.tick();
      const offline = await waitFor(sub, (f) => f.type === 'seat' && f.seatId === seat);
      expect(offline).toMatchObject({ state: 'free', flags: { sensorOffline: true }, cause: 'sensor' });
      await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: clock.now() }]);
      const back = await waitFor(sub, (f) => f.type === 'seat' && f.seatId === seat && f.seq === (offline.seq as number) + 1);
      expect(back).toMatchObject({ state: 'occupied', flags: { unbookedOccupancy: true } });
      sensor.destroy();
      sub.destroy();
    } finally {
      await s.close();
    }
  });
});

describe('reservations and the clock drive live state', () => {
  it('a booking starting, being checked in by a sensor, left empty (away) and released at its hold: each an event (FakeClock)', async () => {
    const clock = new FakeClock(Date.parse('2027-03-02T14:50:00Z'));
    const t = await startTestServer(
      { sensors: { offlineAfterMs: 3_600_000 }, presence: { awayMinutes: 10 } },
      { db, clock },
    );
    try {
      const seat = (await branchSeats(db.pool, 'Engineering Library', 6))[5];
      const uid = await userId(db.pool);
      const start = Date.parse('2027-03-02T15:00:00Z');
      const end = Date.parse('2027-03-02T17:00:00Z');
      const sub = await subscribe(t.server.ports.pubsub, { branch: 'Engineering Library' });
      await sub.waitFrames(2);
      const fact = await insertReservation(db.pool, { seatId: seat!, userId: uid, startMs: start, endMs: end });
      // Someone waits for this seat for the second hour of that booking.
      const waiter = await userId(db.pool, 's1002');
      const entry = await db.pool.query<{ id: number }>(
        `INSERT INTO waitlist (user_id, seat_id, during) VALUES ($1, $2, tstzrange($3, $4, '[)')) RETURNING id`,
        [waiter, seat, new Date(start + 60 * 60_000), new Date(end)],
      );
      t.coreEvents.emit({ type: 'reservation', cause: 'reservation.created', reservation: fact, at: new Date(clock.now()).toISOString() });
      // Booked for later: the seat stays free until the booking starts.
      t.live.tick();
      expect(seatEvents(sub).filter((e) => e.seatId === seat)).toEqual([]);
      clock.set(start);
      t.live.tick();
      expect(await waitFor(sub, (f) => f.type === 'seat' && f.seatId === seat)).toMatchObject({ state: 'reserved', cause: 'reservation.created', flags: {} });

      // Sitting down 5 minutes in, inside the check-in window: the booking is checked in.
      clock.set(start + 5 * 60_000);
      const sensor = await connectSensor(t.server.ports.sensor);
      await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: clock.now() }]);
      await t.live.settled();
      const row = await db.pool.query('SELECT status, checked_in_at FROM reservations WHERE id = $1', [fact.id]);
      expect(row.rows[0]).toMatchObject({ status: 'CHECKED_IN', checked_in_at: new Date(start + 5 * 60_000) });
      await waitFor(sub, (f) => f.type === 'seat' && f.seatId === seat && f.state === 'occupied');

      // Left empty: away, held for 10 minutes; at the hold's end (not before) the booking is
      // released and the seat freed.
      clock.set(start + 30 * 60_000);
      await sendReadings(sensor, [{ seatId: seat!, occupied: false, at: clock.now() }]);
      await t.live.settled();
      const away = await waitFor(sub, (f) => f.type === 'seat' && f.seatId === seat && f.state === 'away');
      expect(away).toMatchObject({ cause: 'away', holdUntil: new Date(start + 40 * 60_000).toISOString() });
      clock.advance(9 * 60_000);
      t.live.tick();
      await t.live.settled();
      expect((await db.pool.query('SELECT status FROM reservations WHERE id = $1', [fact.id])).rows[0].status).toBe('CHECKED_IN');
      clock.advance(60_000);
      t.live.tick();
      await t.live.settled();
      const released = await db.pool.query<{ status: string; end_at: Date }>('SELECT status, upper(during) AS end_at FROM reservations WHERE id = $1', [fact.id]);
      // Released at start + 40 min; like any check-out it ends at the next slot boundary.
      expect(released.rows[0]).toEqual({ status: 'COMPLETED', end_at: new Date(start + 45 * 60_000) });
      const freed = await waitFor(sub, (f) => f.type === 'seat' && f.seatId === seat && f.state === 'free');
      expect(freed).toMatchObject({ cause: 'checkOut' });
      // The released time went to the waiter: an offer holding its window on that seat.
      const offer = await db.pool.query<{ status: string; user_id: number; start_at: Date; end_at: Date }>(
        `SELECT r.status, r.user_id, lower(r.during) AS start_at, upper(r.during) AS end_at FROM reservations r WHERE r.seat_id = $1 AND r.id <> $2`,
        [seat, fact.id],
      );
      expect(offer.rows).toEqual([{ status: 'OFFERED', user_id: waiter, start_at: new Date(start + 60 * 60_000), end_at: new Date(end) }]);
      expect((await db.pool.query('SELECT status FROM waitlist WHERE id = $1', [entry.rows[0]!.id])).rows[0].status).toBe('OFFERED');
      expect(t.live.counters).toMatchObject({ autoCheckIns: 1, autoReleases: 1 });
      const causes = seatEvents(sub).filter((e) => e.seatId === seat).map((e) => `${e.state}:${e.cause}`);
      expect(causes).toEqual(['reserved:reservation.created', 'occupied:sensor', 'reserved:sensor', 'away:away', 'free:checkOut']);
      sensor.destroy();
      sub.destroy();
    } finally {
      await t.close();
    }
  });

  it('sitting down outside the check-in window checks nothing in; with autoCheckIn off neither', async () => {
    const clock = new FakeClock(Date.parse('2027-03-03T09:00:00Z'));
    const t = await startTestServer({ sensors: { autoCheckIn: false } }, { db, clock });
    const t2 = await startTestServer({}, { db, clock });
    try {
      const [, , , , , , seatA, seatB] = await branchSeats(db.pool, 'Engineering Library', 8);
      const uid = await userId(db.pool, 's1002');
      const start = Date.parse('2027-03-03T10:00:00Z');
      const a = await insertReservation(db.pool, { seatId: seatA!, userId: uid, startMs: start, endMs: start + 3_600_000 });
      const b = await insertReservation(db.pool, { seatId: seatB!, userId: uid, startMs: start, endMs: start + 3_600_000 });
      for (const srv of [t, t2]) for (const f of [a, b]) srv.coreEvents.emit({ type: 'reservation', cause: 'reservation.created', reservation: f, at: new Date().toISOString() });
      // t2 (autoCheckIn on): 20 minutes before the start is before the 15-minute window.
      clock.set(start - 20 * 60_000);
      const s2 = await connectSensor(t2.server.ports.sensor);
      expect(await sendReadings(s2, [{ seatId: seatB!, occupied: true, at: start - 20 * 60_000 }])).toMatchObject({ applied: 1 });
      // t (autoCheckIn off): inside the window.
      clock.set(start);
      const s1 = await connectSensor(t.server.ports.sensor);
      expect(await sendReadings(s1, [{ seatId: seatA!, occupied: true, at: start }])).toMatchObject({ applied: 1 });
      await t.live.settled();
      await t2.live.settled();
      const rows = await db.pool.query('SELECT id, status FROM reservations WHERE id = ANY($1) ORDER BY id', [[a.id, b.id]]);
      expect(rows.rows.map((r) => r.status)).toEqual(['CONFIRMED', 'CONFIRMED']);
      s1.destroy();
      s2.destroy();
    } finally {
      await t.close();
      await t2.close();
    }
  });

  it('out of service, cancellation and personal events: each reaches the right subscribers only', async () => {
    const t = await startTestServer({}, { db });
    try {
      const [, , , seat] = await branchSeats(db.pool, 'Medical Library', 4);
      const ada = await userId(db.pool, 's1001');
      const grace = await userId(db.pool, 's1002');
      const adaToken = t.tokens.issue({ id: ada, studentId: 's1001', name: 'Ada', role: 'student' }).token;
      const graceToken = t.tokens.issue({ id: grace, studentId: 's1002', name: 'Grace', role: 'student' }).token;
      const subAda = await subscribe(t.server.ports.pubsub, { branch: 'Medical Library', token: adaToken });
      const subGrace = await subscribe(t.server.ports.pubsub, { branch: '*', token: graceToken });
      const anon = await subscribe(t.server.ports.pubsub, { branch: 'Medical Library' });
      expect(subAda.frames[0]).toMatchObject({ type: 'subscribed', personal: true });
      expect(subGrace.frames[0]).toMatchObject({ type: 'subscribed', branch: '*' });
      expect((subGrace.frames[0]!.branches as unknown[]).length).toBe(3);
      const now = Date.now();
      const fact = await insertReservation(db.pool, { seatId: seat!, userId: ada, startMs: now - 60_000, endMs: now + 3_600_000 });
      t.coreEvents.emit({ type: 'reservation', cause: 'reservation.created', reservation: fact, at: new Date().toISOString() });
      await waitFor(anon, (f) => f.type === 'seat' && f.seatId === seat && f.state === 'reserved');
      t.coreEvents.emit({ type: 'personal', userId: ada, kind: 'offer', reservation: { ...fact, status: 'OFFERED' }, at: new Date().toISOString() });
      await db.pool.query("UPDATE reservations SET status = 'CANCELLED' WHERE id = $1", [fact.id]);
      t.coreEvents.emit({ type: 'reservation', cause: 'reservation.cancelled', reservation: { ...fact, status: 'CANCELLED' as never }, at: new Date().toISOString() });
      t.coreEvents.emit({ type: 'seatStatus', cause: 'admin', seatId: seat!, branchId: fact.branchId, status: 'OUT_OF_SERVICE', at: new Date().toISOString() });
      for (const p of [anon, subAda, subGrace]) await waitFor(p, (f) => f.type === 'seat' && f.seatId === seat && f.state === 'unavailable');
      expect(seatEvents(anon).filter((e) => e.seatId === seat).map((e) => `${e.state}:${e.cause}`)).toEqual([
        'reserved:reservation.created',
        'free:reservation.cancelled',
        'unavailable:admin',
      ]);
      const personal = (p: RawPeer) => p.frames.filter((f) => f.type === 'personal');
      expect(personal(subAda)).toEqual([expect.objectContaining({ kind: 'offer', reservation: expect.objectContaining({ id: fact.id }) })]);
      expect(personal(subGrace)).toEqual([]);
      expect(personal(anon)).toEqual([]);
      // Bad tokens are refused and the connection may subscribe again.
      const bad = await subscribe(t.server.ports.pubsub, { branch: 'Medical Library', token: 'nope' });
      expect(bad.frames[0]).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
      const unknown = await subscribe(t.server.ports.pubsub, { branch: 'Atlantis' });
      expect(unknown.frames[0]).toMatchObject({ type: 'error', code: 'NOT_FOUND' });
      for (const p of [subAda, subGrace, anon, bad, unknown]) p.destroy();
    } finally {
      await t.close();
    }
  });
});
