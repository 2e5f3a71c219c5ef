// The hub's fan-out per event-loop turn, over in-memory socket pairs: a turn's frames reach each
// subscriber in one write, in seq order, and a subscriber joining mid-turn gets exactly what
// follows its snapshot. The hub keeps no seat state: snapshots and summaries are the live model's
// published states (docs/architecture.md, "The live-state model").
import { duplexPair } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../../src/codec/index.js';
import { LiveSeats, type SeatEvent } from '../../src/core/liveSeats.js';
import { Connection } from '../../src/net/connection.js';
import { Hub } from '../../src/pubsub/hub.js';
import { Subscriber } from '../../src/pubsub/subscriber.js';
import { silentLogger } from '../../src/obs/log.js';

const BRANCH = 7;

const models = new WeakMap<Hub, LiveSeats>();

/** A hub of one branch of three free seats, reading their published states from a live model. */
function hub(): Hub {
  const model = new LiveSeats(
    { instanceId: 'here', offlineAfterMs: 120_000, awayEndingMs: 300_000, autoCheckIn: false, autoRelease: false, checkInWindow: { opensBeforeMs: 0, graceMs: 0 } },
    { changes: { publishSeat: () => undefined } },
  );
  const seats = [1, 2, 3].map((id) => ({ id, branchId: BRANCH, area: 'A', label: `A-${id}`, outOfService: false }));
  model.load({ branches: [{ id: BRANCH, name: 'Annex' }], seats, bookings: [], sensors: [] }, Date.now());
  const h = new Hub({ retainEvents: 100 }, { tokens: { verify: () => ({ id: 1, expMs: Infinity }) }, published: model, now: () => Date.now(), log: silentLogger });
  h.addBranch(BRANCH, 'Annex', 0, 'e1');
  models.set(h, model);
  return h;
}

/** A numbered event as Realtime.deliverSeat hands it on: recorded by the model, then published. */
function publish(h: Hub, ev: SeatEvent): void {
  models.get(h)!.recordPublished(ev);
  h.publish(ev);
}

/** A subscriber over a duplexPair; `chunks` are the writes that reached the far end, `frames` their decoded frames. */
function subscriber(h: Hub) {
  const [near, far] = duplexPair();
  const conn = new Connection(near, { maxFrameBytes: 1 << 20, maxJsonDepth: 32, idleTimeoutMs: 0, partialFrameTimeoutMs: 0, writeHighWaterBytes: 1 << 20 }, silentLogger);
  const sub = new Subscriber(conn, h, { queueCapacity: 64, highWaterBytes: 1 << 20, maxDrops: 1000, dropWindowMs: 1000, slowConsumerLingerMs: 1000 }, silentLogger);
  const decoder = new FrameDecoder({ maxFrameBytes: 1 << 20, maxDepth: 32 });
  const out = { sub, chunks: 0, frames: [] as Record<string, unknown>[] };
  far.on('data', (chunk: Buffer) => {
    out.chunks++;
    decoder.push(chunk);
    for (let d = decoder.next(); d; d = decoder.next()) if (d.kind === 'message') out.frames.push(d.value);
  });
  return out;
}

function event(seq: number, seatId: number): SeatEvent {
  const at = new Date().toISOString();
  return { origin: 'x', branchId: BRANCH, seatId, state: 'occupied', flags: 0, cause: 'sensor', at, seq, sensor: { occupied: true, readingAtMs: 0, contactAtMs: 0 } };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

describe('Hub fan-out per event-loop turn', () => {
  it('a turn\'s events reach each subscriber in one write, in seq order', async () => {
    const h = hub();
    const a = subscriber(h);
    const b = subscriber(h);
    a.sub.onMessage({ type: 'subscribe', branch: BRANCH });
    b.sub.onMessage({ type: 'subscribe', branch: BRANCH });
    await turn();
    const [chunksA, chunksB] = [a.chunks, b.chunks];
    for (let seq = 1; seq <= 5; seq++) publish(h, event(seq, (seq % 3) + 1));
    await turn();
    for (const s of [a, b]) expect(s.frames.filter((f) => f.type === 'seat').map((f) => f.seq)).toEqual([1, 2, 3, 4, 5]);
    expect([a.chunks - chunksA, b.chunks - chunksB]).toEqual([1, 1]);
    expect(h.stats.framesDelivered).toBe(10);
  });

  it('a subscriber joining mid-turn gets the events after its snapshot, none before', async () => {
    const h = hub();
    const early = subscriber(h);
    early.sub.onMessage({ type: 'subscribe', branch: BRANCH });
    await turn();
    publish(h, event(1, 1));
    publish(h, event(2, 2));
    const late = subscriber(h);
    late.sub.onMessage({ type: 'subscribe', branch: BRANCH });
    publish(h, event(3, 3));
    await turn();
    expect(early.frames.filter((f) => f.type === 'seat').map((f) => f.seq)).toEqual([1, 2, 3]);
    expect(late.frames.map((f) => [f.type, f.seq])).toEqual([
      ['subscribed', undefined],
      ['snapshot', 2],
      ['seat', 3],
    ]);
    expect((late.frames[1]!.seats as Array<{ state: string }>).map((s) => s.state)).toEqual(['occupied', 'occupied', 'free']);
  });

  it("a branch summary counts the seats' published states, not what the model computes since", async () => {
    const h = hub();
    const s = subscriber(h);
    s.sub.onMessage({ type: 'subscribe', branch: BRANCH });
    publish(h, { ...event(1, 1), flags: 1 });
    // A reading the model has applied but the bus has not numbered yet is not in the summary.
    models.get(h)!.applyReading(2, true, Date.now() - 1000, Date.now(), 'gw');
    h.summaries();
    await turn();
    expect(s.frames.at(-1)).toMatchObject({ type: 'branch', seq: 1, total: 3, occupied: 1, free: 2, unbookedOccupancy: 1, sensorOffline: 0 });
  });
});

describe('Hub sequence epochs (docs/redis.md)', () => {
  /** A hub at seq 3 of epoch e1, with those events retained. */
  async function atSeq3() {
    const h = hub();
    for (let seq = 1; seq <= 3; seq++) publish(h, event(seq, seq));
    await turn();
    return h;
  }

  it('subscribed and snapshots name the epoch; a resume in the same epoch replays, one with another epoch gets a fresh snapshot with reason seqReset and nothing replayed', async () => {
    const h = await atSeq3();
    const plain = subscriber(h);
    plain.sub.onMessage({ type: 'subscribe', branch: BRANCH });
    const same = subscriber(h);
    same.sub.onMessage({ type: 'subscribe', branch: BRANCH, since: 1, epoch: 'e1' });
    const other = subscriber(h);
    other.sub.onMessage({ type: 'subscribe', branch: BRANCH, since: 1, epoch: 'e0' });
    await turn();
    expect(plain.frames.slice(0, 2)).toMatchObject([{ type: 'subscribed', epoch: 'e1', branches: [{ seq: 3, epoch: 'e1' }] }, { type: 'snapshot', seq: 3, epoch: 'e1' }]);
    expect(same.frames.map((f) => [f.type, f.seq])).toEqual([
      ['subscribed', undefined],
      ['seat', 2],
      ['seat', 3],
    ]);
    expect(same.frames[0]).toMatchObject({ resumed: true, epoch: 'e1' });
    expect(other.frames.map((f) => f.type)).toEqual(['subscribed', 'snapshot']);
    expect(other.frames[0]).toMatchObject({ resumed: false, branches: [{ resumed: false, epoch: 'e1' }] });
    expect(other.frames[1]).toMatchObject({ fresh: true, reason: 'seqReset', seq: 3, epoch: 'e1' });
    // Even a `since` equal to the current seq means nothing in another epoch.
    const equal = subscriber(h);
    equal.sub.onMessage({ type: 'subscribe', branch: BRANCH, since: 3, epoch: 'e0' });
    await turn();
    expect(equal.frames[1]).toMatchObject({ type: 'snapshot', reason: 'seqReset' });
  });

  it('a resync into a new epoch gives connected subscribers a snapshot naming it; a resume with the old epoch is then told', async () => {
    const h = await atSeq3();
    const live = subscriber(h);
    live.sub.onMessage({ type: 'subscribe', branch: BRANCH });
    await turn();
    // The new space numbers on above what was shown (the Redis bus's floor), in epoch e2.
    models.get(h)!.adoptPublished(BRANCH, new Map([[1, { state: 'free' as const, flags: 0 }]]));
    h.resync(BRANCH, 5, 'e2');
    await turn();
    expect(live.frames.at(-1)).toMatchObject({ type: 'snapshot', fresh: true, reason: 'resync', seq: 5, epoch: 'e2' });
    const late = subscriber(h);
    late.sub.onMessage({ type: 'subscribe', branch: BRANCH, since: 3, epoch: 'e1' });
    const plain = subscriber(h);
    plain.sub.onMessage({ type: 'subscribe', branch: BRANCH });
    await turn();
    expect(late.frames[1]).toMatchObject({ type: 'snapshot', fresh: true, reason: 'seqReset', seq: 5, epoch: 'e2' });
    // The cached snapshot frame was rebuilt with the new epoch too.
    expect(plain.frames[1]).toMatchObject({ type: 'snapshot', seq: 5, epoch: 'e2' });
  });

  it('an epoch that is not a short string is refused with INVALID_ARGUMENT, and the connection may subscribe again', async () => {
    const h = await atSeq3();
    const s = subscriber(h);
    for (const epoch of ['x'.repeat(65), 'y'.repeat(100_000), '', 42, { e: 'e1' }, ['e1']]) {
      s.sub.onMessage({ type: 'subscribe', branch: BRANCH, since: 1, epoch });
    }
    await turn();
    expect(s.frames).toHaveLength(6);
    expect(s.frames.every((f) => f.type === 'error' && f.code === 'INVALID_ARGUMENT')).toBe(true);
    expect(String(s.frames[0]!.message).length).toBeLessThan(200);
    s.sub.onMessage({ type: 'subscribe', branch: BRANCH, since: 2, epoch: 'e1' });
    await turn();
    expect(s.frames.slice(6).map((f) => [f.type, f.seq])).toEqual([
      ['subscribed', undefined],
      ['seat', 3],
    ]);
  });

  it('a flood of resumes with made-up epochs costs each one snapshot, the same as subscribing afresh', async () => {
    const h = await atSeq3();
    const subs = Array.from({ length: 200 }, (_, i) => {
      const s = subscriber(h);
      s.sub.onMessage({ type: 'subscribe', branch: BRANCH, since: i % 4, epoch: `made-up-${i}` });
      return s;
    });
    await turn();
    for (const s of subs) expect(s.frames.map((f) => [f.type, f.reason])).toEqual([
      ['subscribed', undefined],
      ['snapshot', 'seqReset'],
    ]);
    expect(h.stats.freshSnapshots).toBe(200);
    expect(h.stats.resumed).toBe(0);
  });
});
