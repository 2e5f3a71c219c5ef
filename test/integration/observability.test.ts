// The health/metrics port, server.stats and rate limits, end to end over real sockets.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { branchSeats, connectSensor, sendReadings, subscribe, waitFor as waitForFrame } from '../support/live.js';
import { z } from 'zod';
import { defineMethod } from '../../src/rpc/registry.js';
import { RpcClient } from '../../clients/rpcClient.js';
import { RawPeer, rawFrame } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { waitFor } from '../support/fuzz.js';
import type { ServerStats } from '../../src/obs/observability.js';
import { FakeClock } from '../../src/core/clock.js';
import { dropKeys, redisAvailable, redisUrl, testKeyPrefix } from '../support/redis.js';
import { CuttableProxy } from '../support/proxy.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase(4);
});
afterAll(async () => db.drop());

async function http(t: TestServer, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${t.server.ports.http}${path}`, { method });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** The value of one sample line in a Prometheus exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('health and metrics port', () => {
  let t: TestServer;
  let token: string;
  beforeAll(async () => {
    t = await startTestServer({ limits: { requestTimeoutMs: 500 } }, { db });
    t.registry.add(
      defineMethod({
        name: 'test.echoAddress',
        access: 'public',
        args: z.unknown(),
        summary: 'returns ctx.remoteAddress',
        handler: (_i, ctx) => ctx.remoteAddress,
      }),
      defineMethod({
        name: 'test.slow',
        access: 'public',
        args: z.unknown(),
        summary: 'outlives the deadline',
        handler: () => new Promise((r) => setTimeout(() => r('late'), 800)),
      }),
    );
    token = t.tokens.issue({ id: 1, studentId: 's1', name: 'One', role: 'student' }).token;
  });
  afterAll(async () => t.close());

  it('listens on its own port, printed in server.info', async () => {
    expect(t.server.ports.http).toBeGreaterThan(0);
    expect(t.server.ports.http).not.toBe(t.server.ports.rpc);
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect(await c.call<{ ports: Record<string, number> }>('server.info')).toMatchObject({ ports: { http: t.server.ports.http } });
    c.close();
  });

  it('/healthz is 200; /readyz is 200 with PostgreSQL answering; other paths 404, other verbs 405', async () => {
    expect(await http(t, '/healthz')).toMatchObject({ status: 200, body: '{"status":"ok"}' });
    const ready = await http(t, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'ready', ready: true, checks: { postgres: { ok: true } } });
    expect((await http(t, '/nope')).status).toBe(404);
    expect((await http(t, '/metrics', 'POST')).status).toBe(405);
    expect(await http(t, '/healthz', 'HEAD')).toMatchObject({ status: 200, body: '' });
  });

  it('/metrics counts requests per method and code, errors, connections, in-flight and pool use', async () => {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    for (let i = 0; i < 5; i++) await c.call('PING');
    await c.request('no.such.method');
    await c.request('server.stats'); // no token
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.write(rawFrame('not json'));
    await peer.waitFrames(1);
    await t.db.pool.query('SELECT 1');
    const m = await http(t, '/metrics');
    expect(m.status).toBe(200);
    expect(m.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(sample(m.body, 'carrel_rpc_requests_total{method="PING",code="OK"}')).toBeGreaterThanOrEqual(5);
    expect(sample(m.body, 'carrel_rpc_requests_total{method="(other)",code="UNKNOWN_METHOD"}')).toBe(1);
    expect(sample(m.body, 'carrel_rpc_requests_total{method="server.stats",code="UNAUTHENTICATED"}')).toBe(1);
    expect(sample(m.body, 'carrel_rpc_errors_total{code="BAD_FRAME"}')).toBe(1);
    expect(sample(m.body, 'carrel_rpc_request_duration_seconds_count{method="PING"}')).toBeGreaterThanOrEqual(5);
    expect(sample(m.body, 'carrel_rpc_request_duration_seconds_bucket{method="PING",le="+Inf"}')).toBeGreaterThanOrEqual(5);
    expect(sample(m.body, 'carrel_connections_open{port="rpc"}')).toBe(2);
    expect(sample(m.body, 'carrel_connections_accepted_total{port="rpc"}')).toBeGreaterThanOrEqual(2);
    expect(sample(m.body, 'carrel_connections_refused_total{port="rpc"}')).toBe(0);
    expect(sample(m.body, 'carrel_rpc_in_flight')).toBe(0);
    expect(sample(m.body, 'carrel_db_pool_connections')).toBeGreaterThanOrEqual(1);
    expect(sample(m.body, 'carrel_db_pool_waiting_requests')).toBe(0);
    expect(m.body).toContain('# TYPE carrel_rpc_request_duration_seconds histogram');
    expect(m.body).toContain('carrel_rate_limited_total');
    peer.destroy();
    c.close();
  });

  it('server.stats needs a token and returns the same figures as JSON', async () => {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect((await c.request('server.stats')).error?.code).toBe('UNAUTHENTICATED');
    for (let i = 0; i < 20; i++) await c.call('PING');
    const stats = (await c.request('server.stats', undefined, token)).result as ServerStats;
    expect(stats.methods.PING!.count).toBeGreaterThanOrEqual(20);
    expect(stats.methods.PING!.p50Ms).toBeGreaterThan(0);
    expect(stats.methods.PING!.p99Ms).toBeGreaterThanOrEqual(stats.methods.PING!.p50Ms);
    expect(stats.methods['server.stats']!.codes.UNAUTHENTICATED).toBeGreaterThanOrEqual(1);
    expect(stats.requests.errors.UNAUTHENTICATED).toBeGreaterThanOrEqual(1);
    expect(stats.connections.rpc).toMatchObject({ open: 1, refused: 0 });
    expect(stats.requests.inFlight).toBe(0);
    expect(stats.pool).toEqual({ total: expect.any(Number), idle: expect.any(Number), waiting: 0 });
    expect(stats.rateLimited).toEqual({});
    expect(stats.loginThrottle).toEqual({ throttled: 0, tracked: { accounts: 0, pairs: 0, addresses: 0, knownAccounts: 0 } });
    c.close();
  });

  it('figures other parts register appear in /metrics and in server.stats under custom', async () => {
    let depth = 3;
    t.obs.registry.gauge('carrel_test_subscriber_queue_depth', 'Queued events.', () => depth);
    const drops = t.obs.registry.counter('carrel_test_subscriber_drops_total', 'Dropped events.', ['branch']);
    drops.labels('Main Library').inc(4);
    depth = 5;
    const m = await http(t, '/metrics');
    expect(sample(m.body, 'carrel_test_subscriber_queue_depth')).toBe(5);
    expect(sample(m.body, 'carrel_test_subscriber_drops_total{branch="Main Library"}')).toBe(4);
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    const stats = (await c.request('server.stats', undefined, token)).result as ServerStats;
    expect(stats.custom).toMatchObject({
      carrel_test_subscriber_queue_depth: 5,
      carrel_test_subscriber_drops_total: [{ labels: { branch: 'Main Library' }, value: 4 }],
      // The live half registers its own figures the same way.
      carrel_pubsub_dropped_total: 0,
      carrel_bus_connected: 1,
    });
    c.close();
  });

  it('/metrics shows the live half: sensor and subscriber connections, readings, events, queues, the bus', async () => {
    const [seat] = await branchSeats(t.db.pool, 'Main Library', 1);
    const sub = await subscribe(t.server.ports.pubsub, { branch: 'Main Library' });
    const sensor = await connectSensor(t.server.ports.sensor);
    await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: Date.now() }]);
    await waitForFrame(sub, (f) => f.type === 'seat' && f.seatId === seat);
    const m = (await http(t, '/metrics')).body;
    expect(sample(m, 'carrel_connections_open{port="sensor"}')).toBe(1);
    expect(sample(m, 'carrel_connections_open{port="pubsub"}')).toBe(1);
    expect(sample(m, 'carrel_sensor_readings_total')).toBeGreaterThanOrEqual(1);
    expect(sample(m, 'carrel_pubsub_subscribers')).toBe(1);
    expect(sample(m, 'carrel_pubsub_events_total')).toBeGreaterThanOrEqual(1);
    expect(sample(m, 'carrel_pubsub_dropped_total')).toBe(0);
    expect(sample(m, 'carrel_pubsub_queued_bytes')).toBeGreaterThanOrEqual(0);
    expect(sample(m, 'carrel_bus_connected')).toBe(1);
    sensor.destroy();
    sub.destroy();
  });

  it('handlers see the peer address in ctx.remoteAddress', async () => {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect(await c.call('test.echoAddress')).toBe('127.0.0.1');
    c.close();
  });

  it('a request past its deadline is counted DEADLINE_EXCEEDED and in-flight returns to zero', async () => {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect((await c.request('test.slow')).error?.code).toBe('DEADLINE_EXCEEDED');
    await waitFor(() => t.inFlight === 0, 2000, 'the slow handler to finish');
    const m = await http(t, '/metrics');
    expect(sample(m.body, 'carrel_rpc_requests_total{method="test.slow",code="DEADLINE_EXCEEDED"}')).toBe(1);
    expect(sample(m.body, 'carrel_rpc_in_flight')).toBe(0);
    c.close();
  });
});

describe('the live figures: queue depth, readings per second, bus lag', () => {
  async function stats(t: TestServer): Promise<ServerStats> {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    try {
      const token = t.tokens.issue({ id: 1, studentId: 's1', name: 'One', role: 'student' }).token;
      return (await c.request('server.stats', undefined, token)).result as ServerStats;
    } finally {
      c.close();
    }
  }

  it('counts the events waiting in subscriber queues, in all and in the deepest one', async () => {
    const t = await startTestServer({ pubsub: { highWaterBytes: 16 * 1024, queueCapacity: 50, maxDrops: 1_000_000_000 } }, { db });
    try {
      const seats = await branchSeats(t.db.pool, 'Medical Library', 10);
      const stalled = await subscribe(t.server.ports.pubsub, { branch: 'Medical Library' });
      const fast = await subscribe(t.server.ports.pubsub, { branch: 'Medical Library' });
      await stalled.waitFrames(2);
      await fast.waitFrames(2);
      let m = (await http(t, '/metrics')).body;
      expect([sample(m, 'carrel_pubsub_queued_events'), sample(m, 'carrel_pubsub_queue_depth_max')]).toEqual([0, 0]);
      stalled.socket.pause();
      const live = t.live.model;
      let at = Date.now() - 3_600_000;
      const occupied = new Map<number, boolean>();
      // Batches well under highWaterBytes a turn, so only the socket nobody reads congests.
      for (let i = 0; i < 20_000 && t.live.hub.stats.drops === 0; i++) {
        for (let k = 0; k < 40; k++) {
          const seat = seats[k % seats.length]!;
          occupied.set(seat, !occupied.get(seat));
          live.applyReading(seat, occupied.get(seat)!, ++at, Date.now(), 'gw-churn');
        }
        await new Promise((r) => setImmediate(r));
      }
      expect(t.live.hub.stats.drops).toBeGreaterThan(0);
      // The stalled one's ring is full (50); the one that reads has none queued.
      m = (await http(t, '/metrics')).body;
      expect([sample(m, 'carrel_pubsub_queued_events'), sample(m, 'carrel_pubsub_queue_depth_max')]).toEqual([50, 50]);
      expect((await stats(t)).custom).toMatchObject({ carrel_pubsub_queued_events: 50, carrel_pubsub_queue_depth_max: 50 });
      stalled.destroy();
      fast.destroy();
    } finally {
      await t.close();
    }
  });

  it('reports sensor readings per second over the last 10 s (FakeClock)', async () => {
    const clock = new FakeClock(Date.parse('2027-05-03T10:00:00Z'));
    const t = await startTestServer({}, { db, clock });
    try {
      const seats = await branchSeats(t.db.pool, 'Engineering Library', 30);
      const sensor = await connectSensor(t.server.ports.sensor);
      await sendReadings(sensor, seats.map((seatId, i) => ({ seatId, occupied: true, at: clock.now() - 1000 + i })));
      const rate = async () => sample((await http(t, '/metrics')).body, 'carrel_sensor_readings_per_second');
      expect(await rate()).toBe(0); // the second under way is not complete
      clock.advance(1000);
      expect(await rate()).toBe(30); // 30 in the one second since start
      expect((await stats(t)).custom.carrel_sensor_readings_per_second).toBe(30);
      clock.advance(4000);
      await sendReadings(sensor, seats.slice(0, 10).map((seatId, i) => ({ seatId, occupied: false, at: clock.now() + i })));
      clock.advance(1000);
      expect(await rate()).toBe(40 / 6);
      clock.advance(60_000);
      expect(await rate()).toBe(0);
      sensor.destroy();
    } finally {
      await t.close();
    }
  });

  (redisAvailable ? it : it.skip)('measures the bus lag of each delivered seat event through Redis', async () => {
    const keyPrefix = testKeyPrefix('lag');
    const t = await startTestServer({ redis: { url: redisUrl, keyPrefix } }, { db });
    try {
      const seat = (await branchSeats(t.db.pool, 'Medical Library', 40))[39];
      const sub = await subscribe(t.server.ports.pubsub, { branch: 'Medical Library' });
      await sub.waitFrames(2);
      let m = (await http(t, '/metrics')).body;
      expect(sample(m, 'carrel_bus_delivery_lag_seconds_count')).toBe(0);
      const sensor = await connectSensor(t.server.ports.sensor);
      await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: Date.now() }]);
      await sendReadings(sensor, [{ seatId: seat!, occupied: false, at: Date.now() + 1 }]);
      await waitForFrame(sub, (f) => f.type === 'seat' && f.state === 'free');
      m = (await http(t, '/metrics')).body;
      expect(sample(m, 'carrel_bus_delivery_lag_seconds_count')).toBe(2);
      // A round trip through the Redis stream (wall clock, whole ms): far less than a second.
      const last = sample(m, 'carrel_bus_lag_seconds')!;
      expect(last).toBeGreaterThanOrEqual(0);
      expect(last).toBeLessThan(1);
      expect(sample(m, 'carrel_bus_delivery_lag_seconds_bucket{le="+Inf"}')).toBe(2);
      expect(sample(m, 'carrel_bus_delivery_lag_seconds_sum')).toBeLessThan(2);
      expect((await stats(t)).custom.carrel_bus_lag_seconds).toBeCloseTo(last, 6);
      sensor.destroy();
      sub.destroy();
    } finally {
      await t.close();
      await dropKeys(keyPrefix);
    }
  });

  (redisAvailable ? it : it.skip)('the bus lag shows a Redis that is slow to take the publish', async () => {
    const keyPrefix = testKeyPrefix('lag-slow');
    const u = new URL(redisUrl);
    const proxy = new CuttableProxy({ host: u.hostname, port: Number(u.port || 6379) });
    await proxy.open();
    const t = await startTestServer({ redis: { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix } }, { db });
    try {
      const seat = (await branchSeats(t.db.pool, 'Medical Library', 41))[40];
      const sub = await subscribe(t.server.ports.pubsub, { branch: 'Medical Library' });
      await sub.waitFrames(2);
      const sensor = await connectSensor(t.server.ports.sensor);
      // Every command now reaches Redis 50 ms late: the publish, and the next XREAD after it.
      proxy.delayMs = 50;
      await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: Date.now() }]);
      await waitForFrame(sub, (f) => f.type === 'seat' && f.seatId === seat);
      const m = (await http(t, '/metrics')).body;
      expect(sample(m, 'carrel_bus_lag_seconds')).toBeGreaterThanOrEqual(0.05);
      expect(sample(m, 'carrel_bus_lag_seconds')).toBeLessThan(2);
      expect(sample(m, 'carrel_bus_delivery_lag_seconds_bucket{le="0.025"}')).toBe(0);
      expect(sample(m, 'carrel_bus_delivery_lag_seconds_count')).toBe(1);
      sensor.destroy();
      sub.destroy();
    } finally {
      proxy.delayMs = 0;
      await t.close();
      await proxy.cut();
      await dropKeys(keyPrefix);
    }
  });
});

describe('readiness', () => {
  // Needs a Redis that answers: skipped without one, except with CI=true, where
  // test/support/redis.ts fails the run instead (as for every other Redis test).
  (redisAvailable ? it : it.skip)('with redis.url configured, /readyz PINGs Redis: 200 when it answers', async () => {
    const up = await startTestServer({ redis: { url: redisUrl } }, { db });
    try {
      const readyUp = await fetch(`http://127.0.0.1:${up.server.ports.http}/readyz`);
      expect(readyUp.status).toBe(200);
      expect(((await readyUp.json()) as { checks: Record<string, unknown> }).checks.redis).toMatchObject({ ok: true });
    } finally {
      await up.close();
    }
  });

  it('with redis.url configured and no Redis there, /readyz is still 200 but degraded, naming redis', async () => {
    const down = await startTestServer({ redis: { url: `redis://127.0.0.1:${await closedPort()}` }, http: { readyTimeoutMs: 300 } }, { db });
    const started = Date.now();
    const res = await fetch(`http://127.0.0.1:${down.server.ports.http}/readyz`);
    expect(Date.now() - started).toBeLessThan(2000);
    // docs/operations.md, "Redis and several instances": without Redis each instance keeps serving
    // its own clients, so it stays in the load balancer; a 503 here would drain every instance at
    // once when Redis goes away.
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; ready: boolean; degraded: string[]; checks: Record<string, { ok: boolean; error?: string }> };
    expect(body).toMatchObject({ status: 'degraded', ready: true, degraded: ['redis'] });
    expect(body.checks.postgres!.ok).toBe(true);
    expect(body.checks.redis!.ok).toBe(false);
    expect(JSON.stringify(body)).not.toMatch(/127\.0\.0\.1|at .*\(/);
    await down.close();
  });

  it('connections that send their headers slowly cannot keep /healthz out, and are dropped within http.headersTimeoutMs', async () => {
    const headersTimeoutMs = 600;
    const t = await startTestServer({ http: { headersTimeoutMs } }, { db });
    const port = t.server.ports.http;
    const healthz = (): Promise<number> =>
      fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(300) }).then(
        (r) => r.status,
        () => 0,
      );
    // 70 clients from 5 addresses (14 each, within an address's share) each start a request and
    // then send one header line every 100 ms, never ending the head: more than the port's 64.
    const slow = await Promise.all(
      Array.from({ length: 70 }, async (_, i) => {
        const s = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${30 + (i % 5)}` });
        s.on('error', () => undefined);
        await new Promise<void>((r) => s.once('connect', () => r()));
        s.write('GET /healthz HTTP/1.1\r\nHost: carrel\r\n');
        const trickle = setInterval(() => s.write('X-Slow: 1\r\n'), 100);
        const closed = new Promise<void>((r) =>
          s.once('close', () => {
            clearInterval(trickle);
            r();
          }),
        );
        return { s, closed };
      }),
    );
    const floodedAt = Date.now();
    // The port is full of them, yet a newcomer is taken: the oldest half-sent request makes room.
    expect(await healthz(), 'a probe during the flood').toBe(200);
    expect(t.obs.stats().connections.http!.open).toBeLessThanOrEqual(64);
    await Promise.race([Promise.all(slow.map((c) => c.closed)), new Promise((r) => setTimeout(r, 5_000))]);
    // Dropped at the first sweep past the timeout (every quarter of it), plus a little slack.
    expect(Date.now() - floodedAt).toBeLessThan(headersTimeoutMs * 1.25 + 700);
    expect(slow.every((c) => c.s.destroyed)).toBe(true);
    expect(await healthz()).toBe(200);
    await t.close();
  });

  it('/readyz turns 503 as soon as shutdown starts, while requests drain', async () => {
    const t = await startTestServer({}, { db });
    t.registry.add(defineMethod({ name: 'test.hold', access: 'public', args: z.unknown(), summary: 't', handler: () => new Promise((r) => setTimeout(() => r('done'), 300)) }));
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    const pending = c.request('test.hold');
    await waitFor(() => t.inFlight === 1, 2000, 'the request to start');
    const stopping = t.server.shutdown();
    const res = await fetch(`http://127.0.0.1:${t.server.ports.http}/readyz`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { checks: Record<string, unknown> }).checks.shutdown).toMatchObject({ ok: false });
    expect((await pending).result).toBe('done');
    await stopping;
    await expect(fetch(`http://127.0.0.1:${t.server.ports.http}/healthz`)).rejects.toThrow();
    await t.close();
  });
});

describe('rate limits over the wire', () => {
  it('a per-connection rule answers RESOURCE_EXHAUSTED with retryAfterMs; other connections and PING are unaffected', async () => {
    const t = await startTestServer(
      { rateLimit: { rules: [{ name: 'auth', per: 'connection', methods: ['test.login'], ratePerSec: 1, burst: 3 }] } },
      { db },
    );
    t.registry.add(defineMethod({ name: 'test.login', access: 'public', args: z.unknown(), summary: 't', handler: () => 'ok' }));
    const a = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    const sent = performance.now();
    const at: number[] = [];
    const replies = await Promise.all(Array.from({ length: 5 }, (_, i) => a.request('test.login').then((r) => ((at[i] = performance.now() - sent), r))));
    // The refusal asks for retryAfterMs, and the connection is not read until then: the fifth
    // request, already sent, is read and admitted once the bucket has its token again.
    expect(replies.map((r) => r.error?.code ?? 'OK')).toEqual(['OK', 'OK', 'OK', 'RESOURCE_EXHAUSTED', 'OK']);
    const retry = replies[3]!.error!.details!.retryAfterMs as number;
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(1000);
    expect(at[4]! - at[3]!).toBeGreaterThanOrEqual(retry - 50);
    for (let i = 0; i < 100; i++) expect(await a.call('PING')).toBe('PONG');
    const b = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect(await b.call('test.login')).toBe('ok');
    const m = await (await fetch(`http://127.0.0.1:${t.server.ports.http}/metrics`)).text();
    expect(sample(m, 'carrel_rate_limited_total{rule="auth"}')).toBe(1);
    a.close();
    b.close();
    await t.close();
  });

  it('a per-user rule follows the user across connections', async () => {
    const t = await startTestServer(
      { rateLimit: { rules: [{ name: 'writes', per: 'user', methods: ['test.*'], ratePerSec: 0.5, burst: 2 }] } },
      { db },
    );
    t.registry.add(defineMethod({ name: 'test.book', access: 'user', args: z.unknown(), summary: 't', handler: () => 'booked' }));
    const alice = t.tokens.issue({ id: 1, studentId: 's1', name: 'A', role: 'student' }).token;
    const bob = t.tokens.issue({ id: 2, studentId: 's2', name: 'B', role: 'student' }).token;
    const c1 = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    const c2 = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect((await c1.request('test.book', undefined, alice)).result).toBe('booked');
    expect((await c2.request('test.book', undefined, alice)).result).toBe('booked');
    const third = await c2.request('test.book', undefined, alice);
    expect(third.error).toMatchObject({ code: 'RESOURCE_EXHAUSTED', details: { limit: 'writes' } });
    expect((await c2.request('test.book', undefined, bob)).result).toBe('booked');
    c1.close();
    c2.close();
    await t.close();
  });

  it("a per-user refusal leaves every connection of the user unread until the time it gives; refused again at once, twice as long", async () => {
    const t = await startTestServer(
      { rateLimit: { rules: [{ name: 'writes', per: 'user', methods: ['test.*'], ratePerSec: 5, burst: 1 }] } },
      { db },
    );
    t.registry.add(defineMethod({ name: 'test.book', access: 'user', args: z.unknown(), summary: 't', handler: () => 'booked' }));
    const alice = t.tokens.issue({ id: 1, studentId: 's1', name: 'A', role: 'student' }).token;
    const [c1, c2, c3] = (await Promise.all([0, 1, 2].map(() => RpcClient.connect('127.0.0.1', t.server.ports.rpc)))) as [RpcClient, RpcClient, RpcClient];
    // Each connection has carried a request of hers (the server knows them as hers from then on).
    for (const c of [c2, c3]) expect((await c.request('PING', undefined, alice)).result).toBe('PONG');
    expect((await c1.request('test.book', undefined, alice)).result).toBe('booked');
    const refused = await c1.request('test.book', undefined, alice);
    expect(refused.error).toMatchObject({ code: 'RESOURCE_EXHAUSTED', details: { limit: 'writes', per: 'user' } });
    const first = refused.error!.details!.retryAfterMs as number;
    expect(first).toBeGreaterThan(100);
    expect(first).toBeLessThanOrEqual(200);
    // Another connection of the same user, asking at once: not read (and not refused) until the
    // quiet is over, then admitted with the token that came back meanwhile.
    const sent = performance.now();
    const other = await c2.request('test.book', undefined, alice);
    expect(other.result).toBe('booked');
    expect(performance.now() - sent).toBeGreaterThanOrEqual(first - 50);
    // Refused again as soon as its quiet ended: twice as long this time, on every connection.
    const again = await c3.request('test.book', undefined, alice);
    expect(again.error).toMatchObject({ code: 'RESOURCE_EXHAUSTED', details: { per: 'user', retryAfterMs: 2 * first } });
    const sent2 = performance.now();
    expect((await c1.request('test.book', undefined, alice)).result).toBe('booked');
    expect(performance.now() - sent2).toBeGreaterThanOrEqual(2 * first - 50);
    // A user whose refusals are over is told the bucket's own time again.
    await new Promise((r) => setTimeout(r, 1_200));
    expect((await c2.request('test.book', undefined, alice)).result).toBe('booked');
    expect((await c2.request('test.book', undefined, alice)).error!.details!.retryAfterMs).toBeLessThanOrEqual(200);
    for (const c of [c1, c2, c3]) c.close();
    await t.close();
  });
});

describe('connection floods', () => {
  it('a flood of twice limits.maxConnections is refused cleanly, the server carries on, and gauges return to zero', async () => {
    const limit = 40;
    const t = await startTestServer({ limits: { maxConnections: limit } }, { db });
    const peers = await Promise.all(Array.from({ length: limit * 2 }, () => RawPeer.connect(t.server.ports.rpc)));
    // A refused peer gets one frame and is closed; wait until every refusal has arrived.
    const isRefused = (p: RawPeer): boolean => p.socket.destroyed || p.frames.length > 0;
    await waitFor(() => peers.filter(isRefused).length >= limit, 5000, 'the excess to be refused');
    const refused = peers.filter(isRefused);
    await Promise.all(refused.map((p) => p.closed));
    expect(t.rpcListener.refusedCount).toBe(limit);
    expect(refused).toHaveLength(limit);
    for (const p of refused) expect(p.frames[0]).toMatchObject({ rpcId: null, error: { code: 'RESOURCE_EXHAUSTED' } });
    const admitted = peers.filter((p) => !refused.includes(p));
    await Promise.all(admitted.map(async (p, i) => {
      p.send({ rpcId: i, method: 'PING' });
      await p.waitFrames(1);
    }));
    expect(t.connectionCount).toBe(limit);
    for (const p of admitted) p.destroy();
    await waitFor(() => t.connectionCount === 0, 3000, 'connections to close');
    const stats = t.obs.stats();
    expect(stats.connections.rpc).toEqual({ open: 0, accepted: limit, refused: limit });
    expect(stats.requests.inFlight).toBe(0);
    const again = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect(await again.call('PING')).toBe('PONG');
    again.close();
    await t.close();
  });

  it('after 1,000 connect/close cycles the listener set and the gauges are back to zero', async () => {
    const t = await startTestServer({}, { db });
    const frame = rawFrame(JSON.stringify({ rpcId: 1, method: 'PING' }));
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const p = await RawPeer.connect(t.server.ports.rpc);
          // Mix polite and abrupt exits: some wait for a reply, some hang up mid-request.
          if (i % 3 === 0) {
            p.write(frame);
            await p.waitFrames(1);
          } else if (i % 3 === 1) {
            p.write(frame.subarray(0, 5));
          }
          p.destroy();
          await p.closed;
        }),
      );
    }
    await waitFor(() => t.connectionCount === 0, 5000, 'connections to close');
    const m = await (await fetch(`http://127.0.0.1:${t.server.ports.http}/metrics`)).text();
    expect(sample(m, 'carrel_connections_open{port="rpc"}')).toBe(0);
    expect(sample(m, 'carrel_connections_accepted_total{port="rpc"}')).toBe(1000);
    expect(sample(m, 'carrel_rpc_in_flight')).toBe(0);
    expect(t.rpcListener.connections.size).toBe(0);
    await t.close();
  });

  it('slowloris: a peer sending one byte at a time is closed at limits.partialFrameTimeoutMs', async () => {
    const t = await startTestServer({ limits: { partialFrameTimeoutMs: 400, idleTimeoutMs: 60_000 } }, { db });
    const peer = await RawPeer.connect(t.server.ports.rpc);
    const frame = rawFrame(JSON.stringify({ rpcId: 1, method: 'PING' }));
    let sent = 0;
    const started = Date.now();
    // "A byte a second", scaled down: one byte every 100 ms, never finishing within the limit.
    const drip = setInterval(() => {
      if (sent < frame.length - 1) peer.write(frame.subarray(sent, ++sent));
    }, 100);
    await peer.closed;
    clearInterval(drip);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(400);
    expect(took).toBeLessThan(2000);
    expect(peer.frames).toEqual([]);
    await waitFor(() => t.connectionCount === 0, 2000, 'the connection to be dropped');
    await t.close();
  });
});
