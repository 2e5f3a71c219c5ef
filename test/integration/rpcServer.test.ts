import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import jwt from 'jsonwebtoken';
import { defineMethod } from '../../src/rpc/registry.js';
import { RpcClient } from '../../clients/rpcClient.js';
import { RawPeer, rawFrame } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { waitFor } from '../support/fuzz.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { makeUsers } from '../support/core.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase(2);
});
afterAll(async () => {
  await db.drop();
});

/** Test-only methods: a delay, a gate we open by hand, a large reply, a user-only echo. */
function addTestMethods(t: TestServer) {
  const gate = { calls: 0, open: (): void => undefined, opened: Promise.resolve() };
  gate.opened = new Promise<void>((r) => (gate.open = r));
  t.registry.add(
    defineMethod({
      name: 'test.delay',
      access: 'public',
      args: z.strictObject({ ms: z.number().int().min(0).max(10_000), tag: z.string().optional() }),
      summary: 'test',
      handler: async ({ ms, tag }) => {
        await new Promise((r) => setTimeout(r, ms));
        return { tag: tag ?? null };
      },
    }),
    defineMethod({
      name: 'test.gate',
      access: 'public',
      args: z.unknown(),
      summary: 'test',
      handler: async () => {
        gate.calls++;
        await gate.opened;
        return 'opened';
      },
    }),
    defineMethod({
      name: 'test.big',
      access: 'public',
      args: z.unknown(),
      summary: 'test',
      handler: () => ({ blob: 'x'.repeat(64 * 1024) }),
    }),
    defineMethod({
      name: 'test.whoami',
      access: 'user',
      args: z.unknown(),
      summary: 'test',
      handler: (_i, ctx) => ctx.user,
    }),
    defineMethod({
      name: 'test.admin',
      access: 'admin',
      args: z.unknown(),
      summary: 'test',
      handler: () => 'ok',
    }),
    defineMethod({
      name: 'test.crash',
      access: 'public',
      args: z.unknown(),
      summary: 'test',
      handler: () => {
        throw new Error('SELECT secret FROM users -- at /srv/carrel/src/x.ts:12');
      },
    }),
  );
  return gate;
}

describe('RPC server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ limits: { requestTimeoutMs: 300 } }, { db });
    addTestMethods(t);
  });
  afterAll(async () => t.close());

  it('answers PING with PONG and describes itself in server.info', async () => {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect(await c.call('PING')).toBe('PONG');
    const info = await c.call<{ name: string; ports: { rpc: number } }>('server.info');
    expect(info.name).toBe('carrel');
    expect(info.ports.rpc).toBe(t.server.ports.rpc);
    c.close();
  });

  it('answers 200 pipelined requests sent without waiting, each matched by rpcId', async () => {
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.write(Buffer.concat(Array.from({ length: 200 }, (_, i) => rawFrame(JSON.stringify({ rpcId: i + 1, method: 'PING' })))));
    const frames = await peer.waitFrames(200);
    expect(frames.map((f) => f.rpcId).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(frames.every((f) => f.result === 'PONG' && f.error === null)).toBe(true);
    peer.destroy();
  });

  it('replies out of order: a fast request overtakes a slow one on the same connection', async () => {
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.send({ rpcId: 1, method: 'test.delay', args: [{ ms: 150, tag: 'slow' }] });
    peer.send({ rpcId: 2, method: 'test.delay', args: [{ ms: 0, tag: 'fast' }] });
    const frames = await peer.waitFrames(2);
    expect(frames.map((f) => f.rpcId)).toEqual([2, 1]);
    peer.destroy();
  });

  it('answers bad JSON with BAD_FRAME and keeps the connection', async () => {
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.write(rawFrame('{"rpcId": 1, "method": '));
    peer.write(rawFrame('[1,2]'));
    peer.write(rawFrame(Buffer.from([0xff, 0xfe, 0xfd])));
    peer.write(Buffer.alloc(4));
    peer.send({ rpcId: 9, method: 'PING' });
    const frames = await peer.waitFrames(5);
    expect(frames.slice(0, 4).map((f) => (f.error as { code: string }).code)).toEqual(['BAD_FRAME', 'BAD_FRAME', 'BAD_FRAME', 'BAD_FRAME']);
    expect(frames.slice(0, 4).every((f) => f.rpcId === null)).toBe(true);
    expect(frames[4]).toEqual({ rpcId: 9, result: 'PONG', error: null });
    peer.destroy();
  });

  it('sends one error frame and closes on an oversized length', async () => {
    const peer = await RawPeer.connect(t.server.ports.rpc);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(t.config.limits.maxFrameBytes + 1);
    peer.write(header);
    await peer.closed;
    expect(peer.frames).toHaveLength(1);
    expect(peer.frames[0]).toMatchObject({ rpcId: null, error: { code: 'BAD_FRAME' } });
  });

  it.each([
    [{ method: 'PING' }, 'INVALID_REQUEST'],
    [{ rpcId: 1.5, method: 'PING' }, 'INVALID_REQUEST'],
    [{ rpcId: 1, method: 42 }, 'INVALID_REQUEST'],
    [{ rpcId: 1, method: 'PING', args: 'nope' }, 'INVALID_REQUEST'],
    [{ rpcId: 1, method: 'no.such.method' }, 'UNKNOWN_METHOD'],
    [{ rpcId: 1, method: 'test.delay', args: [{ ms: 'soon' }] }, 'INVALID_ARGUMENT'],
    [{ rpcId: 1, method: 'test.delay', args: [{ ms: 1, extra: true }] }, 'INVALID_ARGUMENT'],
    [{ rpcId: 1, method: 'test.whoami' }, 'UNAUTHENTICATED'],
    [{ rpcId: 1, method: 'test.whoami', token: 'not-a-jwt' }, 'UNAUTHENTICATED'],
    [{ rpcId: 1, method: 'server.info', token: 12 }, 'INVALID_REQUEST'],
  ])('%j is answered with %s', async (request, code) => {
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.send(request);
    const [reply] = await peer.waitFrames(1);
    expect((reply!.error as { code: string }).code).toBe(code);
    expect(reply!.result).toBeNull();
    peer.destroy();
  });

  it('accepts a valid token per request or adopted by the connection, and refuses forged ones', async () => {
    // A real account: a token whose account does not exist is UNAUTHENTICATED (docs/rules.md).
    const [student] = await makeUsers(t, 1, 'rpc-student');
    const user = { id: student!.id, studentId: student!.studentId, name: 'Seven', role: 'student' as const };
    const { token } = t.tokens.issue(user);
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect(await c.request('test.whoami', undefined, token)).toMatchObject({ result: { id: student!.id, role: 'student' } });
    const secret = t.config.auth.jwtSecret;
    const none = jwt.sign({ sub: '7', sid: 's7', role: 'admin' }, '', { algorithm: 'none' });
    const hs512 = jwt.sign({ sub: '7', sid: 's7', role: 'admin' }, secret, { algorithm: 'HS512' });
    const expired = jwt.sign({ sub: '7', sid: 's7', role: 'student', exp: Math.floor(Date.now() / 1000) - 10 }, secret, { algorithm: 'HS256' });
    const otherKey = jwt.sign({ sub: '7', sid: 's7', role: 'admin' }, 'some-other-secret-of-length', { algorithm: 'HS256' });
    for (const bad of [none, hs512, expired, otherKey]) {
      expect((await c.request('test.whoami', undefined, bad)).error?.code).toBe('UNAUTHENTICATED');
    }
    expect((await c.request('test.admin', undefined, token)).error?.code).toBe('PERMISSION_DENIED');
    // An admin claim is not enough: the user is not an admin in the users table.
    expect((await c.request('test.admin', undefined, t.tokens.issue({ ...user, role: 'admin' }).token)).error?.code).toBe('PERMISSION_DENIED');
    const [admin] = await makeUsers(t, 1, 'rpc-admin', 'admin');
    expect((await c.request('test.admin', undefined, admin!.token)).result).toBe('ok');
    c.close();
  });

  it('never leaks an exception message: INTERNAL carries only a correlation id', async () => {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    const reply = await c.request('test.crash');
    expect(reply.error?.code).toBe('INTERNAL');
    expect(JSON.stringify(reply)).not.toMatch(/SELECT|secret|\/srv|\.ts/);
    expect(reply.error?.details?.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await c.call('PING')).toBe('PONG');
    c.close();
  });

  it('answers DEADLINE_EXCEEDED when a handler outlives limits.requestTimeoutMs', async () => {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    const reply = await c.request('test.delay', [{ ms: 2000 }]);
    expect(reply.error?.code).toBe('DEADLINE_EXCEEDED');
    expect(await c.call('PING')).toBe('PONG');
    c.close();
  });
});

describe('RPC limits', () => {
  it('refuses connections past limits.maxConnections with RESOURCE_EXHAUSTED, and admits again once one leaves', async () => {
    const t = await startTestServer({ limits: { maxConnections: 3 } }, { db });
    const peers = await Promise.all([1, 2, 3].map(() => RawPeer.connect(t.server.ports.rpc)));
    await Promise.all(peers.map(async (p) => {
      p.send({ rpcId: 1, method: 'PING' });
      await p.waitFrames(1);
    }));
    const extra = await RawPeer.connect(t.server.ports.rpc);
    await extra.closed;
    expect(extra.frames[0]).toMatchObject({ rpcId: null, error: { code: 'RESOURCE_EXHAUSTED' } });
    peers[0]!.destroy();
    await peers[0]!.closed;
    await new Promise((r) => setTimeout(r, 50));
    const again = await RawPeer.connect(t.server.ports.rpc);
    again.send({ rpcId: 1, method: 'PING' });
    expect((await again.waitFrames(1))[0]).toMatchObject({ result: 'PONG' });
    for (const p of [...peers, again]) p.destroy();
    await t.close();
  });

  it('stops reading past limits.maxInFlightPerConnection and drops nothing', async () => {
    const t = await startTestServer({ limits: { maxInFlightPerConnection: 4 } }, { db });
    const gate = addTestMethods(t);
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.write(Buffer.concat(Array.from({ length: 10 }, (_, i) => rawFrame(JSON.stringify({ rpcId: i, method: 'test.gate' })))));
    await new Promise((r) => setTimeout(r, 150));
    expect(gate.calls).toBe(4);
    expect(t.inFlight).toBe(4);
    gate.open();
    const frames = await peer.waitFrames(10);
    expect(frames.every((f) => f.result === 'opened')).toBe(true);
    expect(gate.calls).toBe(10);
    peer.destroy();
    await t.close();
  });

  it('closes a connection idle for limits.idleTimeoutMs', async () => {
    const t = await startTestServer({ limits: { idleTimeoutMs: 150 } }, { db });
    const peer = await RawPeer.connect(t.server.ports.rpc);
    const started = Date.now();
    await peer.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    await t.close();
  });

  it('closes a peer that sends half a frame and stalls, at limits.partialFrameTimeoutMs', async () => {
    const t = await startTestServer({ limits: { partialFrameTimeoutMs: 150, idleTimeoutMs: 60_000 } }, { db });
    const peer = await RawPeer.connect(t.server.ports.rpc);
    const frame = rawFrame(JSON.stringify({ rpcId: 1, method: 'PING' }));
    peer.write(frame.subarray(0, 6));
    const started = Date.now();
    // Keep trickling bytes of the same frame (slowloris): activity does not reset the deadline.
    const trickle = setInterval(() => peer.write(Buffer.from(' ')), 40);
    await peer.closed;
    clearInterval(trickle);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(Date.now() - started).toBeLessThan(2000);
    await t.close();
  });

  it('a client that never reads its replies cannot make the server buffer without bound', async () => {
    const highWater = 256 * 1024;
    const t = await startTestServer({ limits: { writeHighWaterBytes: highWater, maxInFlightPerConnection: 8 } }, { db });
    addTestMethods(t);
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.socket.pause(); // never read
    const request = rawFrame(JSON.stringify({ rpcId: 1, method: 'test.big' }));
    // 2,000 requests asking for 64 KiB each: 128 MiB of replies if the server buffered them.
    const flood = Buffer.concat(Array.from({ length: 2000 }, () => request));
    peer.socket.write(flood);
    await new Promise((r) => setTimeout(r, 500));
    const [conn] = [...t.rpcListener.connections];
    expect(conn!.readingPaused).toBe(true);
    // Bounded by the high-water mark plus one reply (the one that crossed it).
    expect(conn!.bufferedBytes).toBeLessThanOrEqual(highWater + 70 * 1024);
    // The server keeps serving others meanwhile.
    const other = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect(await other.call('PING')).toBe('PONG');
    other.close();
    peer.destroy();
    await t.close();
  });

  it('a client that floods bad frames and never reads the BAD_FRAME replies is paused too, and is answered in full once it reads', async () => {
    const highWater = 64 * 1024;
    const t = await startTestServer({ limits: { writeHighWaterBytes: highWater } }, { db });
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.socket.pause(); // never read (for now)
    // Zero-length frames (4 bytes each) and bad JSON, each earning a ~100-byte BAD_FRAME reply:
    // about 6.5 MB of replies, more than the kernel's socket buffers hold on loopback.
    const zero = Buffer.alloc(4 * 60_000);
    const badJson = Buffer.concat(Array.from({ length: 10_000 }, () => rawFrame('{')));
    peer.socket.write(Buffer.concat([zero, badJson]));
    const [conn] = [...t.rpcListener.connections];
    await waitFor(() => conn!.readingPaused || conn!.bufferedBytes > 16 * highWater, 10_000, 'the server to stop reading');
    expect(conn!.readingPaused).toBe(true);
    // Bounded by the high-water mark plus the replies of one pass over a read chunk.
    expect(conn!.bufferedBytes).toBeLessThanOrEqual(highWater + 16 * 1024);
    const other = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect(await other.call('PING')).toBe('PONG');
    other.close();

    // Nothing was dropped: once the peer reads, every bad frame is answered, then a PING.
    peer.send({ rpcId: 1, method: 'PING' });
    peer.socket.resume();
    const frames = await peer.waitFrames(70_001, 30_000);
    expect(frames.slice(0, 70_000).every((f) => f.rpcId === null && (f.error as { code: string }).code === 'BAD_FRAME')).toBe(true);
    expect(frames[70_000]).toEqual({ rpcId: 1, result: 'PONG', error: null });
    peer.destroy();
    await t.close();
  });

  it('graceful shutdown lets an in-flight request finish before closing', async () => {
    const t = await startTestServer({}, { db });
    addTestMethods(t);
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    const pending = c.request('test.delay', [{ ms: 200, tag: 'last' }]);
    await new Promise((r) => setTimeout(r, 20));
    const stopped = t.server.shutdown();
    expect(await pending).toMatchObject({ result: { tag: 'last' } });
    await stopped;
    await expect(RpcClient.connect('127.0.0.1', t.server.ports.rpc, { timeoutMs: 500 })).rejects.toThrow();
    await t.close();
  });
});
