// PostgreSQL going away under load (issue 7): requests that need the database fail fast with
// UNAVAILABLE while it is down (never hang to the deadline, never INTERNAL), /readyz says 503,
// and everything recovers once it is back, without restarting the server. This file starts its
// OWN PostgreSQL (embedded, spare port, temp data dir) so it can stop it; the machine's shared
// server is never touched.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPg } from '../../src/db/embeddedPostgres.js';
import { createPool, query } from '../../src/db/pool.js';
import { migrate, seed } from '../../src/db/migrate.js';
import { defineMethod } from '../../src/rpc/registry.js';
import { silentLogger } from '../../src/obs/log.js';
import { CarrelServer } from '../../src/server.js';
import { RpcClient } from '../../clients/rpcClient.js';
import { testConfig } from '../support/server.js';
import { waitFor } from '../support/fuzz.js';

const REQUEST_TIMEOUT_MS = 3000;

let dataDir: string;
let port: number;
let postgres: EmbeddedPg | undefined;
let pool: pg.Pool;
let server: CarrelServer;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port: p } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return p;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'carrel-fault-pg-'));
  port = await freePort();
  postgres = await startEmbeddedPostgres({ dataDir: join(dataDir, 'data'), port });
  pool = createPool({ url: postgres.url, poolSize: 4, connectTimeoutMs: 1000, statementTimeoutMs: 2000 }, silentLogger);
  await migrate(pool, silentLogger);
  await seed(pool, silentLogger);
  const config = testConfig({ limits: { requestTimeoutMs: REQUEST_TIMEOUT_MS }, http: { readyTimeoutMs: 500 } });
  server = await CarrelServer.start({ config, log: silentLogger, db: pool });
  // One query straight through src/db/pool.ts, standing in for any method that needs the database.
  server.registry.add(
    defineMethod({
      name: 'test.query',
      access: 'public',
      args: z.unknown(),
      summary: 'one query through src/db/pool.ts',
      handler: async () => (await query<{ ok: number }>(pool, 'SELECT 1 AS ok')).rows[0],
    }),
  );
}, 120_000);

afterAll(async () => {
  await server?.shutdown();
  await pool?.end().catch(() => undefined);
  await postgres?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function readyz(): Promise<{ status: number; body: { checks: Record<string, { ok: boolean; error?: string }> } }> {
  const res = await fetch(`http://127.0.0.1:${server.ports.http}/readyz`);
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
    const clients = await Promise.all([1, 2, 3, 4].map(() => RpcClient.connect('127.0.0.1', server.ports.rpc)));
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
    const stats = server.obs.stats();
    expect(stats.requests.errors.INTERNAL).toBeUndefined();
    expect(stats.requests.errors.UNAVAILABLE).toBe(count('UNAVAILABLE'));
    expect(stats.requests.inFlight).toBe(0);
  }, 60_000);
});
