// The subscriber's queue and its slow-consumer rule over an in-memory socket pair: nobody reads
// the far end, so the connection congests and every further frame goes to the ring, then drops.
import { duplexPair } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Connection } from '../../src/net/connection.js';
import { Subscriber, type SubscriberHost } from '../../src/pubsub/subscriber.js';
import { silentLogger } from '../../src/obs/log.js';

function congestedSubscriber(maxDrops: number, dropWindowMs: number) {
  const [near] = duplexPair();
  const conn = new Connection(near, { maxFrameBytes: 1 << 20, maxJsonDepth: 32, idleTimeoutMs: 0, partialFrameTimeoutMs: 0, writeHighWaterBytes: 1 }, silentLogger);
  const host: SubscriberHost & { drops: number; cutOff: number } = {
    drops: 0,
    cutOff: 0,
    subscribe: () => undefined,
    remove: () => undefined,
    countDrop: () => void host.drops++,
    countSlowConsumer: () => void host.cutOff++,
  };
  const sub = new Subscriber(conn, host, { queueCapacity: 1, highWaterBytes: 1, maxDrops, dropWindowMs, slowConsumerLingerMs: 1000 }, silentLogger);
  const frame = Buffer.alloc(1024);
  while (!conn.congested) sub.deliver(frame, 0, 1);
  sub.deliver(frame, 0, 1); // fills the ring of one; every frame after this drops one
  expect(host.drops).toBe(0);
  const dropAt = (atMs: number, n: number) => {
    vi.setSystemTime(atMs);
    for (let i = 0; i < n; i++) sub.deliver(frame, 0, 1);
  };
  return { host, dropAt };
}

describe('SLOW_CONSUMER: maxDrops within a sliding dropWindowMs', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('cuts off maxDrops drops that straddle where a tumbling window would have restarted', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { host, dropAt } = congestedSubscriber(10, 1000);
    dropAt(0, 1);
    dropAt(990, 8);
    expect(host).toMatchObject({ drops: 9, cutOff: 0 });
    // 11 ms later: ten drops within 1,011 ms, nine of them within the last 11 ms. A window reset at
    // t = 1000 let up to 2 × maxDrops − 2 of these through.
    dropAt(1001, 2);
    expect(host.cutOff).toBe(1);
    expect(host.drops).toBeLessThanOrEqual(11);
  });

  it('forgets drops older than the window (within a sixteenth of it)', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { host, dropAt } = congestedSubscriber(10, 1000);
    dropAt(0, 9);
    dropAt(1000 + 1000 / 16 + 1, 9);
    expect(host).toMatchObject({ drops: 18, cutOff: 0 });
    dropAt(1500, 1);
    expect(host).toMatchObject({ drops: 19, cutOff: 1 });
  });

  it('never cuts off a subscriber dropping fewer than maxDrops per window, however long', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { host, dropAt } = congestedSubscriber(10, 1000);
    for (let t = 0; t < 60_000; t += 300) dropAt(t, 2); // at most 4 × 2 within 17/16 of a window
    expect(host.cutOff).toBe(0);
    expect(host.drops).toBe(400);
  });
});
