// The hub's fan-out per event-loop turn, over in-memory socket pairs: a turn's frames reach each
// subscriber in one write, in seq order, and a subscriber joining mid-turn gets exactly what
// follows its snapshot.
import { duplexPair } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../../src/codec/index.js';
import type { SeatEvent } from '../../src/core/liveSeats.js';
import { Connection } from '../../src/net/connection.js';
import { Hub } from '../../src/pubsub/hub.js';
import { Subscriber } from '../../src/pubsub/subscriber.js';
import { silentLogger } from '../../src/obs/log.js';

const BRANCH = 7;

function hub(): Hub {
  const h = new Hub({ retainEvents: 100 }, { tokens: { verify: () => ({ id: 1, expMs: Infinity }) }, now: () => Date.now(), log: silentLogger });
  h.addBranch(BRANCH, 'Annex', 0, [1, 2, 3].map((id) => ({ id, branchId: BRANCH, area: 'A', label: `A-${id}`, state: 'free' as const, flags: 0 })));
  return h;
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
    for (let seq = 1; seq <= 5; seq++) h.publish(event(seq, (seq % 3) + 1));
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
    h.publish(event(1, 1));
    h.publish(event(2, 2));
    const late = subscriber(h);
    late.sub.onMessage({ type: 'subscribe', branch: BRANCH });
    h.publish(event(3, 3));
    await turn();
    expect(early.frames.filter((f) => f.type === 'seat').map((f) => f.seq)).toEqual([1, 2, 3]);
    expect(late.frames.map((f) => [f.type, f.seq])).toEqual([
      ['subscribed', undefined],
      ['snapshot', 2],
      ['seat', 3],
    ]);
    expect((late.frames[1]!.seats as Array<{ state: string }>).map((s) => s.state)).toEqual(['occupied', 'occupied', 'free']);
  });
});
