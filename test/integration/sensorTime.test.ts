// A gateway's `at` is a claim, not a clock (docs/sensors.md). Audit: a reading dated 30 minutes
// back ended a checked-in booking within 3 s (the empty timer started at the reading's own `at`);
// "1" (read as 2001), RFC 1123 dates and 1970 were accepted; a reading 59 s in the future made an
// honest gateway's readings "stale" for a minute. Now `at` must be RFC 3339 with an offset and
// inside [now - sensors.maxAgeMs, now + sensors.maxClockSkewMs], else that one reading is refused
// with its code in the ack; a seat's readings take effect in the order the server receives them,
// and every timer runs on the server's clock.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { LiveSeats } from '../../src/core/liveSeats.js';
import { createLogger, silentLogger, type Logger } from '../../src/obs/log.js';
import { SensorCoalescer, timestampMicros } from '../../src/sensors/coalescer.js';
import type { RawPeer } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { Db } from '../../src/db/db.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, insertReservation, seatEvents, sendReadings, subscribe, userId, waitFor } from '../support/live.js';

const MINUTE = 60_000;
let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase(4);
});
afterAll(async () => {
  await db.drop();
});

const iso = (ms: number): string => new Date(ms).toISOString();
const stateOf = (t: TestServer, seatId: number) => t.live.model.seat(seatId)!.state;
const statusOf = async (id: number) => (await db.pool.query<{ status: string }>('SELECT status FROM reservations WHERE id = $1', [id])).rows[0]!.status;

async function withServer(
  overrides: Parameters<typeof startTestServer>[0],
  clock: FakeClock,
  body: (t: TestServer) => Promise<void>,
  log?: Logger,
): Promise<void> {
  const t = await startTestServer({ lifecycle: { enabled: false }, ...overrides }, { db, clock, log });
  try {
    await body(t);
  } finally {
    await t.close();
  }
}

describe('the `at` of each reading', () => {
  it('each bad form is refused with its own code while the good readings of the same frame apply', async () => {
    const clock = new FakeClock(Date.parse('2030-01-07T15:00:00Z'));
    await withServer({}, clock, async (t) => {
      const [good1, bad, good2, good3] = await branchSeats(db.pool, 'Main Library', 4);
      const sub = await subscribe(t.server.ports.pubsub, { branch: 'Main Library' });
      await sub.waitFrames(2);
      const sensor = await connectSensor(t.server.ports.sensor);
      const now = clock.now();
      const frame: Array<{ seatId: number; occupied: boolean; at: unknown }> = [
        { seatId: good1!, occupied: true, at: iso(now - 1000) },
        { seatId: bad!, occupied: true, at: '1' }, // Date.parse: 2001
        { seatId: bad!, occupied: true, at: new Date(now).toUTCString() }, // RFC 1123
        { seatId: bad!, occupied: true, at: '1970-01-01T00:00:00Z' },
        { seatId: bad!, occupied: true, at: iso(now - 30 * MINUTE) },
        { seatId: bad!, occupied: true, at: iso(now + 59_000) },
        { seatId: bad!, occupied: true, at: '2030-01-07T15:00:00' }, // no offset: whose local time?
        { seatId: bad!, occupied: true, at: '2030-01-07 15:00:00Z' },
        { seatId: bad!, occupied: true, at: '2030-02-30T10:00:00Z' }, // Date.parse: 2 March
        { seatId: bad!, occupied: true, at: now }, // epoch ms, not a string
        { seatId: good2!, occupied: true, at: '2030-01-07T15:59:59.5+01:00' },
        { seatId: good3!, occupied: true, at: '2030-01-07t15:00:02.123456789z' }, // 2 s ahead: inside the skew
      ];
      sensor.send({ type: 'occupancy', ref: 'mixed', readings: frame });
      const ack = await waitFor(sensor, (f) => f.ref === 'mixed');
      expect(ack).toEqual({
        type: 'ack',
        ref: 'mixed',
        applied: 3,
        stale: 0,
        refused: { AT_NOT_RFC3339: [1, 2, 6, 7, 8, 9], AT_TOO_OLD: [3, 4], AT_IN_FUTURE: [5] },
        unknownSeats: [],
      });
      await waitFor(sub, () => seatEvents(sub).length === 3);
      expect(seatEvents(sub).map((e) => [e.seatId, e.state])).toEqual([
        [good1, 'occupied'],
        [good2, 'occupied'],
        [good3, 'occupied'],
      ]);
      expect(stateOf(t, bad!)).toBe('free');
      expect(t.live.refusedReadings).toEqual({ AT_NOT_RFC3339: 6, AT_TOO_OLD: 2, AT_IN_FUTURE: 1 });
      sensor.destroy();
      sub.destroy();
    });
  });

  it('the ack of a frame of maxReadingsPerFrame readings, every one refused, stays small', async () => {
    const clock = new FakeClock(Date.parse('2030-01-07T15:00:00Z'));
    await withServer({}, clock, async (t) => {
      const max = t.config.sensors.maxReadingsPerFrame;
      const sensor = await connectSensor(t.server.ports.sensor);
      const codes = ['x', iso(clock.now() - 3_600_000), iso(clock.now() + 3_600_000)];
      // Unknown seats, each a different ten-digit id, are the largest ack: their ids are echoed too.
      const readings = Array.from({ length: max }, (_, i) =>
        i % 4 === 3 ? { seatId: 2_000_000_000 + i, occupied: true, at: iso(clock.now()) } : { seatId: 1, occupied: true, at: codes[i % 4] },
      );
      const request = JSON.stringify({ type: 'occupancy', ref: 'big', readings });
      sensor.send({ type: 'occupancy', ref: 'big', readings });
      const ack = await waitFor(sensor, (f) => f.ref === 'big');
      const counts = Object.fromEntries(Object.entries(ack.refused as Record<string, number[]>).map(([k, v]) => [k, v.length]));
      expect(counts).toEqual({ AT_NOT_RFC3339: max / 4, AT_TOO_OLD: max / 4, AT_IN_FUTURE: max / 4, UNKNOWN_SEAT: max / 4 });
      const bytes = Buffer.byteLength(JSON.stringify(ack));
      expect(bytes).toBeLessThan(12 * max + 200); // ~4 bytes an index, ~11 an unknown seat id
      expect(bytes).toBeLessThan(Buffer.byteLength(request) / 4);
      sensor.destroy();
    });
  });

  it('a flood of refused readings: every frame acked, the counters count them all, the log says it once per code per connection', async () => {
    const clock = new FakeClock(Date.parse('2030-01-07T15:00:00Z'));
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    await withServer(
      {},
      clock,
      async (t) => {
        const max = t.config.sensors.maxReadingsPerFrame;
        const sensor = await connectSensor(t.server.ports.sensor, { sensorId: 'gw-wrong-clock' });
        const ats = ['1', iso(clock.now() - 3_600_000), iso(clock.now() + 3_600_000)];
        for (let f = 0; f < 20; f++) {
          const ack = await sendReadings(sensor, Array.from({ length: max }, (_, i) => ({ seatId: 1, occupied: true, at: ats[i % 3]! })));
          expect(ack).toMatchObject({ applied: 0, stale: 0 });
        }
        expect(t.live.refusedReadings).toEqual({ AT_NOT_RFC3339: 20 * Math.ceil(max / 3), AT_TOO_OLD: 20 * Math.ceil((max - 1) / 3), AT_IN_FUTURE: 20 * Math.floor(max / 3) });
        const refusedLines = lines.filter((l) => l.msg === 'sensor readings refused for their time');
        expect(refusedLines.map((l) => l.code).sort()).toEqual(['AT_IN_FUTURE', 'AT_NOT_RFC3339', 'AT_TOO_OLD']);
        expect(refusedLines[0]).toMatchObject({ sensorId: 'gw-wrong-clock', serverTime: iso(clock.now()) });
        sensor.destroy();
      },
      createLogger('info', sink),
    );
  });
});

describe('timers run on the server clock', () => {
  async function checkedIn(t: TestServer, clock: FakeClock, seatId: number): Promise<number> {
    const uid = await userId(db.pool, 's1003');
    const fact = await insertReservation(db.pool, { seatId, userId: uid, startMs: clock.now() - 10 * MINUTE, endMs: clock.now() + 110 * MINUTE, status: 'CHECKED_IN' });
    t.coreEvents.emit({ type: 'reservation', cause: 'checkIn', reservation: { ...fact, status: 'CHECKED_IN' }, at: iso(clock.now()) });
    return fact.id;
  }

  it('a reading dated 30 minutes back does not end a checked-in booking: refused as too old', async () => {
    const clock = new FakeClock(Date.parse('2030-01-08T15:10:00Z'));
    await withServer({}, clock, async (t) => {
      const [, , , , seat] = await branchSeats(db.pool, 'Engineering Library', 5);
      const booking = await checkedIn(t, clock, seat!);
      // The seat has no reading yet: nothing newer for the old reading to lose to.
      const sensor = await connectSensor(t.server.ports.sensor);
      const ack = await sendReadings(sensor, [{ seatId: seat!, occupied: false, at: clock.now() - 30 * MINUTE }]);
      expect(ack).toMatchObject({ applied: 0, refused: { AT_TOO_OLD: [0] } });
      clock.advance(3000);
      t.live.tick();
      await t.live.settled();
      expect(await statusOf(booking)).toBe('CHECKED_IN');
      expect(stateOf(t, seat!)).toBe('occupied');
      sensor.destroy();
    });
  });

  it('accepted anyway (maxAgeMs 1 h), a 30-minute-old "empty" starts the away hold when it arrives, not at its `at`', async () => {
    const clock = new FakeClock(Date.parse('2030-01-09T15:10:00Z'));
    const releaseAfterMs = 20 * MINUTE;
    await withServer({ sensors: { maxAgeMs: 60 * MINUTE, offlineAfterMs: 60 * MINUTE }, presence: { awayMinutes: 20 } }, clock, async (t) => {
      const [, , , , , seat] = await branchSeats(db.pool, 'Engineering Library', 6);
      const booking = await checkedIn(t, clock, seat!);
      const sensor = await connectSensor(t.server.ports.sensor);
      expect(await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: clock.now() - 31 * MINUTE }])).toMatchObject({ applied: 1 });
      const receivedAt = clock.now();
      expect(await sendReadings(sensor, [{ seatId: seat!, occupied: false, at: clock.now() - 30 * MINUTE }])).toMatchObject({ applied: 1 });
      await t.live.settled();
      expect(stateOf(t, seat!)).toBe('away'); // empty, held for its owner
      const held = await db.pool.query<{ hold_until: Date }>('SELECT hold_until FROM reservations WHERE id = $1', [booking]);
      expect(held.rows[0]!.hold_until).toEqual(new Date(receivedAt + releaseAfterMs));
      for (const later of [3000, releaseAfterMs - 1]) {
        clock.set(receivedAt + later);
        t.live.tick();
        await t.live.settled();
        expect(await statusOf(booking), `${later} ms after receipt`).toBe('CHECKED_IN');
      }
      clock.set(receivedAt + releaseAfterMs);
      t.live.tick();
      await t.live.settled();
      expect(await statusOf(booking)).toBe('COMPLETED');
      sensor.destroy();
    });
  });
});

describe('a reading from the future cannot push back honest ones', () => {
  async function honestAfterFuture(t: TestServer, clock: FakeClock, seat: number): Promise<{ future: Record<string, unknown>; honest: RawPeer }> {
    const honest = await connectSensor(t.server.ports.sensor, { sensorId: 'gw-honest' });
    const fast = await connectSensor(t.server.ports.sensor, { sensorId: 'gw-fast' });
    expect(await sendReadings(honest, [{ seatId: seat, occupied: false, at: clock.now() }])).toMatchObject({ applied: 1 });
    const future = await sendReadings(fast, [{ seatId: seat, occupied: true, at: clock.now() + 59_000 }]);
    fast.destroy();
    return { future, honest };
  }

  it('59 s ahead is refused (AT_IN_FUTURE); the honest gateway\'s next readings apply', async () => {
    const clock = new FakeClock(Date.parse('2030-01-07T15:00:00Z'));
    await withServer({}, clock, async (t) => {
      const [, , , , , , seat] = await branchSeats(db.pool, 'Medical Library', 7);
      const { future, honest } = await honestAfterFuture(t, clock, seat!);
      expect(future).toMatchObject({ applied: 0, refused: { AT_IN_FUTURE: [0] } });
      for (const occupied of [true, false, true]) {
        clock.advance(1000);
        expect(await sendReadings(honest, [{ seatId: seat!, occupied, at: clock.now() }])).toMatchObject({ applied: 1, stale: 0 });
        expect(stateOf(t, seat!)).toBe(occupied ? 'occupied' : 'free');
      }
      honest.destroy();
    });
  });

  it('with the widest skew allowed (60 s) the future reading applies, but the honest gateway\'s next readings still win, in the table too', async () => {
    const clock = new FakeClock(Date.parse('2030-01-07T15:00:00Z'));
    await withServer({ sensors: { maxClockSkewMs: 60_000, flushEveryMs: 3_600_000 } }, clock, async (t) => {
      const [, , , , , , , seat] = await branchSeats(db.pool, 'Medical Library', 8);
      const { future, honest } = await honestAfterFuture(t, clock, seat!);
      expect(future).toMatchObject({ applied: 1 });
      expect(stateOf(t, seat!)).toBe('occupied');
      await t.live.coalescer.flush();
      clock.advance(1000);
      expect(await sendReadings(honest, [{ seatId: seat!, occupied: false, at: clock.now() }])).toMatchObject({ applied: 1, stale: 0 });
      expect(stateOf(t, seat!)).toBe('free');
      await t.live.coalescer.flush();
      const row = await db.pool.query('SELECT occupied, sensor_id, reading_at, received_at FROM seat_live WHERE seat_id = $1', [seat]);
      expect(row.rows[0]).toEqual({ occupied: false, sensor_id: 'gw-honest', reading_at: new Date(clock.now()), received_at: new Date(clock.now()) });
      // A resend of the honest gateway's own earlier reading is still just a resend.
      expect(await sendReadings(honest, [{ seatId: seat!, occupied: false, at: clock.now() }])).toMatchObject({ applied: 0, stale: 1 });
      honest.destroy();
    });
  });
});

describe('receipt order to the microsecond', () => {
  it('seat_live keeps the reading received later within one millisecond, whichever instance writes last, and a model loads its time whole', async () => {
    const seat = (await branchSeats(db.pool, 'Medical Library', 10))[9];
    const t = Date.parse('2030-01-07T15:00:00Z');
    // Instance X received "free" at t + 0.7 ms, instance Y "occupied" at t + 0.3 ms; X writes first.
    const x = new SensorCoalescer(db.pool, { flushEveryMs: 3_600_000 }, silentLogger);
    const y = new SensorCoalescer(db.pool, { flushEveryMs: 3_600_000 }, silentLogger);
    x.record(seat!, false, t - 2_000, t + 0.7, 'gw-x');
    await x.flush();
    y.record(seat!, true, t - 1_000, t + 0.3, 'gw-y');
    await y.flush();
    const row = await db.pool.query<{ occupied: boolean; sensor_id: string; us: string }>(
      `SELECT occupied, sensor_id, to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS us FROM seat_live WHERE seat_id = $1`,
      [seat],
    );
    expect(row.rows[0]).toEqual({ occupied: false, sensor_id: 'gw-x', us: '2030-01-07T15:00:00.000700' });
    const loaded = (await LiveSeats.loadData(new Db(db.pool), t)).sensors.find((r) => r.seatId === seat);
    expect(loaded).toMatchObject({ occupied: false, receivedAtMs: t + 0.7 });
  });

  it('two readings of one seat received at the same microsecond: seat_live keeps the one the live models keep (the greater sensorId), in either write order', async () => {
    const seats = (await branchSeats(db.pool, 'Medical Library', 12)).slice(10);
    const t = Date.parse('2030-01-07T15:00:00Z') + 0.25;
    for (const [i, first] of (['gw-b', 'gw-a'] as const).entries()) {
      for (const sensorId of first === 'gw-b' ? ['gw-b', 'gw-a'] : ['gw-a', 'gw-b']) {
        const c = new SensorCoalescer(db.pool, { flushEveryMs: 3_600_000 }, silentLogger);
        c.record(seats[i]!, sensorId === 'gw-a', t - 1_000, t, sensorId);
        await c.flush();
      }
    }
    const rows = await db.pool.query<{ seat_id: number; sensor_id: string; occupied: boolean }>(
      'SELECT seat_id, sensor_id, occupied FROM seat_live WHERE seat_id = ANY($1) ORDER BY seat_id',
      [seats],
    );
    expect(rows.rows).toEqual(seats.map((id) => ({ seat_id: id, sensor_id: 'gw-b', occupied: false })));
  });

  it('timestampMicros writes the microseconds a Date drops', () => {
    const t = Date.parse('2030-01-07T15:00:00.123Z');
    expect(timestampMicros(t)).toBe('2030-01-07T15:00:00.123000Z');
    expect(timestampMicros(t + 0.456)).toBe('2030-01-07T15:00:00.123456Z');
    expect(timestampMicros(t + 0.9996)).toBe('2030-01-07T15:00:00.123999Z');
  });
});
