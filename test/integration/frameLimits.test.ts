// Frame limits per port and the per-port budget of bytes held in unfinished frames (issue:
// "memory stays bounded"): a flood of connections that each start a large frame and never
// finish it cannot take a port past limits.maxPartialFrameBytesPerPort; the connections holding
// the most are closed with RESOURCE_EXHAUSTED, and honest clients carry on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Listener } from '../../src/net/listener.js';
import { RawPeer, rawFrame } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { settledHeapBytes, waitFor } from '../support/fuzz.js';
import { branchSeats, connectSensor, sendReadings, subscribe } from '../support/live.js';

const BUDGET = 8 * 1024 * 1024;
let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ limits: { maxPartialFrameBytesPerPort: BUDGET } });
});
afterAll(async () => t?.close());

function header(n: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(n);
  return h;
}

/** The bytes the budget counts, summed from the connections themselves (to check its books). */
function heldByConnections(l: Listener): number {
  let n = 0;
  for (const c of l.connections) n += c.heldBytes;
  return n;
}

/** Opens n connections, 100 at a time, each sending the same bytes (one shared Buffer: the flood costs the test nothing per connection). */
async function flood(port: number, n: number, bytes: Buffer): Promise<RawPeer[]> {
  const peers: RawPeer[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => RawPeer.connect(port)));
    for (const p of batch) p.write(bytes);
    peers.push(...batch);
  }
  return peers;
}

async function hangUp(peers: RawPeer[]): Promise<void> {
  for (const p of peers) p.destroy();
  await Promise.all(peers.map((p) => p.closed));
}

const codeOf = (f: Record<string, unknown>): unknown => f.code ?? (f.error as { code?: unknown } | null)?.code;

describe('frame limits per port', () => {
  it('the sensor port refuses a frame over sensors.maxFrameBytes at its header, with one BAD_FRAME, and closes', async () => {
    expect(t.config.sensors.maxFrameBytes).toBe(128 * 1024);
    const peer = await connectSensor(t.server.ports.sensor);
    peer.write(Buffer.concat([header(t.config.sensors.maxFrameBytes + 1), Buffer.from('{"type":"occupancy"')]));
    await peer.closed;
    expect(peer.frames.slice(1)).toEqual([{ type: 'error', code: 'BAD_FRAME', message: expect.stringContaining('exceeds the limit of 131072') }]);
  });

  it('the largest occupancy frame a sensor may send (sensors.maxReadingsPerFrame readings, pretty-printed) fits the sensor limit', async () => {
    const seats = await branchSeats(t.db.pool, 'Main Library', 5);
    const base = Date.now() - 60_000; // inside sensors.maxAgeMs
    const readings = Array.from({ length: t.config.sensors.maxReadingsPerFrame }, (_, i) => ({
      seatId: seats[i % seats.length]!,
      occupied: i % 2 === 0,
      at: new Date(base + i).toISOString(),
    }));
    const text = JSON.stringify({ type: 'occupancy', ref: 'max', readings }, null, 2);
    expect(Buffer.byteLength(text)).toBeGreaterThan(40_000);
    expect(Buffer.byteLength(text)).toBeLessThan(t.config.sensors.maxFrameBytes);
    const peer = await connectSensor(t.server.ports.sensor);
    peer.write(rawFrame(text));
    const [, ack] = await peer.waitFrames(2);
    expect(ack).toMatchObject({ type: 'ack', ref: 'max', unknownSeats: [] });
    expect((ack!.applied as number) + (ack!.stale as number)).toBe(readings.length);
    peer.destroy();
  });

  it('the subscriber port refuses a frame over pubsub.maxFrameBytes with one BAD_FRAME and closes; a subscribe with a long token fits', async () => {
    expect(t.config.pubsub.maxFrameBytes).toBe(32 * 1024);
    const ok = await subscribe(t.server.ports.pubsub, { branch: 'Main Library', token: 'x'.repeat(4096) });
    expect(ok.frames[0]).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
    ok.destroy();
    const peer = await RawPeer.connect(t.server.ports.pubsub);
    peer.write(rawFrame(JSON.stringify({ type: 'subscribe', branch: 'Main Library', pad: 'p'.repeat(40_000) })));
    await peer.closed;
    expect(peer.frames).toEqual([{ type: 'error', code: 'BAD_FRAME', message: expect.stringContaining('exceeds the limit of 32768') }]);
  });

  it('the RPC port still takes frames up to limits.maxFrameBytes', async () => {
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.write(rawFrame(JSON.stringify({ rpcId: 1, method: 'PING', pad: 'p'.repeat(900_000) })));
    const [reply] = await peer.waitFrames(1);
    expect(reply).toMatchObject({ rpcId: 1, result: 'PONG' });
    peer.destroy();
  });
});

describe('the unfinished-frame budget (limits.maxPartialFrameBytesPerPort)', () => {
  it('1,500 silent connections each holding a 120 KiB partial frame cannot take the sensor port past the budget; honest sensors carry on', async () => {
    const listener = t.live.sensorListener;
    const arrayBuffersBefore = (await settledHeapBytes(), process.memoryUsage().arrayBuffers);
    const rssBefore = process.memoryUsage.rss();
    const declared = 120 * 1024;
    const attack = Buffer.concat([header(declared), Buffer.alloc(declared - 1, 0x20)]);
    const peers = await flood(t.server.ports.sensor, 1500, attack);
    // The flood has been read when every connection was either evicted or holds its whole partial frame.
    const holdingWhole = (): number => [...listener.connections].filter((c) => c.heldBytes >= declared).length;
    await waitFor(() => listener.partialFrames.evictions + holdingWhole() === 1500, 15_000, 'the flood to be read');

    const budget = listener.partialFrames;
    expect(budget.peak).toBeLessThanOrEqual(BUDGET);
    expect(budget.total).toBeLessThanOrEqual(BUDGET);
    expect(heldByConnections(listener)).toBe(budget.total);
    // Roughly all but the ~68 that fit were closed, each with one RESOURCE_EXHAUSTED in the sensor port's shape.
    const fit = Math.floor(BUDGET / declared);
    expect(budget.evictions).toBeGreaterThanOrEqual(1500 - fit - 5);
    await waitFor(() => peers.filter((p) => p.socket.destroyed).length >= budget.evictions, 5000, 'evicted connections to close');
    const evicted = peers.filter((p) => p.frames.length > 0);
    expect(evicted.length).toBe(budget.evictions);
    for (const p of evicted) {
      expect(p.frames).toEqual([{ type: 'error', code: 'RESOURCE_EXHAUSTED', message: expect.stringContaining('unfinished frames') }]);
    }

    // Honest sensors are not the ones cut off: hello and a large occupancy frame go through.
    const seats = await branchSeats(t.db.pool, 'Main Library', 3);
    for (let i = 0; i < 3; i++) {
      const sensor = await connectSensor(t.server.ports.sensor, { sensorId: `honest-${i}` });
      const readings = Array.from({ length: 400 }, (_, j) => ({ seatId: seats[j % 3]!, occupied: j % 2 === 0, at: Date.now() - 60_000 + j }));
      const ack = await sendReadings(sensor, readings);
      expect(ack).toMatchObject({ type: 'ack', unknownSeats: [] });
      sensor.destroy();
    }
    expect(listener.partialFrames.total).toBeLessThanOrEqual(BUDGET);

    // Memory: what is held after a collection is the budget, not 1,500 × 120 KiB (176 MiB).
    const arrayBuffersGrowth = (await settledHeapBytes(), process.memoryUsage().arrayBuffers) - arrayBuffersBefore;
    expect(arrayBuffersGrowth).toBeLessThan(BUDGET + 16 * 1024 * 1024);
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(128 * 1024 * 1024);

    await hangUp(peers);
    await waitFor(() => listener.connections.size === 0, 5000, 'the flood to hang up');
    expect(listener.partialFrames.total).toBe(0);
    expect(listener.partialFrames.holders).toBe(0);
  }, 60_000);

  it('on the RPC port the connection holding the most gets RESOURCE_EXHAUSTED in the RPC error shape; a small partial frame and PING are unaffected', async () => {
    const listener = t.rpcListener;
    const evictionsBefore = listener.partialFrames.evictions;
    const small = await RawPeer.connect(t.server.ports.rpc);
    const request = rawFrame(JSON.stringify({ rpcId: 'small', method: 'PING' }));
    small.write(request.subarray(0, 10)); // starts a frame and pauses
    await waitFor(() => listener.partialFrames.holders === 1, 2000, 'the small partial frame');
    // 9 × 1 MiB partial frames against an 8 MiB budget: the largest holders go, the small one stays.
    const big = await flood(t.server.ports.rpc, 9, Buffer.concat([header(1024 * 1024), Buffer.alloc(1024 * 1024 - 1, 0x20)]));
    await waitFor(() => listener.partialFrames.evictions - evictionsBefore >= 2, 5000, 'evictions');
    await waitFor(() => big.filter((p) => p.frames.length > 0).length === listener.partialFrames.evictions - evictionsBefore, 5000, 'eviction frames');
    expect(listener.partialFrames.peak).toBeLessThanOrEqual(BUDGET);
    for (const p of big.filter((x) => x.frames.length > 0)) {
      expect(p.frames).toEqual([{ rpcId: null, result: null, error: { code: 'RESOURCE_EXHAUSTED', message: expect.any(String) } }]);
    }
    expect(small.frames).toEqual([]);
    small.write(request.subarray(10));
    const [reply] = await small.waitFrames(1);
    expect(reply).toMatchObject({ rpcId: 'small', result: 'PONG' });
    expect(codeOf(reply!)).toBeUndefined();
    small.destroy();
    await hangUp(big);
    await waitFor(() => listener.partialFrames.total === 0, 5000, 'the budget to empty');
  });

  it('/metrics shows the bytes held in unfinished frames and the evictions, per port', async () => {
    const res = await fetch(`http://127.0.0.1:${t.server.ports.http}/metrics`);
    const body = await res.text();
    expect(body).toMatch(/carrel_partial_frame_bytes\{port="sensor"\} 0/);
    const evictions = Number(/carrel_partial_frame_evictions_total\{port="sensor"\} (\d+)/.exec(body)?.[1]);
    expect(evictions).toBe(t.live.sensorListener.partialFrames.evictions);
    expect(evictions).toBeGreaterThan(1000);
  });
});
