// One seat, one live state: after a sensor marks a seat occupied, every way of asking about it —
// seats.list, seats.get, branches.list's counts, a new subscriber's snapshot and the seat event
// itself — says the same, on the instance that took the reading and on another one
// (docs/architecture.md, "The live-state model": the live model is the one owner; the listings,
// the hub's snapshots and summaries read it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, insertReservation, sendReadings, subscribe, userId, waitFor, type Frame } from '../support/live.js';
import { dropKeys, redisAvailable, redisUrl, testKeyPrefix } from '../support/redis.js';
import { connect } from '../support/core.js';
import type { RawPeer } from '../support/peer.js';

type Counts = { total: number; free: number; reserved: number; occupied: number; away: number; unavailable: number };
type Seat = { id: number; live: string };
type SnapSeat = { seatId: number; state: string };

const BRANCH = 'Main Library';

/** What each view says about `seat`, and the branch's counts from the listing and the snapshot. */
async function views(t: TestServer, seat: number) {
  const rpc = await connect(t);
  try {
    const listed = await rpc.call<Seat[]>('seats.list', { branch: BRANCH });
    const got = await rpc.call<Seat>('seats.get', { id: seat });
    const branches = await rpc.call<Array<{ name: string; counts: Counts }>>('branches.list');
    const sub = await subscribe(t.server.ports.pubsub, { branch: BRANCH });
    const snap = await waitFor(sub, (f) => f.type === 'snapshot');
    sub.destroy();
    const snapSeats = snap.seats as SnapSeat[];
    return {
      list: listed.find((s) => s.id === seat)!.live,
      get: got.live,
      snapshot: snapSeats.find((s) => s.seatId === seat)!.state,
      branchCounts: branches.find((b) => b.name === BRANCH)!.counts,
      listCounts: countsOf(listed.map((s) => s.live)),
      snapshotCounts: countsOf(snapSeats.map((s) => s.state)),
    };
  } finally {
    rpc.close();
  }
}

function countsOf(states: string[]): Counts {
  const c: Counts = { total: states.length, free: 0, reserved: 0, occupied: 0, away: 0, unavailable: 0 };
  for (const s of states) c[s as keyof Omit<Counts, 'total'>]++;
  return c;
}

function expectAgreement(v: Awaited<ReturnType<typeof views>>, state: string): void {
  expect({ list: v.list, get: v.get, snapshot: v.snapshot }).toEqual({ list: state, get: state, snapshot: state });
  expect(v.listCounts).toEqual(v.branchCounts);
  expect(v.snapshotCounts).toEqual(v.branchCounts);
}

/** Sends one reading through A and returns the seat event each subscriber got for it. */
async function readingThrough(a: TestServer, seat: number, occupied: boolean, at: number, watchers: RawPeer[]): Promise<Frame[]> {
  const from = watchers.map((w) => w.frames.length);
  const sensor = await connectSensor(a.server.ports.sensor);
  await sendReadings(sensor, [{ seatId: seat, occupied, at }]);
  sensor.destroy();
  return nextSeatEvents(watchers, from, seat);
}

/** The first seat event of `seat` each subscriber got after the frames counted in `from`. */
function nextSeatEvents(watchers: RawPeer[], from: number[], seat: number): Promise<Frame[]> {
  return Promise.all(watchers.map((w, i) => waitFor(w, (f) => f.type === 'seat' && f.seatId === seat, { from: from[i] })));
}

describe('one live state, one instance', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a sensor marks a seat occupied: seats.list, seats.get, branches.list, the snapshot and the event agree', async () => {
    const [seat] = await branchSeats(t.db.pool, BRANCH, 1);
    // The listing is asked twice first, so a cached answer would be the one served afterwards.
    expectAgreement(await views(t, seat!), 'free');
    expectAgreement(await views(t, seat!), 'free');
    const watcher = await subscribe(t.server.ports.pubsub, { branch: BRANCH });
    await waitFor(watcher, (f) => f.type === 'snapshot');
    const t0 = Date.now() - 10_000;
    const [ev] = await readingThrough(t, seat!, true, t0, [watcher]);
    expect(ev).toMatchObject({ seatId: seat, state: 'occupied', flags: { unbookedOccupancy: true } });
    expectAgreement(await views(t, seat!), 'occupied');
    // And back: the seat left empty reads free everywhere again.
    const [back] = await readingThrough(t, seat!, false, t0 + 1000, [watcher]);
    expect(back).toMatchObject({ seatId: seat, state: 'free' });
    expectAgreement(await views(t, seat!), 'free');
    watcher.destroy();
  });

  it('a flood of readings keeps every view in step and does not move the booking generation', async () => {
    const seats = await branchSeats(t.db.pool, BRANCH, 20);
    const generation = t.seatListing.generation;
    const sensor = await connectSensor(t.server.ports.sensor);
    const t0 = Date.now() - 60_000;
    // 10 frames of 20 readings: each seat flips 10 times and ends occupied when its index is odd.
    for (let round = 0; round < 10; round++) {
      await sendReadings(sensor, seats.map((seatId, i) => ({ seatId, occupied: (round + i) % 2 === 0, at: t0 + round * 100 })));
      const v = await views(t, seats[round]!);
      expect(v.listCounts).toEqual(v.branchCounts);
      expect(v.list).toBe(v.get);
    }
    sensor.destroy();
    for (const [i, seat] of seats.entries()) expectAgreement(await views(t, seat), i % 2 === 1 ? 'occupied' : 'free');
    // Readings change live states, not bookings: the branch rows stay cached (docs/fairness.md).
    expect(t.seatListing.generation).toBe(generation);
  });
});

(redisAvailable ? describe : describe.skip)('one live state, two instances', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  const keyPrefix = testKeyPrefix('agreement');
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

  it('a reading taken by A: both instances answer occupied everywhere, and their events agree', async () => {
    const [, seat] = await branchSeats(db.pool, BRANCH, 2);
    for (const t of [a, b, a, b]) expectAgreement(await views(t, seat!), 'free');
    const onA = await subscribe(a.server.ports.pubsub, { branch: BRANCH });
    const onB = await subscribe(b.server.ports.pubsub, { branch: BRANCH });
    await Promise.all([onA, onB].map((p) => waitFor(p, (f) => f.type === 'snapshot')));
    const [evA, evB] = await readingThrough(a, seat!, true, Date.now() - 10_000, [onA, onB]);
    expect(evB).toEqual(evA);
    expect(evA).toMatchObject({ seatId: seat, state: 'occupied' });
    const onAViews = await views(a, seat!);
    const onBViews = await views(b, seat!);
    expectAgreement(onAViews, 'occupied');
    expectAgreement(onBViews, 'occupied');
    expect(onBViews.branchCounts).toEqual(onAViews.branchCounts);
    onA.destroy();
    onB.destroy();
  });

  it('a booking committed on A, then a reading taken by B: every view on both says reserved, then occupied without the unbooked flag', async () => {
    const [, , seat] = await branchSeats(db.pool, BRANCH, 3);
    const onA = await subscribe(a.server.ports.pubsub, { branch: BRANCH });
    const onB = await subscribe(b.server.ports.pubsub, { branch: BRANCH });
    await Promise.all([onA, onB].map((p) => waitFor(p, (f) => f.type === 'snapshot')));
    let from = [onA.frames.length, onB.frames.length];
    const now = Date.now();
    const fact = await insertReservation(db.pool, { seatId: seat!, userId: await userId(db.pool), startMs: now - 60_000, endMs: now + 3_600_000 });
    // What ReservationService does after its commit: A's model applies it, the bus carries it to B.
    a.coreEvents.emit({ type: 'reservation', cause: 'reservation.created', reservation: fact, at: new Date().toISOString() });
    const [bookedA, bookedB] = await nextSeatEvents([onA, onB], from, seat!);
    expect(bookedB).toEqual(bookedA);
    expect(bookedA).toMatchObject({ state: 'reserved', flags: {}, cause: 'reservation.created' });
    for (const t of [a, b]) expectAgreement(await views(t, seat!), 'reserved');
    from = [onA.frames.length, onB.frames.length];
    const [seatedA, seatedB] = await readingThrough(b, seat!, true, Date.now() - 5_000, [onA, onB]);
    expect(seatedB).toEqual(seatedA);
    expect(seatedA).toMatchObject({ state: 'occupied', flags: {} });
    const onAViews = await views(a, seat!);
    const onBViews = await views(b, seat!);
    expectAgreement(onAViews, 'occupied');
    expectAgreement(onBViews, 'occupied');
    expect(onBViews.branchCounts).toEqual(onAViews.branchCounts);
    onA.destroy();
    onB.destroy();
  });
});
