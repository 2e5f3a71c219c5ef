// `carrel serve` with its embedded PostgreSQL and the signals a terminal sends (docs/operations.md,
// "Running as a service"). Ctrl-C signals the whole foreground process group: carrel must drain the
// requests in flight and only then stop PostgreSQL, so the postmaster must not be in that group.
// And a signal that comes while serve is still starting must stop the postmaster it started, not
// orphan it.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { BookingClient } from '../support/bookingLoad.js';
import { waitFor } from '../support/fuzz.js';
import { spawnServe, startServe, type SpawnedServe } from '../support/serveProcess.js';
import { alive, freePort, postmasterPid } from '../support/processes.js';

let root: string;
let dataDir: string;
let port: number;
const spawned: SpawnedServe[] = [];

const config = () => ({
  db: { embedded: { dataDir, port } },
  shutdown: { graceMs: 5_000 },
  rules: { maxActivePerUser: 100_000, dailyQuotaMinutes: 100_000, weeklyQuotaMinutes: 100_000 },
  rateLimit: { enabled: false },
  lifecycle: { enabled: false },
  log: { level: 'info' },
});
// No DATABASE_URL: the embedded PostgreSQL. No REDIS_URL: one instance, the local bus.
const env = { DATABASE_URL: undefined, REDIS_URL: undefined };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'carrel-signals-'));
  dataDir = join(root, 'pgdata');
  port = await freePort();
});
afterAll(() => {
  for (const s of spawned) s.destroy();
  // Never leave a postmaster behind, whatever failed above.
  const pid = postmasterPid(dataDir);
  if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGQUIT');
  rmSync(root, { recursive: true, force: true });
});

describe('embedded PostgreSQL and terminal signals', () => {
  it('Ctrl-C to the process group: requests in flight are answered, then PostgreSQL stops, nothing is left behind', async () => {
    // initdb, migrations and seed on this first start.
    const serve = await startServe({ detached: true, env, config: config(), startTimeoutMs: 90_000 });
    spawned.push(serve);
    const pgPid = postmasterPid(dataDir);
    expect(pgPid).toBeDefined();
    const lister = await RpcClient.connect('127.0.0.1', serve.ports.rpc);
    const seats = (await lister.call<{ id: number }[]>('seats.list', { branch: 'Engineering Library' })).map((x) => x.id); // open around the clock
    lister.close();
    const dayAhead = Math.ceil((Date.now() + 86_400_000) / 3_600_000) * 3_600_000;
    const clients = await Promise.all(
      ['s1001', 's1002', 's1003'].map(async (studentId, i) => {
        const login = await RpcClient.connect('127.0.0.1', serve.ports.rpc);
        const { token } = await login.call<{ token: string }>('auth.login', { studentId, password: 'password123' });
        login.close();
        // Each student books a seat of its own, slot after slot, one booking at a time (a person
        // has one in flight: the server refuses a second at once, bookingInFlight).
        return new BookingClient(
          net.connect({ port: serve.ports.rpc, host: '127.0.0.1' }),
          token,
          (k) => {
            const start = dayAhead + k * 30 * 60_000;
            return { seatId: seats[i]!, start: new Date(start).toISOString(), end: new Date(start + 30 * 60_000).toISOString(), idempotencyKey: `sigint-${i}-${k}` };
          },
          1,
        );
      }),
    );
    await waitFor(() => clients.every((c) => c.replies.size + c.bad.length >= 20), 20_000, 'bookings to flow');
    const before = clients.map((c) => c.replies.size);
    // What a terminal does on Ctrl-C: SIGINT to every process in the foreground group.
    const signalledAt = Date.now();
    process.kill(-serve.child.pid!, 'SIGINT');
    const exit = await serve.exited;
    const tookMs = Date.now() - signalledAt;
    for (const c of clients) c.stop();
    await Promise.all(clients.map((c) => c.closed));

    expect(exit).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThanOrEqual(5_000);
    for (const [i, c] of clients.entries()) {
      // Every request carrel read was answered, and none with UNAVAILABLE: PostgreSQL was
      // still up while they finished (with the postmaster in the group, they all failed).
      expect(c.bad).toEqual([]);
      const answered = [...c.replies.keys()].sort((a, b) => a - b);
      expect(answered).toEqual(Array.from({ length: answered.length }, (_, k) => k + 1));
      expect(answered.length, 'requests in flight at the signal were answered').toBeGreaterThan(before[i]!);
    }
    // carrel stopped PostgreSQL itself, cleanly (the lock file goes on a clean shutdown).
    expect(alive(pgPid!)).toBe(false);
    expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(false);
    expect(serve.stdout()).toMatch(/"msg":"stopped"/);
    // Running as root, it made the 0700 temp directory traversable for the postgres OS user and
    // handed it the data directory: said at info level, not hidden among debug lines.
    if (process.getuid?.() === 0) {
      const info = serve
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: string; msg: string })
        .filter((l) => l.level === 'info')
        .map((l) => l.msg);
      expect(info).toContain(`made ${root} traversable (+x) for the 'postgres' OS user`);
      expect(info).toContain(`gave ${dataDir} (and everything in it) to the 'postgres' OS user`);
    }
  }, 120_000);

  it('SIGTERM to carrel alone, as a service manager or `docker stop` sends it to `node bin/carrel.js serve`: PostgreSQL stops too, exit 0', async () => {
    // The data directory is initialised by the test above: a plain start.
    const serve = await startServe({ env, config: config(), startTimeoutMs: 60_000 });
    spawned.push(serve);
    const pgPid = postmasterPid(dataDir);
    expect(pgPid).toBeDefined();
    // Only carrel's own pid, not its group (docs/operations.md, "Running as a service").
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
    expect(alive(pgPid!), 'no orphaned postmaster').toBe(false);
    expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(false);
    expect(serve.stdout()).toMatch(/"msg":"stopped"/);
  }, 90_000);

  it('SIGTERM while the embedded PostgreSQL is still starting stops the postmaster it started', async () => {
    const serve = spawnServe({ env, config: config() });
    spawned.push(serve);
    // The postmaster writes its lock file first thing; it is not accepting connections yet.
    let pgPid: number | undefined;
    await waitFor(() => (pgPid = postmasterPid(dataDir)) !== undefined || serve.child.exitCode !== null, 30_000, 'the postmaster to start');
    expect(pgPid, serve.stderr()).toBeDefined();
    serve.child.kill('SIGTERM');
    const exit = await serve.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(serve.stdout()).toMatch(/"msg":"stopped during start-up"/);
    expect(serve.stderr()).not.toMatch(/carrel .* is up/);
    expect(alive(pgPid!), 'no orphaned postmaster').toBe(false);
    expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(false);
  }, 60_000);
});
