// Redis stopped and restarted under multi-instance load (hardening issue): this file starts its
// OWN redis-server (spare port, no persistence) so it can really stop it — SHUTDOWN NOSAVE, so
// the Redis that comes back on the same port is empty: no counters, no streams, no seat states.
// The redisOutage tests cut a proxy in front of the shared Redis instead, where the data survives.
//
// Two instances over it and the test PostgreSQL, a sensor and a subscriber on each, readings at a
// steady rate on both throughout. Claims: during the outage each instance keeps delivering its own
// readings to its own subscribers, in order, and none of the other's; after Redis is back every
// reading on either instance reaches both subscribers with one seq; a subscriber that stays
// connected never sees a seq go backwards (a fresh resync snapshot may jump, never back); both
// instances end with the same seat states, seat for seat, and those are the last readings;
// /readyz says degraded while Redis is away and ready again after; no unhandled rejection.
//
// The second test is the case the empty Redis makes hard: an instance that reaches it first
// numbers from its own seq (from 0, if it started there), below what another instance has shown.
// That one must read the new stream from its start, not from the last id it read (it used to,
// and never saw those events), and state again what its own sensors reported before the restart
// (the new instance had only the database's older copy).
import http from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { deploymentKeys, freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, sendReadings, subscribe, waitFor, type Frame } from '../support/live.js';
import type { RawPeer } from '../support/peer.js';
import { redisServerAvailable, startRedisServer, type OwnRedis } from '../support/redisServer.js';
import { CuttableProxy } from '../support/proxy.js';

const suite = redisServerAvailable ? describe : describe.skip;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Phase = 'before' | 'outage' | 'restarting' | 'after';
interface Sent {
  on: 'A' | 'B';
  seatId: number;
  state: 'occupied' | 'free';
  /** The reading's time, which its seat event carries as `at`: it names the event on every instance. */
  at: string;
  phase: Phase;
}

function readyz(port: number): Promise<{ status: number; body: { status: string; degraded: string[] } }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as { status: string; degraded: string[] } }));
      })
      .on('error', reject);
  });
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/**
 * Every seq a subscriber saw on one branch, in order, never goes backwards: a seat event is past
 * everything before it; a snapshot (fresh resync included) or a summary is at least as far.
 */
function seqProblems(frames: Frame[]): string[] {
  const problems: string[] = [];
  let last = -1;
  frames.forEach((f, i) => {
    if (typeof f.seq !== 'number') return;
    if (f.type === 'seat' ? f.seq <= last : f.seq < last) problems.push(`frame ${i} (${String(f.type)}) seq ${f.seq} after ${last}`);
    last = Math.max(last, f.seq);
  });
  return problems;
}

/** The seats' states as a subscriber that stayed connected knows them: snapshots, then events. */
function foldView(frames: Frame[]): Map<number, string> {
  const view = new Map<number, string>();
  for (const f of frames) {
    if (f.type === 'snapshot') for (const s of f.seats as Array<{ seatId: number; state: string }>) view.set(s.seatId, s.state);
    else if (f.type === 'seat') view.set(f.seatId as number, f.state as string);
  }
  return view;
}

/** Index of the seat event of each reading (-1 while there is none yet). */
function eventsOf(frames: Frame[], sent: Sent[]): number[] {
  return sent.map((r) => frames.findIndex((f) => f.type === 'seat' && f.seatId === r.seatId && f.at === r.at));
}

const found = (idx: number[]) => idx.every((i) => i >= 0);
const ascending = (idx: number[]) => idx.every((i, k) => k === 0 || i > idx[k - 1]!);

suite('Redis stopped and restarted empty under load on two instances', () => {
  let redis: OwnRedis | undefined;
  let restarted: OwnRedis | undefined;
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  const peers: RawPeer[] = [];
  /** What a test started beyond the shared pair, undone in afterAll (newest first) even after a failure. */
  const undo: Array<() => unknown> = [];
  const rejections: unknown[] = [];
  const onRejection = (err: unknown) => rejections.push(err);

  beforeAll(async () => {
    process.on('unhandledRejection', onRejection);
    redis = await startRedisServer();
    db = await freshDatabase(6);
    const overrides = { redis: { url: redis.url, keyPrefix: 'carrel' }, http: { readyTimeoutMs: 500 }, lifecycle: { enabled: false } };
    a = await startTestServer(overrides, { db });
    b = await startTestServer(overrides, { db });
  });
  afterAll(async () => {
    for (const p of peers) p.destroy();
    for (const f of undo.reverse()) await f();
    await a?.close();
    await b?.close();
    redis?.kill();
    restarted?.kill();
    await db?.drop();
    process.off('unhandledRejection', onRejection);
  });

  it('local delivery goes on during the outage, cross-instance delivery resumes after it, seqs never go back, both end seat for seat the same', async () => {
    const branch = 'Engineering Library';
    const seats = await branchSeats(db.pool, branch, 36);
    const branchId = (await db.pool.query<{ id: number }>('SELECT id FROM branches WHERE name = $1', [branch])).rows[0]!.id;
    // Each instance's sensor has seats of its own for each stretch (before, during, after the
    // outage), so the states each stretch leaves behind must reach both instances to be seen.
    const group = (k: number) => seats.slice(6 * k, 6 * k + 6);
    const seatsOf = { A: [group(0), group(1), group(2)], B: [group(3), group(4), group(5)] };
    const stretch = (p: Phase) => (p === 'before' ? 0 : p === 'after' ? 2 : 1);
    const ownSeats = (on: 'A' | 'B') => seatsOf[on].flat();
    const onA = await subscribe(a.server.ports.pubsub, { branch });
    const onB = await subscribe(b.server.ports.pubsub, { branch });
    const sensorA = await connectSensor(a.server.ports.sensor, { sensorId: 'gw-a' });
    const sensorB = await connectSensor(b.server.ports.sensor, { sensorId: 'gw-b' });
    peers.push(onA, onB, sensorA, sensorB);
    await waitFor(onA, (f) => f.type === 'snapshot');
    await waitFor(onB, (f) => f.type === 'snapshot');
    const subscriberOf = { A: onA, B: onB };
    const bus = { A: () => a.live.busStats(), B: () => b.live.busStats() };
    expect([(await readyz(a.server.ports.http)).body.status, (await readyz(b.server.ports.http)).body.status]).toEqual(['ready', 'ready']);

    // The load: each instance's sensor toggles its seats of the stretch in turn, one reading every ~20 ms.
    let phase: Phase = 'before';
    let stop = false;
    const sent: Sent[] = [];
    const occupied = new Map<number, boolean>();
    const lastAt = new Map<number, number>();
    const load = async (on: 'A' | 'B', sensor: RawPeer) => {
      for (let i = 0; !stop; i++) {
        const mine = seatsOf[on][stretch(phase)]!;
        const seatId = mine[i % mine.length]!;
        const now = !(occupied.get(seatId) ?? false);
        occupied.set(seatId, now);
        const at = Math.max(Date.now(), (lastAt.get(seatId) ?? 0) + 1);
        lastAt.set(seatId, at);
        const r: Sent = { on, seatId, state: now ? 'occupied' : 'free', at: new Date(at).toISOString(), phase };
        await sendReadings(sensor, [{ seatId, occupied: now, at }]);
        sent.push(r);
        await sleep(20);
      }
    };
    const loads = Promise.all([load('A', sensorA), load('B', sensorB)]);
    const cross = (on: 'A' | 'B', p: Phase) => sent.filter((r) => r.on === on && r.phase === p);
    try {
      // Before: readings on each instance reach the other's subscriber.
      await until('readings cross both ways', () => sent.length >= 20 && found(eventsOf(onB.frames, cross('A', 'before'))) && found(eventsOf(onA.frames, cross('B', 'before'))));

      // Redis goes: stopped, not cut, and keeps nothing.
      await redis!.shutdown();
      await until('both instances see Redis gone', () => !bus.A().connected && !bus.B().connected);
      phase = 'outage';
      await until('/readyz degraded on both', async () => {
        const [ra, rb] = [await readyz(a.server.ports.http), await readyz(b.server.ports.http)];
        return [ra, rb].every((r) => r.status === 200 && r.body.status === 'degraded' && r.body.degraded.includes('redis'));
      });
      await until('readings during the outage', () => cross('A', 'outage').length >= 15 && cross('B', 'outage').length >= 15);
      phase = 'restarting';
      const outageSent = { A: cross('A', 'outage'), B: cross('B', 'outage') };
      // Each instance delivered its own readings of the outage to its own subscriber, in order...
      for (const on of ['A', 'B'] as const) {
        const sub = subscriberOf[on];
        await until(`${on}'s subscriber has ${on}'s outage readings`, () => found(eventsOf(sub.frames, outageSent[on])), 5_000);
        const idx = eventsOf(sub.frames, outageSent[on]);
        expect(ascending(idx)).toBe(true);
        // ...and nothing of the other's in between: Redis is really gone.
        const between = sub.frames.slice(idx[0], idx[idx.length - 1]! + 1).filter((f) => f.type === 'seat');
        expect(between.filter((f) => !ownSeats(on).includes(f.seatId as number))).toEqual([]);
        expect(between).toHaveLength(outageSent[on].length);
      }

      // A new, empty Redis on the same port.
      restarted = await startRedisServer(redis!.port);
      await until('both instances reconnected and caught up', () => bus.A().connected && bus.B().connected, 15_000);
      phase = 'after';
      await until('/readyz ready on both', async () => {
        const [ra, rb] = [await readyz(a.server.ports.http), await readyz(b.server.ports.http)];
        return [ra, rb].every((r) => r.status === 200 && r.body.status === 'ready');
      });
      await until('readings after the restart', () => cross('A', 'after').length >= 15 && cross('B', 'after').length >= 15);
    } finally {
      stop = true;
      await loads;
    }

    // After: every reading on one instance reached the other's subscriber too, in order, with one seq.
    for (const [from, to] of [
      ['A', 'B'],
      ['B', 'A'],
    ] as const) {
      const readings = cross(from, 'after');
      await until(`${from}'s readings after the restart reach ${to}'s subscriber`, () => found(eventsOf(subscriberOf[to].frames, readings)));
      const there = eventsOf(subscriberOf[to].frames, readings);
      const here = eventsOf(subscriberOf[from].frames, readings);
      expect(found(here) && ascending(here) && ascending(there)).toBe(true);
      expect(there.map((i) => subscriberOf[to].frames[i]!.seq)).toEqual(here.map((i) => subscriberOf[from].frames[i]!.seq));
    }

    // Settled: both delivered everything the (new) shared counter handed out, and nothing moves.
    const probe = new Redis(restarted!.url, { maxRetriesPerRequest: 1 });
    try {
      let stable = 0;
      for (let i = 0; i < 500 && stable < 10; i++) {
        const counter = Number(await probe.get(`${await deploymentKeys(db.pool, 'carrel')}:seq:${branchId}`));
        const ok =
          bus.A().queued === 0 && bus.B().queued === 0 && a.live.hub.seqOf(branchId) === counter && b.live.hub.seqOf(branchId) === counter;
        stable = ok ? stable + 1 : 0;
        await sleep(20);
      }
      expect(stable).toBe(10);
    } finally {
      probe.disconnect();
    }

    // The subscribers that stayed connected: seqs never went backwards; each got a resync.
    for (const sub of [onA, onB]) {
      expect(seqProblems(sub.frames)).toEqual([]);
      expect(sub.frames.some((f) => f.type === 'snapshot' && f.fresh === true && f.reason === 'resync')).toBe(true);
    }

    // Both instances show the same, seat for seat: what each subscriber pieced together, a fresh
    // snapshot of each, and each live model; and for the loaded seats, the last reading.
    const lateA = await subscribe(a.server.ports.pubsub, { branch });
    const lateB = await subscribe(b.server.ports.pubsub, { branch });
    peers.push(lateA, lateB);
    const [snapA, snapB] = [await waitFor(lateA, (f) => f.type === 'snapshot'), await waitFor(lateB, (f) => f.type === 'snapshot')];
    expect(snapA.seq).toBe(snapB.seq);
    const states = (snap: Frame) => (snap.seats as Array<{ seatId: number; state: string; flags: object }>).map((s) => [s.seatId, s.state, s.flags]);
    expect(states(snapA)).toEqual(states(snapB));
    const snapView = new Map(states(snapA).map(([id, state]) => [id as number, state as string]));
    expect(foldView(onA.frames)).toEqual(snapView);
    expect(foldView(onB.frames)).toEqual(snapView);
    const modelStates = (t: TestServer) => t.live.model.seatsOf(branchId).map((s) => [s.id, s.state]);
    expect(modelStates(a)).toEqual(states(snapA).map(([id, state]) => [id, state]));
    expect(modelStates(b)).toEqual(modelStates(a));
    const lastSent = new Map(sent.map((r) => [r.seatId, r.state]));
    expect(seats.map((id) => snapView.get(id))).toEqual(seats.map((id) => lastSent.get(id) ?? 'free'));

    // Nobody crashed: both still answer, and nothing was left unhandled.
    expect([(await readyz(a.server.ports.http)).status, (await readyz(b.server.ports.http)).status]).toEqual([200, 200]);
    expect(rejections).toEqual([]);
  }, 30_000);

  it('an instance started on the empty Redis before another came back: each learns the other\'s readings, and the returning one resyncs above every seq it showed', async () => {
    const branch = 'Medical Library';
    const seats = await branchSeats(db.pool, branch, 8);
    const own = await startRedisServer();
    undo.push(() => own.kill());
    // D reaches this Redis through a proxy, so it can be held away while Redis restarts and C starts.
    const proxy = new CuttableProxy({ host: '127.0.0.1', port: own.port });
    await proxy.open();
    undo.push(() => proxy.cut());
    const config = (url: string) => ({ redis: { url, keyPrefix: 'carrel' }, lifecycle: { enabled: false } });
    const d = await startTestServer(config(`redis://127.0.0.1:${proxy.port}`), { db });
    undo.push(() => d.close());
    const onD = await subscribe(d.server.ports.pubsub, { branch });
    const sensorD = await connectSensor(d.server.ports.sensor, { sensorId: 'gw-d' });
    peers.push(onD, sensorD);
    const t0 = Date.now() - 30_000;
    // D's subscriber sees seqs 1-5 of the first Redis.
    for (let i = 0; i < 5; i++) await sendReadings(sensorD, [{ seatId: seats[i]!, occupied: true, at: t0 + i }]);
    await waitFor(onD, (f) => f.type === 'seat' && f.seq === 5);

    await proxy.cut();
    await until('D sees Redis gone', () => !d.live.busStats().connected);
    await own.shutdown();
    const again = await startRedisServer(own.port);
    undo.push(() => again.kill());
    // C starts on the empty Redis and numbers from 1: seqs D's subscriber has seen, for other events.
    const c = await startTestServer(config(again.url), { db });
    undo.push(() => c.close());
    const onC = await subscribe(c.server.ports.pubsub, { branch });
    const sensorC = await connectSensor(c.server.ports.sensor, { sensorId: 'gw-c' });
    peers.push(onC, sensorC);
    await sendReadings(sensorC, [{ seatId: seats[6]!, occupied: true, at: t0 + 10 }]);
    await waitFor(onC, (f) => f.type === 'seat' && f.seatId === seats[6]);

    await proxy.open();
    await until('D is back', () => d.live.busStats().connected);
    // D learned C's reading (seq 1 of the new Redis), told its subscriber with a fresh snapshot,
    // and numbers on above 5.
    const snap = await waitFor(onD, (f) => f.type === 'snapshot' && f.fresh === true, { timeoutMs: 5_000 });
    expect(snap).toMatchObject({ reason: 'resync' });
    expect((snap.seats as Array<{ seatId: number; state: string }>).find((s) => s.seatId === seats[6])).toMatchObject({ state: 'occupied' });
    expect(snap.seq as number).toBeGreaterThanOrEqual(5);
    // Live again both ways, with one seq.
    await sendReadings(sensorC, [{ seatId: seats[7]!, occupied: true, at: t0 + 20 }]);
    await sendReadings(sensorD, [{ seatId: seats[0]!, occupied: false, at: t0 + 21 }]);
    for (const [seatId, state] of [
      [seats[7], 'occupied'],
      [seats[0], 'free'],
    ] as const) {
      const onCEv = await waitFor(onC, (f) => f.type === 'seat' && f.seatId === seatId && f.state === state);
      const onDEv = await waitFor(onD, (f) => f.type === 'seat' && f.seatId === seatId && f.state === state);
      expect(onDEv.seq).toBe(onCEv.seq);
    }
    expect(seqProblems(onD.frames)).toEqual([]);
    expect(seqProblems(onC.frames)).toEqual([]);
    // Seat for seat the same on both: C also learned D's readings of before the restart.
    const lateC = await subscribe(c.server.ports.pubsub, { branch });
    const lateD = await subscribe(d.server.ports.pubsub, { branch });
    peers.push(lateC, lateD);
    const view = async (peer: RawPeer) => ((await waitFor(peer, (f) => f.type === 'snapshot')).seats as Array<{ seatId: number; state: string }>).map((s) => [s.seatId, s.state]);
    const onBoth = await view(lateC);
    expect(await view(lateD)).toEqual(onBoth);
    expect(seats.slice(0, 8).map((id) => onBoth.find(([s]) => s === id)?.[1])).toEqual(['free', 'occupied', 'occupied', 'occupied', 'occupied', 'free', 'occupied', 'occupied']);
    expect(rejections).toEqual([]);
  }, 20_000);
});
