// The occupancy history (docs/reports.md, "Where the figures come from"): the intervals the sensor
// coalescer writes from a sequence of presence changes — readings, a sensor falling silent, a
// server process stopping or dying — and the maintenance that keeps the table in shape.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { HistoryMaintenance } from '../../src/history/maintenance.js';
import { silentLogger } from '../../src/obs/log.js';
import { PresenceHistory } from '../../src/sensors/presenceHistory.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, sendReadings } from '../support/live.js';
import { startTestServer } from '../support/server.js';

const T0 = Date.parse('2030-01-07T15:00:00Z');
const MIN = 60_000;
const STALE_MS = 60_000;

let db: TestDatabase;
let clock: FakeClock;
beforeAll(async () => {
  db = await freshDatabase(4);
  clock = new FakeClock(T0);
  await db.pool.query('SELECT carrel_history_partitions($1, $2)', [new Date('2029-12-01T00:00:00Z'), new Date('2030-03-01T00:00:00Z')]);
});
afterAll(async () => {
  await db.drop();
});

type Row = [kind: string, since: string, until: string];

/** A seat's closed intervals, as [kind, since, until] in UTC ISO, in time order. */
async function history(seatId: number): Promise<Row[]> {
  const res = await db.pool.query<{ kind: string; since: Date; until: Date }>(
    'SELECT kind, since, until FROM occupancy_history WHERE seat_id = $1 ORDER BY since, kind',
    [seatId],
  );
  return res.rows.map((r) => [r.kind, r.since.toISOString(), r.until.toISOString()]);
}

async function open(seatId: number): Promise<{ observed: string; occupied: string | null; writer: number } | null> {
  const res = await db.pool.query<{ observed_since: Date; occupied_since: Date | null; writer: number }>(
    'SELECT observed_since, occupied_since, writer FROM occupancy_open WHERE seat_id = $1',
    [seatId],
  );
  const r = res.rows[0];
  return r ? { observed: r.observed_since.toISOString(), occupied: r.occupied_since?.toISOString() ?? null, writer: r.writer } : null;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function writer(instance: string): PresenceHistory {
  return new PresenceHistory({ instance, staleAfterMs: STALE_MS, blipMs: 1_000, now: () => clock.now() }, silentLogger);
}

describe('intervals from a sequence of presence changes', () => {
  it('readings, a blip shorter than a flush, a sensor falling silent and coming back', async () => {
    const [seat] = await branchSeats(db.pool, 'Main Library', 1);
    const w = writer('a');
    clock.set(T0);
    w.record(seat!, false, T0, null); // the sensor's first word: empty
    w.record(seat!, true, T0 + 10 * MIN, false);
    await w.write(db.pool);
    expect(await history(seat!)).toEqual([]);
    expect(await open(seat!)).toMatchObject({ observed: iso(T0), occupied: iso(T0 + 10 * MIN) });

    w.record(seat!, false, T0 + 50 * MIN, true);
    await w.write(db.pool);
    w.record(seat!, true, T0 + 60 * MIN, false);
    await w.write(db.pool);
    // Empty for 200 ms and back (shorter than a flush): dropped, the occupied interval goes on.
    w.record(seat!, false, T0 + 70 * MIN, true);
    w.record(seat!, true, T0 + 70 * MIN + 200, false);
    await w.write(db.pool);
    // Silent since its last word at +90 min (the live model says so once offlineAfterMs has passed).
    w.record(seat!, null, T0 + 90 * MIN, true);
    await w.write(db.pool);
    expect(await open(seat!)).toBeNull();
    // Back at +100 min with a reading: occupied.
    w.record(seat!, true, T0 + 100 * MIN, null);
    await w.write(db.pool);

    expect(await history(seat!)).toEqual([
      ['observed', iso(T0), iso(T0 + 90 * MIN)],
      ['occupied', iso(T0 + 10 * MIN), iso(T0 + 50 * MIN)],
      ['occupied', iso(T0 + 60 * MIN), iso(T0 + 90 * MIN)],
    ]);
    expect(await open(seat!)).toMatchObject({ observed: iso(T0 + 100 * MIN), occupied: iso(T0 + 100 * MIN) });
    expect(w.stats).toMatchObject({ failures: 0, pending: 0 });
  });

  it('silent and back between two flushes: the gap is kept; a state that began while unknown keeps its start', async () => {
    const [, seat] = await branchSeats(db.pool, 'Main Library', 2);
    const w = writer('b');
    w.record(seat!, true, T0, null);
    await w.write(db.pool);
    w.record(seat!, null, T0 + 5 * MIN, true);
    w.record(seat!, false, T0 + 8 * MIN, null);
    w.record(seat!, true, T0 + 8 * MIN + 300, false); // a blip: what was reported since +8 min is occupied
    await w.write(db.pool);
    expect(await history(seat!)).toEqual([
      ['observed', iso(T0), iso(T0 + 5 * MIN)],
      ['occupied', iso(T0), iso(T0 + 5 * MIN)],
    ]);
    expect(await open(seat!)).toMatchObject({ observed: iso(T0 + 8 * MIN), occupied: iso(T0 + 8 * MIN) });
  });

  it('an interval across midnight UTC is cut there', async () => {
    const [, , seat] = await branchSeats(db.pool, 'Main Library', 3);
    const w = writer('c');
    const late = Date.parse('2030-01-07T23:30:00Z');
    w.record(seat!, true, late, null);
    await w.write(db.pool);
    w.record(seat!, null, late + 26 * 60 * MIN, true);
    await w.write(db.pool);
    expect(await history(seat!)).toEqual([
      ['observed', '2030-01-07T23:30:00.000Z', '2030-01-08T00:00:00.000Z'],
      ['occupied', '2030-01-07T23:30:00.000Z', '2030-01-08T00:00:00.000Z'],
      ['observed', '2030-01-08T00:00:00.000Z', '2030-01-09T00:00:00.000Z'],
      ['occupied', '2030-01-08T00:00:00.000Z', '2030-01-09T00:00:00.000Z'],
      ['observed', '2030-01-09T00:00:00.000Z', '2030-01-09T01:30:00.000Z'],
      ['occupied', '2030-01-09T00:00:00.000Z', '2030-01-09T01:30:00.000Z'],
    ]);
  });

  it('a change received before the open interval began (another instance, flushed late) changes nothing', async () => {
    const [, , , seat] = await branchSeats(db.pool, 'Main Library', 4);
    const a = writer('a2');
    const b = writer('b2');
    clock.set(T0 + 2 * MIN);
    a.record(seat!, true, T0 + 2 * MIN, null);
    await a.write(db.pool);
    b.record(seat!, false, T0 + 1 * MIN, null);
    await b.write(db.pool);
    expect(await history(seat!)).toEqual([]);
    expect(await open(seat!)).toMatchObject({ observed: iso(T0 + 2 * MIN), occupied: iso(T0 + 2 * MIN) });
    // A later one from the other instance applies, and takes the interval over.
    b.record(seat!, false, T0 + 3 * MIN, null);
    await b.write(db.pool);
    expect(await history(seat!)).toEqual([['occupied', iso(T0 + 2 * MIN), iso(T0 + 3 * MIN)]]);
    expect(await open(seat!)).toMatchObject({ observed: iso(T0 + 2 * MIN), occupied: null });
  });

  it('a failed write keeps its changes, merged with what came meanwhile', async () => {
    const [, , , , seat] = await branchSeats(db.pool, 'Main Library', 5);
    const broken = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:9/none', connectionTimeoutMillis: 500 });
    broken.on('error', () => undefined);
    const w = writer('d');
    w.record(seat!, false, T0, null);
    w.record(seat!, true, T0 + 10 * MIN, false);
    await w.write(broken);
    expect(w.stats).toMatchObject({ failures: 1, pending: 1 });
    w.record(seat!, false, T0 + 20 * MIN, true);
    await w.write(db.pool);
    await broken.end();
    expect(await history(seat!)).toEqual([['occupied', iso(T0 + 10 * MIN), iso(T0 + 20 * MIN)]]);
    expect(await open(seat!)).toMatchObject({ observed: iso(T0), occupied: null });
  });
});

describe('server processes stopping and dying', () => {
  it('a graceful stop ends its open intervals then; a crash ends them at its last mark, found by the next writer or the maintenance', async () => {
    const [, , , , , s1, s2, s3] = await branchSeats(db.pool, 'Main Library', 8);
    clock.set(T0);
    const a = writer('stops');
    a.record(s1!, true, T0, null);
    await a.write(db.pool);
    clock.set(T0 + 30 * MIN);
    await a.close(db.pool);
    expect(await history(s1!)).toEqual([
      ['observed', iso(T0), iso(T0 + 30 * MIN)],
      ['occupied', iso(T0), iso(T0 + 30 * MIN)],
    ]);
    expect(await open(s1!)).toBeNull();

    // A writer that dies at T0 + 10 min (its last flush), holding two seats.
    clock.set(T0);
    const dead = writer('dies');
    dead.record(s2!, true, T0, null);
    dead.record(s3!, false, T0, null);
    await dead.write(db.pool);
    clock.set(T0 + 10 * MIN);
    await dead.write(db.pool); // nothing to write: only its alive mark
    // A new process hears from s2's sensor at +40 min: s2 was occupied until the dead one's mark.
    clock.set(T0 + 40 * MIN);
    const next = writer('restarted');
    next.record(s2!, true, T0 + 40 * MIN, null);
    await next.write(db.pool);
    expect(await history(s2!)).toEqual([
      ['observed', iso(T0), iso(T0 + 10 * MIN)],
      ['occupied', iso(T0), iso(T0 + 10 * MIN)],
    ]);
    expect(await open(s2!)).toMatchObject({ observed: iso(T0 + 40 * MIN), occupied: iso(T0 + 40 * MIN) });
    // s3's sensor never comes back: the maintenance closes it at the dead writer's mark.
    const maintenance = new HistoryMaintenance({ db: db.pool, clock, log: silentLogger, retentionDays: 400, staleAfterMs: STALE_MS });
    expect((await maintenance.run()).closed).toBeGreaterThanOrEqual(1);
    expect(await history(s3!)).toEqual([['observed', iso(T0), iso(T0 + 10 * MIN)]]);
    expect(await open(s3!)).toBeNull();
    // The living writer's interval stays open.
    expect(await open(s2!)).not.toBeNull();
  });
});

describe('through a running server: readings, a silent sensor, a restart', () => {
  it('writes what the sensor port received, ends intervals when the sensor falls silent or the server stops, and starts again on contact', async () => {
    const [seat, fence] = await branchSeats(db.pool, 'Medical Library', 2);
    const fake = new FakeClock(Date.parse('2030-01-09T15:00:00Z'));
    const t0 = fake.now();
    // Flushed by hand; the history maintenance makes the partitions at start.
    const cfg = { sensors: { flushEveryMs: 3_600_000, offlineAfterMs: 120_000 } };
    const a = await startTestServer(cfg, { db, clock: fake });
    try {
      const gw = await connectSensor(a.server.ports.sensor, { sensorId: 'gw-history' });
      expect(await sendReadings(gw, [{ seatId: seat!, occupied: true, at: t0 }])).toMatchObject({ applied: 1 });
      await a.live.coalescer.flush();
      expect(await open(seat!)).toMatchObject({ observed: iso(t0), occupied: iso(t0) });
      fake.advance(10 * MIN);
      expect(await sendReadings(gw, [{ seatId: seat!, occupied: false, at: fake.now() }])).toMatchObject({ applied: 1 });
      // A reading out of order (an `at` before this gateway's last) is stale: it changes nothing, here either.
      expect(await sendReadings(gw, [{ seatId: seat!, occupied: true, at: fake.now() - 1000 }])).toMatchObject({ stale: 1 });
      await a.live.coalescer.flush();
      expect(await history(seat!)).toEqual([['occupied', iso(t0), iso(t0 + 10 * MIN)]]);
      // A heartbeat at +11 min is the sensor's last word; at +14 min the model finds it silent.
      fake.advance(MIN);
      gw.send({ type: 'heartbeat' });
      expect(await sendReadings(gw, [{ seatId: fence!, occupied: false, at: fake.now() }])).toMatchObject({ applied: 1 });
      fake.advance(3 * MIN);
      a.live.tick();
      await a.live.coalescer.flush();
      expect(await history(seat!)).toEqual([
        ['observed', iso(t0), iso(t0 + 11 * MIN)],
        ['occupied', iso(t0), iso(t0 + 10 * MIN)],
      ]);
      expect(await open(seat!)).toBeNull();
      // Back at +20 min with a heartbeat: its last reading (empty) stands again from then.
      fake.advance(6 * MIN);
      gw.send({ type: 'heartbeat' });
      expect(await sendReadings(gw, [{ seatId: fence!, occupied: true, at: fake.now() }])).toMatchObject({ applied: 1 });
      await a.live.coalescer.flush();
      expect(await open(seat!)).toMatchObject({ observed: iso(t0 + 20 * MIN), occupied: null });
      fake.advance(10 * MIN);
      gw.destroy();
    } finally {
      await a.close(); // a graceful stop at +30 min: what is open ends then
    }
    expect(await open(seat!)).toBeNull();
    expect((await history(seat!)).slice(2)).toEqual([['observed', iso(t0 + 20 * MIN), iso(t0 + 30 * MIN)]]);

    // Restarted at +40 min: the state loaded from seat_live is not evidence, so nothing is open
    // until the sensor is heard from again.
    fake.advance(10 * MIN);
    const b = await startTestServer(cfg, { db, clock: fake });
    try {
      await b.live.coalescer.flush();
      expect(await open(seat!)).toBeNull();
      const gw = await connectSensor(b.server.ports.sensor, { sensorId: 'gw-history' });
      expect(await sendReadings(gw, [{ seatId: seat!, occupied: true, at: fake.now() }])).toMatchObject({ applied: 1 });
      await b.live.coalescer.flush();
      expect(await open(seat!)).toMatchObject({ observed: iso(t0 + 40 * MIN), occupied: iso(t0 + 40 * MIN) });
      gw.destroy();
    } finally {
      await b.close();
    }
  });

  it('with history.enabled false, nothing is written', async () => {
    const [, , seat] = await branchSeats(db.pool, 'Medical Library', 3);
    const fake = new FakeClock(Date.parse('2030-01-10T15:00:00Z'));
    const s = await startTestServer({ history: { enabled: false }, sensors: { flushEveryMs: 3_600_000 } }, { db, clock: fake });
    try {
      expect(s.history).toBeUndefined();
      const gw = await connectSensor(s.server.ports.sensor, { sensorId: 'gw-off' });
      expect(await sendReadings(gw, [{ seatId: seat!, occupied: true, at: fake.now() }])).toMatchObject({ applied: 1 });
      await s.live.coalescer.flush();
      expect(await open(seat!)).toBeNull();
      expect((await db.pool.query('SELECT occupied FROM seat_live WHERE seat_id = $1', [seat])).rows).toEqual([{ occupied: true }]);
      gw.destroy();
    } finally {
      await s.close();
    }
  });
});

describe('maintenance', () => {
  it('makes the months ahead, and drops months wholly older than the retention', async () => {
    const months = async () =>
      (
        await db.pool.query<{ name: string }>(
          "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'occupancy_history'::regclass ORDER BY 1",
        )
      ).rows.map((r) => r.name);
    const seat = (await branchSeats(db.pool, 'Engineering Library', 1))[0]!;
    await db.pool.query('SELECT carrel_history_partitions($1, $2)', [new Date('2028-06-01T00:00:00Z'), new Date('2028-07-01T00:00:00Z')]);
    await db.pool.query("INSERT INTO occupancy_history VALUES ($1, 'observed', '2028-06-10T10:00:00Z', '2028-06-10T11:00:00Z')", [seat]);
    const at = new FakeClock(Date.parse('2029-07-31T12:00:00Z'));
    const m = (days: number) => new HistoryMaintenance({ db: db.pool, clock: at, log: silentLogger, retentionDays: days, staleAfterMs: STALE_MS });
    // 400 days back from 2029-07-31 is 2028-06-26: June 2028 still holds days inside the retention.
    const first = await m(400).run();
    expect(first.dropped).toBe(0);
    expect(first.made).toBeGreaterThanOrEqual(1);
    expect(await months()).toEqual(expect.arrayContaining(['occupancy_history_2028_06', 'occupancy_history_2029_07', 'occupancy_history_2029_08', 'occupancy_history_2029_09']));
    // 395 days back is 2028-07-01: June 2028 is wholly older, and goes.
    await db.pool.query("INSERT INTO occupancy_seat_days VALUES ($1, '2028-06-30', 1, 0, 60, 60, 60, 60, 60, 60, 60, 60, 60), ($1, '2028-07-01', 1, 0, 60, 60, 60, 60, 60, 60, 60, 60, 60)", [seat]);
    expect((await m(395).run()).dropped).toBe(1);
    expect(await months()).not.toContain('occupancy_history_2028_06');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM occupancy_history WHERE seat_id = $1', [seat])).rows[0].n).toBe(0);
    // The days' sums go a day at a time.
    const sums = await db.pool.query<{ day: string }>("SELECT to_char(day, 'YYYY-MM-DD') AS day FROM occupancy_seat_days WHERE seat_id = $1", [seat]);
    expect(sums.rows.map((r) => r.day)).toEqual(['2028-07-01']);
  });
});
