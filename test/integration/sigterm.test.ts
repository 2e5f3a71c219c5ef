// SIGTERM under load (docs/operations.md, "Running as a service"): the real `carrel serve` process
// stops accepting, answers every request it has read, and exits 0 within shutdown.graceMs — under
// PINGs, and under bookings that are waiting on PostgreSQL when the signal arrives, whose replies
// must agree with the database; and in-process, requests waiting on PostgreSQL when shutdown starts
// all complete.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FrameDecoder, encodeFrame } from '../../src/codec/index.js';
import { TokenService } from '../../src/auth/tokens.js';
import { configSchema } from '../../src/config/schema.js';
import { Db } from '../../src/db/db.js';
import { defineMethod } from '../../src/rpc/registry.js';
import { projectRoot } from '../../src/paths.js';
import { RpcClient } from '../../clients/rpcClient.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { startTestServer } from '../support/server.js';
import { insertUser, seatsOf } from '../support/fixtures.js';
import { ensureBuilt, startServe } from '../support/serveProcess.js';
import { BookingClient } from '../support/bookingLoad.js';
import { waitFor } from '../support/fuzz.js';

const GRACE_MS = 3000;

let db: TestDatabase;
const cleanup: Array<() => void> = [];
beforeAll(async () => {
  db = await freshDatabase(12);
  ensureBuilt();
});
afterAll(async () => {
  for (const f of cleanup) f();
  await db.drop();
});

/** A pipelining client that counts replies per rpcId and notices a frame cut in half. */
class LoadClient {
  sent = 0;
  readonly replied: number[] = [];
  readonly bad: unknown[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder({ maxFrameBytes: 1 << 24, maxDepth: 64 });
  private running = true;

  constructor(private readonly socket: net.Socket, private readonly token: string) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let d = this.decoder.next(); d; d = this.decoder.next()) {
        if (d.kind !== 'message' || d.value.error !== null) this.bad.push(d.kind === 'message' ? d.value : d.reason);
        else this.replied.push(d.value.rpcId as number);
      }
      this.fill();
    });
    this.closed = new Promise((r) => socket.once('close', () => r()));
    socket.once('connect', () => this.fill());
  }

  /** Bytes left over at close: > 0 means the server cut a reply in half. */
  get leftover(): number {
    return this.decoder.pendingBytes;
  }

  stop(): void {
    this.running = false;
  }

  private fill(): void {
    // Keep 32 requests outstanding: PINGs with a token-checked server.stats now and then (every
    // 100th: server.stats reads the users table, and one user's database work waits its turn
    // behind admission.dbPerClient; docs/fairness.md).
    while (this.running && this.sent - this.replied.length < 32) {
      this.sent++;
      const frame = this.sent % 100 === 0 ? { rpcId: this.sent, method: 'server.stats', token: this.token } : { rpcId: this.sent, method: 'PING' };
      this.socket.write(encodeFrame(frame));
    }
  }
}

describe('SIGTERM', () => {
  it('`carrel serve` under load answers what it read, closes cleanly and exits 0 within shutdown.graceMs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carrel-sigterm-'));
    const configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ ports: { rpc: 0, sensor: 0, pubsub: 0, http: 0 }, shutdown: { graceMs: GRACE_MS }, log: { level: 'warn' } }));
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'carrel.js'), 'serve'], {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: db.url, CARREL_CONFIG: configFile, LOG_LEVEL: 'warn', NODE_ENV: 'test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const ports = await new Promise<{ rpc: number; http: number }>((resolve, reject) => {
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        const m = /^ports (\{.*\})$/m.exec(stderr);
        if (m) resolve(JSON.parse(m[1]!) as { rpc: number; http: number });
      });
      void exited.then(() => reject(new Error(`serve exited early:\n${stderr}\n${stdout}`)));
    });
    expect((await fetch(`http://127.0.0.1:${ports.http}/readyz`)).status).toBe(200);

    const secret = configSchema.parse({}).auth.jwtSecret;
    const token = new TokenService({ secret, ttlSec: 600 }).issue({ id: 1, studentId: 's1001', name: 'S', role: 'student' }).token;
    const clients = Array.from({ length: 4 }, () => new LoadClient(net.connect({ port: ports.rpc, host: '127.0.0.1' }), token));
    // Let the load run until a good number of replies have come back.
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (clients.every((c) => c.replied.length > 2000)) {
          clearInterval(check);
          resolve();
        }
      }, 20);
    });
    const before = clients.map((c) => c.replied.length);
    const signalledAt = Date.now();
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    const tookMs = Date.now() - signalledAt;
    for (const c of clients) c.stop();
    await Promise.all(clients.map((c) => c.closed));

    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(GRACE_MS);
    for (const [i, c] of clients.entries()) {
      expect(c.bad).toEqual([]);
      expect(c.leftover, 'no reply cut in half').toBe(0);
      expect(c.replied.length).toBeGreaterThanOrEqual(before[i]!);
      // Requests on one connection are answered in order (all synchronous here), so the replies
      // must be exactly 1..n: nothing the server read was dropped.
      const sorted = [...c.replied].sort((a, b) => a - b);
      expect(sorted).toEqual(Array.from({ length: sorted.length }, (_, k) => k + 1));
    }
    await expect(fetch(`http://127.0.0.1:${ports.rpc}`)).rejects.toThrow();
    expect(stderr).not.toMatch(/shutdown did not finish in time/);
  }, 30_000);

  it('`carrel serve` under a booking load stops reading, answers every request it read, agrees with the database and exits 0 within shutdown.graceMs', async () => {
    const users = await Promise.all(Array.from({ length: 16 }, (_, i) => insertUser(db.pool, `Drain ${i}`)));
    const seats = (await seatsOf(db.pool, 'Engineering Library')).slice(0, 40); // open around the clock
    const dayAhead = Math.ceil((Date.now() + 86_400_000) / 3_600_000) * 3_600_000;
    const serve = await startServe({
      env: { DATABASE_URL: db.url },
      config: {
        shutdown: { graceMs: GRACE_MS },
        rules: { maxActivePerUser: 100_000, dailyQuotaMinutes: 100_000, weeklyQuotaMinutes: 100_000 },
        rateLimit: { enabled: false },
      },
    });
    cleanup.push(() => serve.destroy());
    const tokens = new TokenService({ secret: configSchema.parse({}).auth.jwtSecret, ttlSec: 600 });
    // Each user books a seat of its own, slot after slot, one booking in flight at a time (a person
    // has one: the server refuses a second at once, bookingInFlight), on a connection of its own.
    const clients = users.map(
      (u, i) =>
        new BookingClient(
          net.connect({ port: serve.ports.rpc, host: '127.0.0.1' }),
          tokens.issue(u).token,
          (k) => {
            const start = dayAhead + k * 30 * 60_000;
            return { seatId: seats[i]!.id, start: new Date(start).toISOString(), end: new Date(start + 30 * 60_000).toISOString(), idempotencyKey: `drain-${i}-${k}` };
          },
          1,
        ),
    );
    await waitFor(() => clients.every((c) => c.replies.size >= 30), 20_000, 'bookings to flow');
    const before = clients.map((c) => c.replies.size);
    const inFlight = clients.map((c) => c.sent - c.replies.size);
    const signalledAt = Date.now();
    serve.child.kill('SIGTERM');
    const { code, signal } = await serve.exited;
    const tookMs = Date.now() - signalledAt;
    for (const c of clients) c.stop();
    await Promise.all(clients.map((c) => c.closed));

    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThanOrEqual(GRACE_MS);
    expect(serve.stderr()).not.toMatch(/did not finish/);
    expect(Math.min(...inFlight), 'requests were in flight when the signal came').toBeGreaterThan(0);
    const rows = await db.pool.query<{ id: number; idempotency_key: string; status: string }>(
      "SELECT id, idempotency_key, status FROM reservations WHERE idempotency_key LIKE 'drain-%'",
    );
    const inDb = new Map(rows.rows.map((r) => [r.idempotency_key, r]));
    for (const [i, c] of clients.entries()) {
      expect(c.bad).toEqual([]);
      expect(c.leftover, 'no reply cut in half').toBe(0);
      // Requests on a connection are read in order, so if request n was answered, every one
      // before it was read too and must have been answered: the answered rpcIds are 1..K.
      const answered = [...c.replies.keys()].sort((a, b) => a - b);
      expect(answered).toEqual(Array.from({ length: answered.length }, (_, k) => k + 1));
      expect(answered.length, 'the requests in flight at the signal were answered').toBeGreaterThan(before[i]!);
      // Every reply agrees with the database; nothing unanswered was booked behind the client's back.
      for (let k = 1; k <= c.sent; k++) {
        const key = `drain-${i}-${k}`;
        const id = c.replies.get(k);
        if (id === undefined) expect(inDb.get(key), `${key} was not answered, so it must not be booked`).toBeUndefined();
        else expect(inDb.get(key), key).toEqual({ id, idempotency_key: key, status: 'CONFIRMED' });
      }
    }
  }, 60_000);

  it('requests waiting on PostgreSQL when shutdown starts all complete before the ports close', async () => {
    const t = await startTestServer({ shutdown: { graceMs: GRACE_MS } }, { db });
    t.registry.add(
      defineMethod({
        name: 'test.sleep',
        access: 'public',
        args: z.unknown(),
        summary: 'a 200 ms query',
        handler: async () => (await new Db(t.db.pool).query<{ done: boolean }>('SELECT pg_sleep(0.2) IS NULL AS done')).rows[0],
      }),
    );
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    // More than the pool holds, so some are queued for a client when shutdown begins.
    const pending = Array.from({ length: 16 }, () => c.request('test.sleep'));
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (t.inFlight === 16) {
          clearInterval(check);
          resolve();
        }
      }, 5);
    });
    const started = Date.now();
    await t.server.shutdown();
    expect(Date.now() - started).toBeLessThan(GRACE_MS);
    const replies = await Promise.all(pending);
    expect(replies.map((r) => r.error?.code ?? 'OK')).toEqual(new Array(16).fill('OK'));
    expect(t.inFlight).toBe(0);
    await t.close();
  });
});
