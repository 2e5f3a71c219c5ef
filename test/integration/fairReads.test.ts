// Uncached public reads cannot take the database from everyone else (docs/fairness.md): 32
// anonymous connections each keeping 100 distinct-window seats.list in flight, and 8 more
// pipelining branches.list, beside a logged-in client, /readyz probes and bookings.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { FrameDecoder, encodeFrame } from '../../src/codec/index.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { seatsOf } from '../support/fixtures.js';

let t: TestServer;
let client: RpcClient;
let seatIds: number[];

beforeAll(async () => {
  // The shipped config (rate limits, admission, pool), as `npm start` runs it.
  t = await startTestServer();
  client = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
  await client.call('auth.register', { studentId: 'fair-reader', name: 'Fair Reader', password: 'correct horse' });
  await client.call('auth.login', { studentId: 'fair-reader', password: 'correct horse' });
  seatIds = (await seatsOf(t.db.pool, 'Main Library')).map((s) => s.id);
});

afterAll(async () => {
  client?.close();
  await t?.close();
});

/** A flooder: keeps `depth` requests in flight on one connection, a new one for every answer. */
function flood(port: number, depth: number, next: (i: number) => object): { codes: Map<string, number>; stop: () => void } {
  const codes = new Map<string, number>();
  const socket = net.connect({ port, host: '127.0.0.1' });
  const decoder = new FrameDecoder({ maxFrameBytes: 64 << 20, maxDepth: 64 });
  let i = 0;
  let stopped = false;
  const send = () => {
    if (!stopped) socket.write(encodeFrame({ rpcId: i, ...next(i++) }));
  };
  socket.on('connect', () => {
    for (let k = 0; k < depth; k++) send();
  });
  socket.on('data', (chunk: Buffer) => {
    decoder.push(chunk);
    for (let d = decoder.next(); d; d = decoder.next()) {
      if (d.kind !== 'message') continue;
      const code = (d.value.error as { code?: string } | null)?.code ?? 'OK';
      codes.set(code, (codes.get(code) ?? 0) + 1);
      send(); // ignores retryAfterMs, as a flooder does
    }
  });
  socket.on('error', () => undefined);
  return {
    codes,
    stop: () => {
      stopped = true;
      socket.destroy();
    },
  };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function readyz(): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${t.server.ports.http}/readyz`);
  await res.arrayBuffer();
  return res.status;
}

describe('fair under a flood of uncached public reads', () => {
  it('a logged-in client, /readyz and bookings carry on while 40 anonymous connections pipeline uncached reads', async () => {
    const mine = () => client.call('reservations.mine');
    for (let i = 0; i < 20; i++) await mine(); // warm
    const idle: number[] = [];
    for (let i = 0; i < 60; i++) idle.push(await timed(mine));

    const base = Date.parse('2031-03-03T00:00:00Z');
    const flooders = [
      ...Array.from({ length: 32 }, (_, c) =>
        flood(t.server.ports.rpc, 100, (i) => {
          // a different window every time: never a cache hit
          const start = base + ((c * 100_000 + i) % 40_000) * 15 * 60_000;
          return { method: 'seats.list', args: [{ start: new Date(start).toISOString(), end: new Date(start + 3_600_000).toISOString() }] };
        }),
      ),
      ...Array.from({ length: 8 }, () => flood(t.server.ports.rpc, 100, () => ({ method: 'branches.list' }))),
    ];
    const probes: number[] = [];
    const probing = (async () => {
      const until = Date.now() + 3_000;
      while (Date.now() < until) {
        probes.push(await readyz());
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 300)); // the flood is on
      const loaded: number[] = [];
      const until = Date.now() + 2_500;
      let bookings = 0;
      while (Date.now() < until) {
        loaded.push(await timed(mine));
        if (loaded.length % 20 === 0) {
          // a booking, then its cancellation, in the middle of it all
          const seat = seatIds[bookings % seatIds.length]!;
          const start = new Date(Date.now() + 2 * 24 * 3600_000);
          start.setUTCHours(16, 0, 0, 0); // late morning in New York, where Main Library is
          const booked = await client.call<{ id: number }>('reservations.create', { seatId: seat, start: start.toISOString(), end: new Date(start.getTime() + 3_600_000).toISOString() });
          await client.call('reservations.cancel', { id: booked.id });
          bookings++;
        }
      }
      await probing;
      const idleP50 = quantile(idle, 0.5);
      const p50 = quantile(loaded, 0.5);
      const p99 = quantile(loaded, 0.99);
      const flooded = new Map<string, number>();
      for (const f of flooders) for (const [code, n] of f.codes) flooded.set(code, (flooded.get(code) ?? 0) + n);
      console.log(`reservations.mine idle p50 ${idleP50.toFixed(2)} ms; under the flood p50 ${p50.toFixed(2)} ms p99 ${p99.toFixed(2)} ms over ${loaded.length} calls; /readyz ${probes.join(',')}; flooders got ${JSON.stringify(Object.fromEntries(flooded))}`);

      expect(bookings).toBeGreaterThan(0);
      expect(probes.length).toBeGreaterThan(5);
      expect(probes.every((s) => s === 200)).toBe(true);
      // Before: p50 ~600 ms with 4 such connections and 4-5 s with 32. The targets (3× idle,
      // p99 under 100 ms) are measured by `carrel bench abuse` on a quiet machine (BENCHMARKS.md);
      // here, beside other test files on two cores, the bounds only separate fair from unfair.
      expect(p50).toBeLessThan(Math.max(3 * idleP50, 100));
      expect(p99).toBeLessThan(1000);
      // The flooders were refused cheaply, not served at the others' expense.
      expect(flooded.get('RESOURCE_EXHAUSTED') ?? 0).toBeGreaterThan(0);
      expect(flooded.get('DEADLINE_EXCEEDED') ?? 0).toBe(0);
      // And the junk windows did not flush the listing cache.
      expect(t.seatListing.stats.evictions).toBe(0);
    } finally {
      for (const f of flooders) f.stop();
    }
  }, 30_000);

  it('with the rate limits off, the database gate alone keeps one client from holding the pool', async () => {
    const open = await startTestServer({ rateLimit: { enabled: false } }, { db: t.db });
    const c2 = await RpcClient.connect('127.0.0.1', open.server.ports.rpc);
    try {
      await c2.call('auth.login', { studentId: 'fair-reader', password: 'correct horse' });
      const base = Date.parse('2031-05-05T00:00:00Z');
      const flooders = Array.from({ length: 8 }, (_, c) =>
        flood(open.server.ports.rpc, 100, (i) => {
          const start = base + ((c * 100_000 + i) % 40_000) * 15 * 60_000;
          return { method: 'seats.list', args: [{ start: new Date(start).toISOString(), end: new Date(start + 3_600_000).toISOString() }] };
        }),
      );
      try {
        await new Promise((r) => setTimeout(r, 300));
        let peakInUse = 0;
        const sampler = setInterval(() => {
          peakInUse = Math.max(peakInUse, open.dbAdmission.inUse);
        }, 5);
        const loaded: number[] = [];
        for (let i = 0; i < 100; i++) loaded.push(await timed(() => c2.call('reservations.mine')));
        clearInterval(sampler);
        const flooded = new Map<string, number>();
        for (const f of flooders) for (const [code, n] of f.codes) flooded.set(code, (flooded.get(code) ?? 0) + n);
        console.log(`gate only: reservations.mine p50 ${quantile(loaded, 0.5).toFixed(2)} ms p90 ${quantile(loaded, 0.9).toFixed(2)} ms p99 ${quantile(loaded, 0.99).toFixed(2)} ms; peak slots in use ${peakInUse}; flooders got ${JSON.stringify(Object.fromEntries(flooded))}`);
        // The anonymous address holds at most admission.dbPerClient (2) connections; with the
        // logged-in client, never more than 3 at once.
        expect(peakInUse).toBeLessThanOrEqual(3);
        expect(quantile(loaded, 0.99)).toBeLessThan(1000);
        // Past its queue (16), the address is refused at once instead of waiting out deadlines.
        expect(flooded.get('RESOURCE_EXHAUSTED') ?? 0).toBeGreaterThan(0);
        expect(flooded.get('DEADLINE_EXCEEDED') ?? 0).toBe(0);
      } finally {
        for (const f of flooders) f.stop();
      }
    } finally {
      c2.close();
      await open.server.shutdown();
    }
  }, 30_000);
});
