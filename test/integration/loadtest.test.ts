// The load generator's scenarios set themselves up and measure against a real server: users
// registered with working tokens, bookings that all land on distinct seats and slots, a storm
// with exactly one winner per round, fan-out without seq gaps, and the echo baseline answering
// like carrel does. Runs are a fraction of a second: these check the tool, not the speed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { BenchContext, book, mixed, ping, search, storm } from '../../loadtest/scenarios.js';
import { fanout, sensors, connections, stalledPing } from '../../loadtest/live.js';
import { addBenchBranch, BENCH_BRANCH, BENCH_CONFIG_OVERRIDES, externalTarget, spawnEcho, type Target } from '../../loadtest/target.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase } from '../support/db.js';

const SHORT = { durationMs: 400, warmupMs: 100 };

describe('load generator scenarios', () => {
  let t: TestServer;
  let ctx: BenchContext;

  beforeAll(async () => {
    const db = await freshDatabase();
    // Before the server starts, so its live model knows the bench seats too.
    await addBenchBranch(db.pool, 300);
    t = await startTestServer({ rules: BENCH_CONFIG_OVERRIDES.rules, rateLimit: BENCH_CONFIG_OVERRIDES.rateLimit, lifecycle: { enabled: false } }, { db });
    ctx = new BenchContext(externalTarget('127.0.0.1', t.server.ports, process.pid));
  });
  afterAll(async () => {
    await t?.close();
    await t?.db.drop();
  });

  it('registers users whose tokens the server accepts, once per invocation', async () => {
    const users = await ctx.usersFor(3);
    expect(users).toHaveLength(3);
    expect(await ctx.usersFor(2)).toEqual(users.slice(0, 2));
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    try {
      const me = await c.request('auth.me', undefined, users[2]!.token);
      expect((me.result as { user: { studentId: string } }).user.studentId).toBe(users[2]!.studentId);
    } finally {
      c.close();
    }
  });

  it('ping: every connection answered, no errors, the histogram holds every reply', async () => {
    const r = await ping(ctx, { connections: 4, depth: 8, ...SHORT });
    expect(r.errors).toEqual({});
    expect(r.neverAnswered).toBe(0);
    expect(r.throughput).toBeGreaterThan(0);
    expect(r.latency.count).toBeGreaterThanOrEqual(Math.round(r.throughput * r.windowS * 0.9));
    expect(r.serverRssMb).toBeGreaterThan(0);
  });

  it('ping open loop: paced at the asked rate', async () => {
    const r = await ping(ctx, { connections: 2, depth: 16, durationMs: 1000, warmupMs: 100, rate: 500 });
    expect(r.errors).toEqual({});
    expect(r.throughput).toBeGreaterThan(400);
    expect(r.throughput).toBeLessThan(600);
  });

  it('search: checks freshness after a booking, then lists the branch without errors', async () => {
    const r = await search(ctx, { connections: 2, depth: 4, ...SHORT }, { branch: 'Engineering Library', windows: 'random' });
    expect(r.errors).toEqual({});
    expect((r.extra.freshness as { fresh: boolean }).fresh).toBe(true);
  });

  it('book: every booking lands, on a distinct seat and slot, and the database has them all', async () => {
    const r = await book(ctx, { connections: 4, depth: 2, ...SHORT }, { users: 10 });
    expect(r.errors).toEqual({});
    const attempted = r.extra.bookingsAttempted as number;
    expect(attempted).toBeGreaterThan(0);
    const rows = await t.db.pool.query<{ n: number; pairs: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT (seat_id, lower(during)))::int AS pairs FROM reservations r
       JOIN seats s ON s.id = r.seat_id JOIN branches b ON b.id = s.branch_id WHERE b.name = $1 AND r.status = 'CONFIRMED'`,
      [BENCH_BRANCH],
    );
    expect(rows.rows[0]!.n).toBe(attempted);
    expect(rows.rows[0]!.pairs).toBe(attempted);
  });

  it('mixed: every kind of request runs, and cancels only what it booked', async () => {
    const r = await mixed(ctx, { connections: 3, depth: 2, durationMs: 800, warmupMs: 100 }, { users: 6 });
    expect(r.errors).toEqual({});
    const kinds = Object.keys(r.extra.byKind as object).sort();
    expect(kinds).toEqual(['reservations.cancel', 'reservations.create', 'reservations.mine', 'seats.availability', 'seats.list']);
  });

  it('storm: exactly one winner per round, every loser told CONFLICT', async () => {
    const r = await storm(ctx, { users: 8, rounds: 3, connections: 4 });
    expect({ roundsWithOneWinner: r.extra.roundsWithOneWinner, winners: r.extra.winners, errors: r.errors }).toEqual({ roundsWithOneWinner: 3, winners: 3, errors: { CONFLICT: 21 } });
  });

  it('sensors: every frame acknowledged, every reading applied', async () => {
    const r = await sensors(ctx, { branch: BENCH_BRANCH, gateways: 2, rate: 2000, batch: 10, ...SHORT });
    expect(r.errors).toEqual({});
    expect(r.unanswered).toBe(0);
    expect(r.extra.stale).toBe(0);
    expect(r.extra.applied as number).toBeGreaterThan(0);
  });

  it('fanout: fast subscribers see every reading in seq order while stalled ones sit there', async () => {
    const r = await fanout(ctx, { branch: 'Main Library', subscribers: 6, stalled: 2, rate: 200, ...SHORT });
    expect(r.errors).toEqual({});
    // The server's own arrival → write histogram saw at least the four fast ones' deliveries.
    const server = r.extra.serverDelivery as { count: number; p99Ms: number };
    expect(server.count).toBeGreaterThanOrEqual(r.latency.count);
    expect(server.p99Ms).toBeGreaterThan(0);
    expect(r.extra.unexpectedEvents).toBe(0);
    // Four fast subscribers, each delivery of each reading sent in the window counted once.
    expect(r.latency.count % 4).toBe(0);
    expect(r.latency.count).toBeGreaterThan(0);
  });

  it('fanout over /ws/live: the same measure with subscribers on WebSockets, every reading seen in order', async () => {
    const accepted = t.live.pubsubListener.acceptedCount;
    const r = await fanout(ctx, { branch: 'Main Library', subscribers: 20, stalled: 2, rate: 200, transport: 'ws', ...SHORT });
    // Every subscriber came through the HTTP port's /ws/live into the subscriber port's listener.
    expect(t.live.pubsubListener.acceptedCount - accepted).toBe(20);
    expect(r.label).toMatch(/^fanout over \/ws\/live: /);
    expect(r.extra.transport).toBe('ws');
    expect(r.errors).toEqual({});
    expect(r.extra.unexpectedEvents).toBe(0);
    // Eighteen subscribers that read, each delivery counted once; opened past the HTTP port's 16 per address.
    expect(r.latency.count % 18).toBe(0);
    expect(r.latency.count).toBeGreaterThan(0);
  });

  it('fanout mixed: half the subscribers on each transport in one run, latency kept apart', async () => {
    const r = await fanout(ctx, { branch: 'Main Library', subscribers: 8, stalled: 0, rate: 200, transport: 'mixed', ...SHORT });
    expect(r.errors).toEqual({});
    const by = r.extra.byTransport as Record<'tcp' | 'ws', { count: number; p99Ms: number }>;
    // Four on each, every reading in the window delivered to all eight.
    expect(by.tcp.count).toBe(by.ws.count);
    expect(by.tcp.count + by.ws.count).toBe(r.latency.count);
    expect(by.ws.count % 4).toBe(0);
    expect(by.ws.p99Ms).toBeGreaterThan(0);
  });

  it('stalled: measures PING only once the stalled subscribers\' sockets are full and queued on the server', async () => {
    const r = await stalledPing(ctx, { branch: 'Main Library', stalled: 3, rate: 100, ping: { connections: 2, depth: 1, ...SHORT }, repeats: 1 });
    expect(r.errors).toEqual({});
    expect((r.extra.queuedEventsAtStart as number[])[0]).toBeGreaterThanOrEqual(3);
    for (const k of ['p99WithoutMs', 'p99WithMs', 'p99WithFastMs']) expect(r.extra[k] as number).toBeGreaterThan(0);
    expect(r.extra.stalledCutOff).toBe(0);
  }, 60_000);

  it('connections: opens RPC connections and subscribers and reads the memory with them open', async () => {
    const r = await connections(ctx, { rpc: 20, subscribers: 10, branch: 'Main Library', holdMs: 50 });
    expect(r.throughput).toBe(20);
    expect(r.neverAnswered).toBe(0);
    expect(r.extra.subscribersOpen).toBe(10);
  });
});

describe('echo baseline', () => {
  let echo: Target | undefined;
  afterAll(async () => echo?.stop());

  it('with a canned result, answers seats.list with replies of the same bytes', async () => {
    const canned = JSON.stringify([{ id: 1, label: 'Q-01 ☕' }, { id: 2, label: 'Q-02' }]);
    const e = await spawnEcho(canned);
    try {
      const c = await RpcClient.connect('127.0.0.1', e.ports.rpc);
      try {
        expect(await c.call('seats.list', { branch: 'x' })).toEqual(JSON.parse(canned));
        expect(await c.call('PING')).toBe('PONG');
      } finally {
        c.close();
      }
      const r = await search(new BenchContext(e), { connections: 2, depth: 4, ...SHORT }, { branch: 'x', windows: 'now' });
      expect(r.errors).toEqual({});
      expect(r.label).toMatch(/^echo baseline \(same-size reply\)/);
      expect(r.extra.freshness).toBeNull();
    } finally {
      await e.stop();
    }
  });

  it('answers PING the way carrel does, so one client measures both', async () => {
    echo = await spawnEcho();
    const r = await ping(new BenchContext(echo), { connections: 2, depth: 4, ...SHORT });
    expect(r.errors).toEqual({});
    expect(r.label).toMatch(/^echo baseline: PING/);
    expect(r.throughput).toBeGreaterThan(0);
  });

  it('is also the bare fan-out: the same scenario sees every reading as an event, in seq order', async () => {
    echo ??= await spawnEcho();
    const r = await fanout(new BenchContext(echo), { branch: 'Main Library', subscribers: 5, stalled: 1, rate: 200, ...SHORT });
    expect(r.errors).toEqual({});
    expect(r.label).toMatch(/^bare fan-out baseline: fanout/);
    expect(r.extra.unexpectedEvents).toBe(0);
    expect(r.latency.count % 4).toBe(0);
    expect(r.latency.count).toBeGreaterThan(0);
    expect(r.extra.serverDelivery).toBeNull();
  });
});
