// /ws/rpc and /ws/live on the HTTP port (docs/protocol.md, "WebSocket transports"; docs/http.md,
// "WebSockets"): the RPC and subscriber protocols over WebSocket messages, served by the same
// listeners and sessions as ports 9000 and 9002, and every abuse those ports withstand.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawPeer } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, sendReadings, userId } from '../support/live.js';
import { WsPeer, clientFrame, rawUpgrade } from '../support/ws.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase(4);
});
afterAll(async () => {
  await db.drop();
});

const until = async (cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** Publishes n seat changes straight into the live model: each call flips a seat. */
function churn(t: TestServer, seats: number[], n: number, state: { at: number; occupied?: Map<number, boolean> }): void {
  const occupied = (state.occupied ??= new Map());
  for (let i = 0; i < n; i++) {
    state.at += 1;
    const seat = seats[i % seats.length]!;
    const next = !(occupied.get(seat) ?? false);
    occupied.set(seat, next);
    t.live.model.applyReading(seat, next, state.at, Date.now(), 'gw-churn');
  }
}

describe('/ws/rpc', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({}, { db });
  });
  afterAll(async () => {
    await t.close();
  });

  it('carries one request or reply per message, with the RPC port\'s dispatch, codes and login', async () => {
    const c = await WsPeer.connect(t.server.ports.http, '/ws/rpc');
    expect(await c.call(1, 'PING')).toEqual({ rpcId: 1, result: 'PONG', error: null });
    // A cached listing goes out spliced in parts on TCP; here it is still one message.
    const listed = await c.call(3, 'seats.list', [{ branch: 'Main Library' }]);
    expect(listed.error).toBeNull();
    expect((await c.call(4, 'seats.list', [{ branch: 'Main Library' }])).result).toEqual(listed.result);
    expect((await c.call(2, 'no.such.method')).error).toMatchObject({ code: 'UNKNOWN_METHOD' });
    // Pipelined: replies matched by rpcId.
    for (let i = 10; i < 40; i++) c.send({ rpcId: i, method: 'PING' });
    await c.waitFrames(4 + 30);
    expect(new Set(c.frames.slice(4).map((f) => f.rpcId))).toEqual(new Set(Array.from({ length: 30 }, (_, i) => i + 10)));
    // The connection adopts a token as on TCP.
    const login = await c.call(50, 'auth.login', [{ studentId: 's1001', password: 'password123' }]);
    expect(login.error).toBeNull();
    expect((await c.call(51, 'auth.me')).result).toMatchObject({ user: { studentId: 's1001' } });
    // It is one of the RPC port's connections: counted, and closed with it.
    expect(t.rpcListener.connections.size).toBe(1);
    c.destroy();
    await until(() => t.rpcListener.connections.size === 0, 'the connection to go');
  });

  it('answers bad JSON, a non-object and too-deep JSON with BAD_FRAME and lives on, like the TCP port', async () => {
    const c = await WsPeer.connect(t.server.ports.http, '/ws/rpc');
    c.ws.send('{"rpcId":1,');
    c.ws.send('[1,2,3]');
    c.ws.send(`${'['.repeat(100)}${']'.repeat(100)}`);
    await c.waitFrames(3);
    for (const f of c.frames) expect(f).toMatchObject({ rpcId: null, result: null, error: { code: 'BAD_FRAME' } });
    expect(c.frames.map((f) => (f.error as { message: string }).message)).toEqual([
      'frame is not valid JSON',
      'frame must hold a JSON object',
      'JSON nests deeper than 32 levels',
    ]);
    expect((await c.call(2, 'PING')).result).toBe('PONG');
    c.destroy();
  });

  it('closes a binary message with 1003 and a message over limits.maxFrameBytes with 1009', async () => {
    const bin = await WsPeer.connect(t.server.ports.http, '/ws/rpc');
    bin.ws.send(Buffer.from('{"rpcId":1,"method":"PING"}'), { binary: true });
    expect(await bin.closed).toMatchObject({ code: 1003, reason: expect.stringContaining('text') });
    expect(bin.frames).toEqual([]);

    const big = await WsPeer.connect(t.server.ports.http, '/ws/rpc');
    big.send({ rpcId: 1, method: 'PING', pad: 'x'.repeat(t.config.limits.maxFrameBytes) });
    expect((await big.closed).code).toBe(1009);
    expect(big.frames).toEqual([]);
    await until(() => t.rpcListener.connections.size === 0, 'both connections to go');
  });

  it('leaves a request left unfinished no longer than limits.partialFrameTimeoutMs, counting it in the port\'s budget; closes one in too many pieces 1008', async () => {
    const t2 = await startTestServer({ limits: { partialFrameTimeoutMs: 300 } }, { db });
    try {
      const socket = await rawUpgrade(t2.server.ports.http, '/ws/rpc');
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.on('error', () => undefined);
      // A text frame that says 20,000 bytes and sends 5,000.
      socket.write(clientFrame(1, Buffer.alloc(5_000, 0x20), { declared: 20_000 }));
      const budget = t2.rpcListener.partialFrames;
      await until(() => budget.total >= 5_000, 'the unfinished message to be counted');
      const started = Date.now();
      await closed;
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(budget.total).toBe(0);

      // A message in more pieces than any client needs (here 1,100 one-byte fragments): 1008.
      const pieces = await rawUpgrade(t2.server.ports.http, '/ws/rpc');
      pieces.on('error', () => undefined);
      let answer = Buffer.alloc(0);
      pieces.on('data', (c: Buffer) => (answer = Buffer.concat([answer, c])));
      const piecesClosed = new Promise<void>((r) => pieces.once('close', () => r()));
      pieces.write(clientFrame(1, Buffer.from(' '), { fin: false }));
      for (let i = 0; i < 1_100 && !pieces.destroyed; i++) pieces.write(clientFrame(0, Buffer.from(' '), { fin: false }));
      await piecesClosed;
      // The server's close frame: opcode 8, then the code.
      expect(answer[0]).toBe(0x88);
      expect(answer.readUInt16BE(2)).toBe(1008);
    } finally {
      await t2.close();
    }
  });
});

describe('origins', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ http: { allowedOrigins: ['https://signage.example.edu'] } }, { db });
  });
  afterAll(async () => {
    await t.close();
  });

  it('lets in no Origin, the page\'s own host and a listed origin; refuses any other with 403 before the handshake', async () => {
    const port = t.server.ports.http;
    const ok = [undefined, `http://127.0.0.1:${port}`, 'https://signage.example.edu'];
    for (const origin of ok) {
      const c = await WsPeer.connect(port, '/ws/live', { origin });
      c.send({ type: 'ping' });
      expect((await c.waitFrames(1))[0]).toEqual({ type: 'pong' });
      c.destroy();
    }
    for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${port + 1}`, 'http://signage.example.edu', 'file://']) {
      await expect(WsPeer.connect(port, '/ws/rpc', { origin }), origin).rejects.toMatchObject({ status: 403 });
    }
    await expect(WsPeer.connect(port, '/ws/nothing')).rejects.toMatchObject({ status: 404 });
    const refused = t.obs.registry.values().carrel_ws_refused_total!;
    expect(refused.find((s) => s.labels.reason === 'origin')?.value).toBe(5);
    expect(refused.find((s) => s.labels.reason === 'path')?.value).toBe(1);
    expect(t.rpcListener.acceptedCount).toBe(0);
  });

  it('answers an h2c upgrade of /healthz as the plain request it is', async () => {
    const port = t.server.ports.http;
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', path: '/healthz', headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' } }, (r) => {
        let body = '';
        r.on('data', (c: Buffer) => (body += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(res).toEqual({ status: 200, body: '{"status":"ok"}' });
  });
});

describe('/ws/live', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({}, { db });
  });
  afterAll(async () => {
    await t.close();
  });

  it('subscribes, gets the snapshot and live events, resumes with since, and gets its personal events', async () => {
    const [seat] = await branchSeats(db.pool, 'Main Library', 1);
    const sensor = await connectSensor(t.server.ports.sensor);
    const rpc = await WsPeer.connect(t.server.ports.http, '/ws/rpc');
    const login = await rpc.call(1, 'auth.login', [{ studentId: 's1001', password: 'password123' }]);
    const token = (login.result as { token: string }).token;

    const sub = await WsPeer.connect(t.server.ports.http, '/ws/live');
    sub.send({ type: 'subscribe', branch: 'Main Library', token });
    const [subscribed, snapshot] = await sub.waitFrames(2);
    expect(subscribed).toMatchObject({ type: 'subscribed', personal: true });
    expect(snapshot).toMatchObject({ type: 'snapshot', seats: expect.any(Array) });
    const ack = await sendReadings(sensor, [{ seatId: seat!, occupied: true, at: Date.now() }]);
    expect(ack).toMatchObject({ type: 'ack', applied: 1 });
    const ev = await sub.waitFor((f) => f.type === 'seat' && f.seatId === seat);
    expect(ev).toMatchObject({ state: 'occupied', cause: 'sensor' });

    // Another reading while it is away; it comes back with since and gets just that one.
    sub.destroy();
    await sendReadings(sensor, [{ seatId: seat!, occupied: false, at: Date.now() + 1 }]);
    const back = await WsPeer.connect(t.server.ports.http, '/ws/live');
    back.send({ type: 'subscribe', branch: 'Main Library', since: ev.seq, epoch: subscribed!.epoch });
    const replay = await back.waitFor((f) => f.type === 'seat');
    expect(replay).toMatchObject({ seatId: seat, seq: (ev.seq as number) + 1, state: 'free' });
    expect(back.frames.some((f) => f.type === 'snapshot')).toBe(false);

    // A personal event reaches the subscriber whose token names the user, and only it.
    const second = await WsPeer.connect(t.server.ports.http, '/ws/live');
    second.send({ type: 'subscribe', branch: 'Main Library', token });
    await second.waitFrames(2);
    const uid = await userId(db.pool, 's1001');
    const reservation = { id: 1, seatId: seat!, branchId: snapshot!.branchId as number, userId: uid, start: new Date().toISOString(), end: new Date(Date.now() + 3_600_000).toISOString(), status: 'OFFERED' };
    t.coreEvents.emit({ type: 'personal', userId: uid, kind: 'offer', reservation: reservation as never, waitlistId: 7, offerExpiresAt: new Date(Date.now() + 600_000).toISOString(), at: new Date().toISOString() });
    expect(await second.waitFor((f) => f.type === 'personal')).toMatchObject({ kind: 'offer', waitlistId: 7 });
    expect(back.frames.some((f) => f.type === 'personal')).toBe(false);
    for (const p of [rpc, back, second]) p.destroy();
    sensor.destroy();
  });

  it('answers protocol errors with the subscriber port\'s codes and lives on', async () => {
    const sub = await WsPeer.connect(t.server.ports.http, '/ws/live');
    sub.ws.send('not json');
    sub.send({ type: 'dance' });
    sub.send({ type: 'subscribe', branch: '' });
    sub.send({ type: 'ping' });
    const frames = await sub.waitFrames(4);
    expect(frames.map((f) => f.code ?? f.type)).toEqual(['BAD_FRAME', 'INVALID_REQUEST', 'INVALID_ARGUMENT', 'pong']);
    // A message over pubsub.maxFrameBytes (32 KiB), as the subscriber port: closed.
    sub.send({ type: 'ping', pad: 'x'.repeat(t.config.pubsub.maxFrameBytes) });
    expect((await sub.closed).code).toBe(1009);
  });

  it('outlives the HTTP port\'s request timeouts: once upgraded, only the subscriber port\'s rules apply', async () => {
    const t2 = await startTestServer({ http: { headersTimeoutMs: 200 } }, { db });
    try {
      const sub = await WsPeer.connect(t2.server.ports.http, '/ws/live');
      // Node drops an HTTP connection past headersTimeout, and the whole request past twice that.
      await new Promise((r) => setTimeout(r, 1_500));
      sub.send({ type: 'ping' });
      expect((await sub.waitFrames(1))[0]).toEqual({ type: 'pong' });
      expect(sub.isClosed).toBe(false);
      sub.destroy();
    } finally {
      await t2.close();
    }
  });

  it('tells WebSocket subscribers UNAVAILABLE on shutdown, like TCP ones', async () => {
    const t2 = await startTestServer({}, { db });
    const sub = await WsPeer.connect(t2.server.ports.http, '/ws/live');
    sub.send({ type: 'subscribe', branch: 'Main Library' });
    await sub.waitFrames(2);
    const rpc = await WsPeer.connect(t2.server.ports.http, '/ws/rpc');
    expect((await rpc.call(1, 'PING')).result).toBe('PONG');
    await t2.close();
    await sub.closed;
    expect(sub.frames.at(-1)).toMatchObject({ type: 'error', code: 'UNAVAILABLE' });
    await rpc.closed;
  });
});

describe('abuse', () => {
  it('a /ws/live subscriber that stops reading is cut off with SLOW_CONSUMER like a TCP one, and a fast one misses nothing', async () => {
    const t = await startTestServer({ pubsub: { highWaterBytes: 16 * 1024, queueCapacity: 16, maxDrops: 50, slowConsumerLingerMs: 10_000 } }, { db });
    try {
      const seats = await branchSeats(db.pool, 'Medical Library', 20);
      const fast = await WsPeer.connect(t.server.ports.http, '/ws/live');
      const slow = await WsPeer.connect(t.server.ports.http, '/ws/live');
      for (const p of [fast, slow]) p.send({ type: 'subscribe', branch: 'Medical Library' });
      await fast.waitFrames(2);
      await slow.waitFrames(2);
      const firstSeq = fast.frames[1]!.seq as number;
      slow.ws.pause(); // stops reading its socket
      const hub = t.live.hub;
      const state = { at: Date.now() - 3_600_000 };
      let published = 0;
      for (let i = 0; i < 4_000 && hub.stats.slowConsumers === 0; i++) {
        churn(t, seats, 20, state);
        published += 20;
        await new Promise<void>((r) => setImmediate(r));
      }
      expect(hub.stats.slowConsumers).toBe(1);
      expect(hub.stats.drops).toBeGreaterThanOrEqual(50);
      // What waits to be sent to it stayed capped: the high-water mark, a frame or two, the last one.
      for (const conn of t.live.pubsubListener.connections) expect(conn.bufferedBytes).toBeLessThan(16 * 1024 + 4 * 1024);
      slow.ws.resume();
      const closed = await slow.closed;
      expect(closed.code).toBe(1000);
      expect(slow.frames.at(-1)).toMatchObject({ type: 'error', code: 'SLOW_CONSUMER' });
      // The fast one saw every event in order.
      const lastSeq = hub.seqOf(fast.frames[1]!.branchId as number);
      await fast.waitFor((f) => f.seq === lastSeq, { timeoutMs: 15_000 });
      const seqs = fast.frames.filter((f) => f.type === 'seat').map((f) => f.seq as number);
      expect(seqs.length).toBe(lastSeq - firstSeq);
      expect(seqs.every((s, i) => s === firstSeq + 1 + i)).toBe(true);
      expect(published).toBeGreaterThanOrEqual(seqs.length);
      fast.destroy();
    } finally {
      await t.close();
    }
  });

  it('an RPC client that floods requests and never reads is no longer read: the server holds a bounded amount for it', async () => {
    const t = await startTestServer({ limits: { writeHighWaterBytes: 64 * 1024 } }, { db });
    try {
      const c = await WsPeer.connect(t.server.ports.http, '/ws/rpc');
      c.ws.pause(); // never reads a reply
      const request = JSON.stringify({ rpcId: 1, method: 'PING', pad: 'x'.repeat(200) });
      const [conn] = t.rpcListener.connections;
      // Writes until its own socket is full: the server stopped reading, so nothing drains it.
      let sent = 0;
      while (c.ws.bufferedAmount < 4 * 1024 * 1024 && sent < 200_000) {
        for (let i = 0; i < 500; i++) c.ws.send(request);
        sent += 500;
        await new Promise<void>((r) => setImmediate(r));
      }
      await until(() => conn!.readingPaused, 'the server to stop reading');
      const answered = t.obs.rpc.total;
      await new Promise((r) => setTimeout(r, 300));
      // Paused: no more requests are taken in, and what waits to be sent stays near the mark.
      expect(t.obs.rpc.total).toBe(answered);
      expect(answered).toBeLessThan(sent);
      expect(conn!.bufferedBytes).toBeLessThan(64 * 1024 + 256 * 1024);
      expect(c.ws.bufferedAmount).toBeGreaterThan(1024 * 1024);
      // It reads again: the server resumes and answers every request.
      c.ws.resume();
      await until(() => c.frames.length === sent, 'every reply', 30_000);
      c.destroy();
    } finally {
      await t.close();
    }
  });

  it('an anonymous read flood over /ws/rpc meets the same rate limits (per connection and per address) as on TCP', async () => {
    const t = await startTestServer({}, { db });
    try {
      const conns = await Promise.all(Array.from({ length: 4 }, () => WsPeer.connect(t.server.ports.http, '/ws/rpc')));
      conns.forEach((c, k) => {
        for (let i = 0; i < 100; i++) c.send({ rpcId: k * 1000 + i, method: 'branches.list' });
      });
      await until(() => conns.every((c) => c.frames.length > 0), 'replies');
      await new Promise((r) => setTimeout(r, 500));
      const codes = conns.flatMap((c) => c.frames).map((f) => (f.error as { code?: string } | null)?.code ?? 'ok');
      const refused = conns.flatMap((c) => c.frames).filter((f) => (f.error as { code?: string } | null)?.code === 'RESOURCE_EXHAUSTED');
      expect(codes).toContain('ok');
      expect(refused.length).toBeGreaterThan(0);
      expect(refused[0]!.error).toMatchObject({ details: { retryAfterMs: expect.any(Number), limit: expect.stringMatching(/^anonymousReads/) } });
      // At most the connection burst (40) per connection is ever answered ok in the first instant.
      for (const c of conns) expect(c.frames.filter((f) => f.error === null).length).toBeLessThanOrEqual(60);
      for (const c of conns) c.destroy();
    } finally {
      await t.close();
    }
  });

  it('many connections from one address take no more than the TCP port allows: WebSocket and TCP share limits.maxConnections', async () => {
    const t = await startTestServer({ limits: { maxConnections: 20 } }, { db });
    try {
      const port = t.server.ports.http;
      const tcp = await Promise.all(Array.from({ length: 5 }, () => RawPeer.connect(t.server.ports.rpc)));
      const opened = await Promise.allSettled(Array.from({ length: 40 }, () => WsPeer.connect(port, '/ws/rpc')));
      const peers = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      await until(() => peers.filter((p) => p.isClosed).length >= peers.length - 15, 'the refused ones to close');
      const refused = peers.filter((p) => p.isClosed);
      expect(t.rpcListener.connections.size).toBe(20);
      for (const p of refused) expect(p.frames[0]).toMatchObject({ rpcId: null, error: { code: 'RESOURCE_EXHAUSTED', message: expect.stringContaining('too many connections') } });
      // Those let in are served; the HTTP port's own caps (16 per address, 64 in all) did not evict them.
      const live = peers.filter((p) => !p.isClosed);
      expect(live.length).toBe(15);
      const replies = await Promise.all(live.map((p, i) => p.call(i + 1, 'PING')));
      expect(replies.every((r) => r.result === 'PONG')).toBe(true);
      for (let i = 0; i < 20; i++) expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect(live.every((p) => !p.isClosed)).toBe(true);
      // And a TCP newcomer is refused like any past the limit.
      const late = await RawPeer.connect(t.server.ports.rpc);
      await late.closed;
      expect(late.frames[0]).toMatchObject({ error: { code: 'RESOURCE_EXHAUSTED' } });
      expect(t.obs.registry.values().carrel_ws_connections_open!.find((s) => s.labels.path === '/ws/rpc')?.value).toBe(15);
      for (const p of [...live, ...tcp]) p.destroy();
    } finally {
      await t.close();
    }
  });
});
