// PostgreSQL going away under load (docs/http.md; docs/protocol.md, "Error codes"): requests that
// need the database fail fast with UNAVAILABLE while it is down (never hang to the deadline, never
// INTERNAL), /readyz says 503, and everything recovers once it is back, without restarting the
// server. The second test does it to a real `carrel serve` under a booking load and checks the
// process survives (a pg client checked out of the pool when PostgreSQL dies used to have no
// 'error' listener and killed it) and that every booking it confirmed is in the database exactly
// once. This file starts its OWN PostgreSQL (embedded, spare port, temp data dir) so it can stop
// it; the machine's shared server is never touched.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPg } from '../../src/db/embeddedPostgres.js';
import { Db } from '../../src/db/db.js';
import { createPool } from '../../src/db/pool.js';
import { migrate, seed } from '../../src/db/migrate.js';
import { defineMethod } from '../../src/rpc/registry.js';
import { silentLogger } from '../../src/obs/log.js';
import { RpcClient, type RpcReply } from '../../clients/rpcClient.js';
import { TokenService } from '../../src/auth/tokens.js';
import { configSchema } from '../../src/config/schema.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { waitFor } from '../support/fuzz.js';
import { insertBooking, insertUser, seatsOf } from '../support/fixtures.js';
import { startServe, type ServeProcess } from '../support/serveProcess.js';
import { freePort } from '../support/processes.js';

const REQUEST_TIMEOUT_MS = 3000;

let dataDir: string;
let port: number;
let postgres: EmbeddedPg | undefined;
let pool: pg.Pool;
let t: TestServer;
let serveProcess: ServeProcess | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'carrel-fault-pg-'));
  port = await freePort();
  postgres = await startEmbeddedPostgres({ dataDir: join(dataDir, 'data'), port });
  pool = createPool({ url: postgres.url, poolSize: 4, connectTimeoutMs: 1000, statementTimeoutMs: 2000 }, silentLogger);
  await migrate(pool, silentLogger);
  await seed(pool, silentLogger);
  // The pool is this file's (its embedded PostgreSQL is stopped below), not the harness's to drop.
  t = await startTestServer({ limits: { requestTimeoutMs: REQUEST_TIMEOUT_MS }, http: { readyTimeoutMs: 500 } }, { db: { url: postgres.url, pool, drop: async () => undefined } });
  // One query through Db (src/db/db.ts), standing in for any method that needs the database.
  t.registry.add(
    defineMethod({
      name: 'test.query',
      access: 'public',
      args: z.unknown(),
      summary: 'one query through Db',
      handler: async () => (await new Db(pool).query<{ ok: number }>('SELECT 1 AS ok')).rows[0],
    }),
  );
}, 120_000);

afterAll(async () => {
  serveProcess?.destroy();
  await t?.close();
  await pool?.end().catch(() => undefined);
  await postgres?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function readyz(): Promise<{ status: number; body: { checks: Record<string, { ok: boolean; error?: string }> } }> {
  const res = await fetch(`http://127.0.0.1:${t.server.ports.http}/readyz`);
  return { status: res.status, body: (await res.json()) as { checks: Record<string, { ok: boolean; error?: string }> } };
}

interface Outcome {
  code: string;
  ms: number;
  atMs: number;
}

describe('PostgreSQL stopped while requests run', () => {
  it('fails fast with UNAVAILABLE while down, /readyz says 503, and recovers without a restart', async () => {
    expect((await readyz()).status).toBe(200);
    const outcomes: Outcome[] = [];
    let running = true;
    const clients = await Promise.all([1, 2, 3, 4].map(() => RpcClient.connect('127.0.0.1', t.server.ports.rpc)));
    // Four clients, each with one request outstanding at a time, paced a little.
    const load = clients.map(async (c) => {
      while (running) {
        const started = performance.now();
        const reply = await c.request('test.query');
        outcomes.push({ code: reply.error?.code ?? 'OK', ms: performance.now() - started, atMs: Date.now() });
        await new Promise((r) => setTimeout(r, 10));
      }
    });
    const count = (code: string, sinceMs = 0): number => outcomes.filter((o) => o.code === code && o.atMs >= sinceMs).length;

    await waitFor(() => count('OK') >= 20, 10_000, 'requests to succeed');
    const stoppedAt = Date.now();
    await postgres!.stop();
    await waitFor(() => count('UNAVAILABLE', stoppedAt) >= 40, 10_000, 'requests to fail UNAVAILABLE');
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.checks.postgres).toMatchObject({ ok: false });

    const restartAt = Date.now();
    postgres = await startEmbeddedPostgres({ dataDir: join(dataDir, 'data'), port });
    await waitFor(() => count('OK', restartAt) >= 20, 15_000, 'requests to succeed again');
    running = false;
    await Promise.all(load);
    for (const c of clients) c.close();
    expect((await readyz()).status).toBe(200);

    // While it was down: every answer UNAVAILABLE (safe to retry), and fast — well inside the deadline.
    const whileDown = outcomes.filter((o) => o.atMs > stoppedAt && o.atMs < restartAt && o.code !== 'OK');
    expect(whileDown.length).toBeGreaterThanOrEqual(40);
    expect(new Set(whileDown.map((o) => o.code))).toEqual(new Set(['UNAVAILABLE']));
    expect(Math.max(...whileDown.map((o) => o.ms))).toBeLessThan(REQUEST_TIMEOUT_MS / 2);
    // Nothing, at any point, was INTERNAL or hung to DEADLINE_EXCEEDED.
    expect(new Set(outcomes.map((o) => o.code))).toEqual(new Set(['OK', 'UNAVAILABLE']));
    const stats = t.obs.stats();
    expect(stats.requests.errors.INTERNAL).toBeUndefined();
    expect(stats.requests.errors.UNAVAILABLE).toBe(count('UNAVAILABLE'));
    expect(stats.requests.inFlight).toBe(0);
  }, 60_000);
});

interface Booking {
  key: string;
  user: number;
  /** The codes this booking's requests got, in order: it is retried with the same key after UNAVAILABLE. */
  codes: string[];
  id?: number;
}

describe('PostgreSQL stopped under a booking load on `carrel serve`', () => {
  it('the process survives, answers UNAVAILABLE fast while it is down, books again after, and every confirmed booking is there once', async () => {
    const seats = (await seatsOf(pool, 'Engineering Library')).slice(0, 9); // open around the clock
    const [waitSeat, ...bookSeats] = seats;
    const users = await Promise.all([0, 1, 2, 3].map((i) => insertUser(pool, `Fault ${i}`)));
    // Each of a client's three booking loops books as a user of its own: a person has one booking
    // in flight at a time (the server refuses a second at once, bookingInFlight).
    const loopUsers = await Promise.all(Array.from({ length: 12 }, (_, i) => insertUser(pool, `Fault loop ${i}`)));
    const blocker = await insertUser(pool, 'Blocker');
    const dayAhead = Math.ceil((Date.now() + 86_400_000) / 3_600_000) * 3_600_000;
    // A booked window on one seat, so waitlist.join gets past its "a seat is free" check into its
    // transaction: the load keeps pg clients checked out of the pool, not only pool.query ones.
    const waitWindow = { start: new Date(dayAhead - 3_600_000).toISOString(), end: new Date(dayAhead).toISOString() };
    await insertBooking(pool, { seatId: waitSeat!.id, userId: blocker.id, ...waitWindow });

    serveProcess = await startServe({
      env: { DATABASE_URL: postgres!.url },
      config: {
        db: { poolSize: 4, connectTimeoutMs: 1000, statementTimeoutMs: 2000 },
        limits: { requestTimeoutMs: REQUEST_TIMEOUT_MS },
        // The lifecycle's lock session is another client held out of the pool; tick often.
        lifecycle: { tickMs: 50 },
        // A loop's bookings walk seats and slots, several in one slot: one seat at a time is not this test's subject.
        rules: { maxActivePerUser: 100_000, dailyQuotaMinutes: 100_000, weeklyQuotaMinutes: 100_000, oneSeatAtATime: false },
        rateLimit: { enabled: false },
      },
    });
    const serve = serveProcess;
    const tokens = new TokenService({ secret: configSchema.parse({}).auth.jwtSecret, ttlSec: 600 });
    const clients = await Promise.all(users.map(() => RpcClient.connect('127.0.0.1', serve.ports.rpc)));
    clients.forEach((c, i) => (c.token = tokens.issue(users[i]!).token));

    const outcomes: Outcome[] = [];
    const bookings: Booking[] = [];
    let running = true;
    const call = async (c: RpcClient, method: string, args: unknown[], token?: string): Promise<RpcReply | undefined> => {
      const started = performance.now();
      const reply = await c.request(method, args, token).catch(() => undefined); // the connection died with the server
      outcomes.push({ code: reply ? (reply.error?.code ?? 'OK') : 'CLOSED', ms: performance.now() - started, atMs: Date.now() });
      if (!reply) running = false;
      return reply;
    };
    const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 20));
    const slotMs = 30 * 60_000;
    // Per client three pipelined booking loops and two waitlist loops. Users 0/2 and 1/3 walk the
    // same slots, so about half the bookings conflict. UNAVAILABLE is retried with the same key.
    const loops = clients.flatMap((c, i) => {
      let next = 0;
      const booker = async (loop: number): Promise<void> => {
        const user = loopUsers[i * 3 + loop]!;
        const token = tokens.issue(user).token;
        while (running) {
          const n = next++ * 2 + (i % 2);
          const b: Booking = { key: `f-${i}-${n}`, user: user.id, codes: [] };
          bookings.push(b);
          const seat = bookSeats[n % bookSeats.length]!;
          const start = dayAhead + Math.floor(n / bookSeats.length) * slotMs;
          const args = [{ seatId: seat.id, start: new Date(start).toISOString(), end: new Date(start + slotMs).toISOString(), idempotencyKey: b.key }];
          while (running) {
            const reply = await call(c, 'reservations.create', args, token);
            if (!reply) return;
            b.codes.push(reply.error?.code ?? 'OK');
            if (reply.error === null) b.id = (reply.result as { id: number }).id;
            if (reply.error?.code !== 'UNAVAILABLE') break;
            await pause();
          }
        }
      };
      const waiter = async (): Promise<void> => {
        while (running) {
          const reply = await call(c, 'waitlist.join', [{ seatId: waitSeat!.id, ...waitWindow }]);
          if (reply?.error?.code === 'UNAVAILABLE') await pause();
        }
      };
      return [booker(0), booker(1), booker(2), waiter(), waiter()];
    });
    const booked = (): number => bookings.filter((b) => b.codes.at(-1) === 'OK').length;
    /** Waits for cond, or for the process to die; then it must be alive. */
    const untilAlive = async (cond: () => boolean, what: string): Promise<void> => {
      await waitFor(() => cond() || serve.child.exitCode !== null, 15_000, what);
      expect(serve.child.exitCode, `carrel serve died:\n${serve.stderr().slice(-2000)}`).toBeNull();
    };

    await untilAlive(() => booked() >= 30, 'bookings to succeed');
    // Stop PostgreSQL while one of carrel's sessions is inside an explicit transaction (a
    // waitlist join, a lifecycle step): a client checked out of the pool, the case that crashed.
    const inTransaction = async (): Promise<boolean> =>
      (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'idle in transaction'`))
        .rows[0]!.n > 0;
    const lookUntil = Date.now() + 10_000;
    while (!(await inTransaction())) if (Date.now() > lookUntil) throw new Error('no transaction seen under the load');
    await postgres!.stop();
    const downAt = Date.now();
    await untilAlive(() => outcomes.filter((o) => o.code === 'UNAVAILABLE' && o.atMs - o.ms > downAt).length >= 40, 'requests to fail UNAVAILABLE');

    const restartAt = Date.now();
    postgres = await startEmbeddedPostgres({ dataDir: join(dataDir, 'data'), port });
    const bookedBefore = booked();
    await untilAlive(() => booked() >= bookedBefore + 30, 'bookings to succeed again');
    running = false;
    await Promise.all(loops);
    for (const c of clients) c.close();
    expect(serve.child.exitCode).toBeNull();

    // Sent once it was down and answered before it was back: all UNAVAILABLE, all fast.
    // (≤: answers recorded in the very millisecond the wait above ended count as before the restart.)
    const whileDown = outcomes.filter((o) => o.atMs - o.ms > downAt && o.atMs <= restartAt);
    expect(whileDown.length).toBeGreaterThanOrEqual(40);
    expect(new Set(whileDown.map((o) => o.code))).toEqual(new Set(['UNAVAILABLE']));
    expect(Math.max(...whileDown.map((o) => o.ms))).toBeLessThan(REQUEST_TIMEOUT_MS / 2);
    // Bookings either succeed, lose the slot to the other user, or find the database down; the
    // waitlist join answers its one entry again. Nothing INTERNAL, nothing hung, no connection lost.
    expect([...new Set(outcomes.map((o) => o.code))].sort()).toEqual(['CONFLICT', 'OK', 'UNAVAILABLE']);
    expect(bookings.some((b) => b.codes.length > 1 && b.codes.at(-1) === 'OK'), 'a booking retried after UNAVAILABLE succeeded').toBe(true);

    // Every booking confirmed to a client is in the database exactly once, as the client was
    // told; one that lost its slot is not there at all.
    const rows = await pool.query<{ id: number; user_id: number; idempotency_key: string; status: string }>(
      'SELECT id, user_id, idempotency_key, status FROM reservations WHERE idempotency_key = ANY($1)',
      [bookings.map((b) => b.key)],
    );
    const byKey = new Map<string, typeof rows.rows>();
    for (const r of rows.rows) byKey.set(r.idempotency_key, [...(byKey.get(r.idempotency_key) ?? []), r]);
    const ok = bookings.filter((b) => b.codes.at(-1) === 'OK');
    expect(ok.length).toBeGreaterThanOrEqual(60);
    for (const b of ok) expect(byKey.get(b.key), b.key).toEqual([{ id: b.id, user_id: b.user, idempotency_key: b.key, status: 'CONFIRMED' }]);
    for (const b of bookings.filter((x) => x.codes.at(-1) === 'CONFLICT')) expect(byKey.get(b.key), b.key).toBeUndefined();
    const overlaps = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM reservations a JOIN reservations b ON a.seat_id = b.seat_id AND a.id < b.id
        WHERE a.status IN ('CONFIRMED','CHECKED_IN','OFFERED') AND b.status IN ('CONFIRMED','CHECKED_IN','OFFERED') AND a.hold && b.hold`,
    );
    expect(overlaps.rows[0]!.n).toBe(0);

    // And it still shuts down cleanly, PostgreSQL having come and gone under it.
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
  }, 90_000);
});
