// Frame limits per port (issue: "memory stays bounded"): the sensor and subscriber ports do not
// need the RPC port's 1 MiB frames, so each has its own limit, checked at the header.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawPeer, rawFrame } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { branchSeats, connectSensor, subscribe } from '../support/live.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => t?.close());

function header(n: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(n);
  return h;
}

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
    const base = Date.now() - 600_000;
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
