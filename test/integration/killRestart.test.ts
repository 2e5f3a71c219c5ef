// kill -9 under booking load, then a restart (docs/architecture.md, "Invariants and where they are
// enforced"): the database stays consistent — every booking a client was told about is there, no
// two active holds of a seat overlap — and the new process's lifecycle worker picks up where the
// dead one left off (its advisory lock died with its connection).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/auth/tokens.js';
import { configSchema } from '../../src/config/schema.js';
import { projectRoot } from '../../src/paths.js';
import { RpcClient } from '../../clients/rpcClient.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { insertBooking, insertUser, seatsOf, statusOf } from '../support/fixtures.js';

let db: TestDatabase;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  db = await freshDatabase(4);
  dir = mkdtempSync(join(tmpdir(), 'carrel-kill-'));
  // The ports come from the machine-readable line; the lifecycle ticks often so the test is short.
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ ports: { rpc: 0, sensor: 0, pubsub: 0, http: 0 }, lifecycle: { tickMs: 100 }, log: { level: 'warn' } }),
  );
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  await db.drop();
});

/** Starts `carrel serve` (built by `npm test`'s pretest) and resolves with its RPC port. */
async function serve(): Promise<{ child: ChildProcess; rpc: number }> {
  const child = spawn(process.execPath, [join(projectRoot, 'bin', 'carrel.js'), 'serve'], {
    cwd: projectRoot,
    env: { ...process.env, DATABASE_URL: db.url, CARREL_CONFIG: join(dir, 'config.json'), LOG_LEVEL: 'warn', NODE_ENV: 'test' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  const rpc = await new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /^ports (\{.*\})$/m.exec(stderr);
      if (m) resolve((JSON.parse(m[1]!) as { rpc: number }).rpc);
    });
    child.once('exit', () => reject(new Error(`serve exited early:\n${stderr}`)));
  });
  return { child, rpc };
}

describe('kill -9 and restart', () => {
  it('loses no confirmed booking, overlaps none, and the next process runs the lifecycle', async () => {
    const seats = (await seatsOf(db.pool, 'Engineering Library')).slice(0, 12); // open around the clock
    const users = await Promise.all(Array.from({ length: 12 }, (_, i) => insertUser(db.pool, `Killer ${i}`)));
    const tokens = new TokenService({ secret: configSchema.parse({}).auth.jwtSecret, ttlSec: 600 });
    const dayAhead = Math.ceil((Date.now() + 86_400_000) / 3_600_000) * 3_600_000;

    const a = await serve();
    const confirmed: number[] = [];
    const clients = await Promise.all(users.map(() => RpcClient.connect('127.0.0.1', a.rpc)));
    // Each user books 30-minute slots on seats the others want too, so many attempts conflict;
    // they keep going until the process is killed under them.
    const load = users.map(async (u, i) => {
      const c = clients[i]!;
      c.token = tokens.issue(u).token;
      for (let k = 0; ; k++) {
        const seat = seats[(i + k) % seats.length]!;
        const start = new Date(dayAhead + (k % 6) * 30 * 60_000).toISOString();
        const end = new Date(Date.parse(start) + 30 * 60_000).toISOString();
        try {
          const r = await c.request('reservations.create', [{ seatId: seat.id, start, end, idempotencyKey: `k-${i}-${k}` }]);
          if (r.error === null) confirmed.push((r.result as { id: number }).id);
        } catch {
          return; // the connection died with the server
        }
      }
    });
    while (confirmed.length < 10) await new Promise((r) => setTimeout(r, 5));
    a.child.kill('SIGKILL');
    await Promise.all(load);
    expect(a.child.killed).toBe(true);
    expect(confirmed.length).toBeGreaterThan(0);

    // Every booking a client was told about is in the database, still CONFIRMED.
    const rows = await db.pool.query<{ id: number; status: string }>('SELECT id, status FROM reservations WHERE id = ANY($1)', [confirmed]);
    expect(rows.rows.map((r) => r.status).sort()).toEqual(confirmed.map(() => 'CONFIRMED'));
    // No two active holds of one seat overlap.
    const overlaps = await db.pool.query(
      `SELECT count(*)::int AS n FROM reservations a JOIN reservations b ON a.seat_id = b.seat_id AND a.id < b.id
        WHERE a.status IN ('CONFIRMED','CHECKED_IN','OFFERED') AND b.status IN ('CONFIRMED','CHECKED_IN','OFFERED') AND a.hold && b.hold`,
    );
    expect(overlaps.rows[0].n).toBe(0);

    // A booking whose check-in window closed while no server ran: the next process marks it.
    const late = await insertBooking(db.pool, {
      seatId: seats[0]!.id,
      userId: users[0]!.id,
      start: new Date(Math.floor((Date.now() - 60 * 60_000) / 900_000) * 900_000).toISOString(),
      end: new Date(Math.floor((Date.now() - 60 * 60_000) / 900_000) * 900_000 + 30 * 60_000).toISOString(),
    });
    const b = await serve();
    const deadline = Date.now() + 10_000;
    while ((await statusOf(db.pool, late)) === 'CONFIRMED' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await statusOf(db.pool, late)).toBe('NO_SHOW');
    const c = await RpcClient.connect('127.0.0.1', b.rpc);
    expect(await c.call('PING')).toBe('PONG');
    c.close();
    for (const cl of clients) cl.close();
    b.child.kill('SIGTERM');
    await new Promise((r) => b.child.once('exit', r));
  }, 60_000);
});
