// `carrel db seed` and `carrel db migrate` beside a running `carrel serve` on the embedded
// PostgreSQL (README: `npm start`, then `npx carrel db seed`). They used to refuse ("pgdata is in
// use by PostgreSQL pid N… stop it first"); now they use the server's PostgreSQL on its port, leave
// it running, and the live server picks up what was seeded. Without a running server they start
// one of their own as before, and stop it again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { runBin } from '../support/cli.js';
import { waitFor } from '../support/fuzz.js';
import { startServe, type SpawnedServe } from '../support/serveProcess.js';
import { alive, freePort, postmasterPid } from '../support/processes.js';

let root: string;
let dataDir: string;
const spawned: SpawnedServe[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'carrel-dbcmds-'));
  dataDir = join(root, 'pgdata');
});
afterAll(() => {
  for (const s of spawned) s.destroy();
  const pid = postmasterPid(dataDir);
  if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGQUIT');
  rmSync(root, { recursive: true, force: true });
});

describe('carrel db seed / db migrate while carrel serve runs on the embedded PostgreSQL', () => {
  it('use the running server, leave it running, and the live server picks up the seeded branches', async () => {
    const serve = await startServe({
      // No DATABASE_URL: the embedded PostgreSQL; no REDIS_URL: one instance.
      env: { DATABASE_URL: undefined, REDIS_URL: undefined },
      config: {
        // Not seeded at first start, so what `db seed` adds is visibly new to the live server.
        db: { embedded: { dataDir, port: await freePort(), seedOnFirstStart: false } },
        // No timer: only an on-demand look can pick the seeded branches up.
        live: { refreshEveryMs: 0, refreshMinIntervalMs: 100 },
        lifecycle: { enabled: false },
        log: { level: 'info' },
      },
      startTimeoutMs: 90_000,
    });
    spawned.push(serve);
    const pgPid = postmasterPid(dataDir);
    expect(pgPid).toBeDefined();
    const rpc = await RpcClient.connect('127.0.0.1', serve.ports.rpc);
    try {
      expect(await rpc.call<unknown[]>('branches.list')).toEqual([]);

      // The commands a user types in a second terminal, with the server's own config.
      const env = { CARREL_CONFIG: serve.configFile, NODE_ENV: 'test' };
      const seed = await runBin(['db', 'seed'], env, 60_000);
      expect(seed.code, seed.stderr).toBe(0);
      expect(seed.stdout).toMatch(/^seeded$/m);
      expect(seed.stdout).toContain(`using the PostgreSQL already running in ${dataDir} (pid ${pgPid}`);
      const migrate = await runBin(['db', 'migrate', '--config', serve.configFile], { NODE_ENV: 'test' }, 60_000);
      expect(migrate.code, migrate.stderr).toBe(0);
      expect(migrate.stdout).toMatch(/^nothing to apply$/m); // serve migrated at start

      // The server's PostgreSQL is the same one, still running, and the server still serves.
      expect(postmasterPid(dataDir)).toBe(pgPid);
      expect(alive(pgPid!)).toBe(true);
      expect(serve.child.exitCode).toBeNull();
      expect(await rpc.call('PING')).toBe('PONG');

      // branches.list reads the branches from SQL, and a branch the live model does not know
      // makes it look in the database: the seeded branches come with live seat counts.
      // (The branch list is kept for discovery.branchListCacheMs, so they show within that.)
      let names: string[] = [];
      for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) {
        names = (await rpc.call<{ name: string }[]>('branches.list')).map((b) => b.name);
        if (names.includes('Main Library')) break;
      }
      expect(names).toEqual(expect.arrayContaining(['Main Library', 'Engineering Library']));
      await waitFor(() => serve.stdout().includes('live seat model picked up branches and seats added since start'), 10_000, 'the live model to pick up the seeded branches');
      expect((await rpc.call<unknown[]>('seats.list', { branch: 'Main Library' })).length).toBeGreaterThan(0);
    } finally {
      rpc.close();
    }

    // serve still owns its PostgreSQL: stopping serve stops it.
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
    expect(alive(pgPid!), 'serve stopped its PostgreSQL').toBe(false);

    // With no server running, `db migrate` starts the embedded PostgreSQL itself and stops it.
    const alone = await runBin(['db', 'migrate'], { CARREL_CONFIG: serve.configFile, NODE_ENV: 'test' }, 60_000);
    expect(alone.code, alone.stderr).toBe(0);
    expect(alone.stdout).toMatch(/^nothing to apply$/m);
    expect(alone.stdout).not.toContain('already running');
    expect(postmasterPid(dataDir), 'nothing left running').toBeUndefined();
  }, 120_000);
});
