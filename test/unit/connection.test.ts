// Connection.send gathers a tick's frames into one write: order is kept across gathered, large
// (written as they are) and immediate (sendNow) frames and a final frame at close, and
// back-pressure still sees every byte past the high-water mark.
import { duplexPair } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { encodeJsonText, FrameDecoder } from '../../src/codec/index.js';
import { Connection } from '../../src/net/connection.js';
import { silentLogger } from '../../src/obs/log.js';

function pair(writeHighWaterBytes = 1 << 20) {
  const [near, far] = duplexPair();
  const conn = new Connection(near, { maxFrameBytes: 1 << 22, maxJsonDepth: 32, idleTimeoutMs: 0, partialFrameTimeoutMs: 0, writeHighWaterBytes }, silentLogger);
  const decoder = new FrameDecoder({ maxFrameBytes: 1 << 22, maxDepth: 32 });
  const out = { conn, far, writes: 0, frames: [] as Array<Record<string, unknown>> };
  far.on('data', (chunk: Buffer) => {
    out.writes++;
    decoder.push(chunk);
    for (let d = decoder.next(); d; d = decoder.next()) if (d.kind === 'message') out.frames.push(d.value);
  });
  return out;
}

const frame = (n: number, pad = 0) => encodeJsonText(JSON.stringify({ n, pad: 'x'.repeat(pad) }));
const tick = () => new Promise<void>((r) => setImmediate(r));

describe('Connection output', () => {
  it('writes the frames of one tick in one write, in order', async () => {
    const p = pair();
    for (let n = 0; n < 32; n++) p.conn.send(frame(n));
    expect(p.writes).toBe(0); // nothing before the tick ends
    await tick();
    expect(p.writes).toBe(1);
    expect(p.frames.map((f) => f.n)).toEqual([...Array(32).keys()]);
  });

  it('keeps order across gathered, large, spliced and immediate frames and a final frame', async () => {
    const p = pair();
    p.conn.send(frame(0));
    p.conn.send(frame(1, 40_000)); // large: written as it is, after what was gathered
    p.conn.send(frame(2));
    const three = frame(3, 100);
    p.conn.send([three.subarray(0, 5), three.subarray(5, 60), three.subarray(60)]);
    p.conn.sendNow(frame(4));
    p.conn.send(frame(5));
    p.conn.close('server', frame(6));
    await tick();
    await tick();
    expect(p.frames.map((f) => f.n)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('goes out before the tick ends once the gathered bytes would reach the high-water mark, so congestion is seen', async () => {
    const p = pair(16 * 1024);
    p.far.pause(); // the peer stops reading
    let congestedAt = -1;
    for (let n = 0; n < 400 && congestedAt < 0; n++) if (!p.conn.send(frame(n, 200))) congestedAt = n;
    expect(congestedAt).toBeGreaterThan(0);
    // Never more than the mark (Node's own 16 KiB) and one frame unsent when congestion is reported.
    expect(p.conn.bufferedBytes).toBeLessThanOrEqual(16 * 1024 + 300);
    expect(p.conn.congested).toBe(true);
    p.conn.dispose();
  });
});
