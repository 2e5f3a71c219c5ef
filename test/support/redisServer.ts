// A Redis of a test's own (hardening issue: fault tests stop their own servers, never the
// machine's shared one): `redis-server` on a spare port with no persistence, a child of the test
// process, so stopping it really stops Redis and a new one on the same port starts empty.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './processes.js';

/** Whether `redis-server` is on PATH; in CI (CI=true) it must be, as the Redis suites must run there. */
export const redisServerAvailable = (() => {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  const ok = probe.status === 0;
  if (!ok && process.env.CI === 'true') throw new Error('CI=true but redis-server is not on PATH: the Redis restart test must run in CI');
  if (!ok) process.stderr.write('tests: redis-server is not on PATH; skipping the tests that start their own Redis\n');
  return ok;
})();

export interface OwnRedis {
  port: number;
  url: string;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** SHUTDOWN NOSAVE (it keeps nothing: the next one on this port starts empty); resolves once it has exited. */
  shutdown(): Promise<void>;
  /** SIGKILL if it still runs (afterAll, even after a failure). */
  kill(): void;
}

/** Starts `redis-server` on `port` (a free one if omitted) and resolves when it answers PING. */
export async function startRedisServer(port?: number): Promise<OwnRedis> {
  const p = port ?? (await freePort());
  const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  let running = true;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      running = false;
      resolve();
    });
    child.once('error', () => {
      running = false;
      resolve();
    });
  });
  const url = `redis://127.0.0.1:${p}`;
  const own: OwnRedis = {
    port: p,
    url,
    child,
    exited,
    async shutdown() {
      if (!running) return;
      const c = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
      c.on('error', () => undefined);
      try {
        await c.connect();
        // No reply comes: the connection closes as Redis exits.
        await c.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
      } finally {
        c.disconnect();
      }
      await exited;
    },
    kill() {
      if (running) child.kill('SIGKILL');
    },
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (!running) throw new Error(`redis-server on port ${p} exited at start: ${output}`);
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    c.on('error', () => undefined);
    try {
      await c.connect();
      if ((await c.ping()) === 'PONG') return own;
    } catch {
      // not listening yet
    } finally {
      c.disconnect();
    }
    if (Date.now() > deadline) {
      own.kill();
      throw new Error(`redis-server on port ${p} did not answer within 10 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
