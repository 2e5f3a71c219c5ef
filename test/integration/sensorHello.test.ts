// Wrong sensor keys are throttled per address (audit: 847 wrong-key hellos a second from one
// address, each a database query and an info log line). Past the free failures a hello from
// that address is refused RESOURCE_EXHAUSTED with retryAfterMs before any key lookup; hellos
// arriving at once get no more tries than hellos one after another; refusals are logged once
// per address per window.
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/obs/log.js';
import { RawPeer } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';

const FREE = 3;
const BASE_MS = 1_000;
const WINDOW_MS = 60_000;
const clock = new FakeClock(Date.parse('2030-01-07T15:00:00Z'));
const logLines: Array<Record<string, unknown>> = [];
let t: TestServer;
let keyLookups = 0;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  t = await startTestServer(
    { sensors: { helloThrottle: { freeFailures: FREE, baseDelayMs: BASE_MS, maxDelayMs: 8_000, forgetAfterMs: WINDOW_MS } } },
    { clock, log: createLogger('info', sink) },
  );
  // Every statement reaches PostgreSQL through a pooled client (Db, src/db/db.ts): count there.
  const query = pg.Client.prototype.query;
  vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (this: pg.Client, text: unknown, ...rest: unknown[]) {
    if (typeof text === 'string' && text.includes('sensor_keys')) keyLookups++;
    return (query as (...a: unknown[]) => unknown).call(this, text, ...rest);
  } as typeof pg.Client.prototype.query);
});
afterAll(async () => {
  vi.restoreAllMocks();
  await t.close();
});

/** Says hello and returns the one frame the server answers (welcome, or an error before it closes). */
async function hello(key: string): Promise<Record<string, unknown>> {
  const peer = await RawPeer.connect(t.server.ports.sensor);
  try {
    peer.send({ type: 'hello', sensorId: 'gw-guess', key });
    return (await peer.waitFrames(1))[0]!;
  } finally {
    peer.destroy();
  }
}

const refusalLines = () => logLines.filter((l) => l.msg === 'sensor refused: unknown key');

/** Every earlier wrong key is past the throttle's window (and the log line's). */
function forgetEverything(): void {
  clock.advance(WINDOW_MS + 1);
}

describe('sensor hello with wrong keys', () => {
  it('locks the address after the free failures, before any lookup, even for the right key; the lock passes', async () => {
    forgetEverything();
    for (let i = 0; i < FREE + 1; i++) expect((await hello(`wrong-key-${i}`)).code).toBe('PERMISSION_DENIED');
    const lookups = keyLookups;
    const locked = await hello('dev-sensor-key');
    expect(locked).toMatchObject({ type: 'error', code: 'RESOURCE_EXHAUSTED', retryAfterMs: BASE_MS });
    const lockedAgain = await hello('wrong-key-again');
    expect(lockedAgain).toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
    expect(keyLookups).toBe(lookups); // refused before the database was asked
    clock.advance(BASE_MS);
    expect(await hello('dev-sensor-key')).toMatchObject({ type: 'welcome' });
  });

  it('20 hellos at once from one address: only the free failures plus one are looked up', async () => {
    forgetEverything();
    const lookups = keyLookups;
    const frames = await Promise.all(Array.from({ length: 20 }, (_, i) => hello(`burst-key-${i}`)));
    const codes: Record<string, number> = {};
    for (const f of frames) codes[String(f.code)] = (codes[String(f.code)] ?? 0) + 1;
    expect(codes).toEqual({ PERMISSION_DENIED: FREE + 1, RESOURCE_EXHAUSTED: 20 - FREE - 1 });
    expect(keyLookups - lookups).toBe(FREE + 1);
    for (const f of frames.filter((x) => x.code === 'RESOURCE_EXHAUSTED')) expect(Number(f.retryAfterMs)).toBeGreaterThan(0);
  });

  it('logs refusals once per address per window, with how many there were', async () => {
    forgetEverything();
    const before = refusalLines().length;
    for (let i = 0; i < 8; i++) await hello(`log-key-${i}`); // 4 unknown, then 4 locked
    expect(refusalLines().length - before).toBe(1);
    // The window's first line also carries what the earlier tests left unreported.
    expect(refusalLines().at(-1)).toMatchObject({ level: 'info', sensorId: 'gw-guess', remote: '127.0.0.1', refused: expect.any(Number) });
    forgetEverything();
    await hello('log-key-next-window');
    expect(refusalLines().length - before).toBe(2);
    expect(refusalLines().at(-1)).toMatchObject({ refused: 8 }); // the 7 not yet reported, and this one
  });
});
