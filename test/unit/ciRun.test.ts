// .ci/run, the CI entry point: it runs the suite with CI=true (so the Redis suites fail rather
// than skip when Redis is missing, test/support/redis.ts), and its wait for PostgreSQL and Redis
// fails loudly instead of running on without them; it installs chromium for the browser tests
// when the machine has none. npm, pg_isready, redis-cli and apt-get are stubs here.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function stubs(scripts: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'carrel-ci-stubs-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('.ci/run', () => {
  it('runs npm ci, then npm test with CI=true and the machine database and Redis', () => {
    const bin = stubs({
      npm: 'echo "CI=$CI DATABASE_URL=$DATABASE_URL REDIS_URL=$REDIS_URL npm $*" >> "$STUB_LOG"',
      pg_isready: 'exit 0',
      'redis-cli': 'echo PONG',
      chromium: 'exit 0',
      'apt-get': 'echo "apt-get $*" >> "$STUB_LOG"',
    });
    const log = join(bin, 'calls.log');
    const run = spawnSync(join(projectRoot, '.ci', 'run'), {
      env: { ...process.env, CI: undefined, DATABASE_URL: undefined, REDIS_URL: undefined, CHROMIUM_PATH: join(bin, 'chromium'), PATH: `${bin}:${process.env.PATH}`, STUB_LOG: log },
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      'CI=true DATABASE_URL= REDIS_URL= npm ci --no-audit --no-fund',
      'CI=true DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 npm test',
    ]);
  });

  it('installs chromium with apt when the machine has none, before the tests', () => {
    const bin = stubs({ npm: 'echo "npm $*" >> "$STUB_LOG"', pg_isready: 'exit 0', 'redis-cli': 'echo PONG', 'apt-get': 'echo "apt-get $*" >> "$STUB_LOG"' });
    const log = join(bin, 'calls.log');
    const run = spawnSync(join(projectRoot, '.ci', 'run'), {
      env: { ...process.env, CI: undefined, CHROMIUM_PATH: join(bin, 'no-chromium-here'), PATH: `${bin}:${process.env.PATH}`, STUB_LOG: log },
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('ci: installing chromium');
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['apt-get update -qq', 'apt-get install -y -qq chromium', 'npm ci --no-audit --no-fund', 'npm test']);
  });

  it('fails, naming each one, when PostgreSQL or Redis never comes up', async () => {
    const [pg, redis] = [await closedPort(), await closedPort()];
    const started = Date.now();
    const wait = spawnSync(join(projectRoot, '.ci', 'wait-for-services'), ['127.0.0.1', String(pg), '127.0.0.1', String(redis), '1'], { encoding: 'utf8' });
    expect(wait.status).toBe(1);
    expect(wait.stderr).toContain(`PostgreSQL at 127.0.0.1:${pg} did not come up within 1s`);
    expect(wait.stderr).toContain(`Redis at 127.0.0.1:${redis} did not come up within 1s`);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('counts Redis as up only when it answers PONG, and names only the one that is down', () => {
    // redis-cli exits 0 on any reply; a Redis still loading its data set is not serving yet.
    const bin = stubs({ pg_isready: 'exit 0', 'redis-cli': 'echo "LOADING Redis is loading the dataset in memory"' });
    const wait = spawnSync(join(projectRoot, '.ci', 'wait-for-services'), ['127.0.0.1', '5432', '127.0.0.1', '6379', '1'], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      encoding: 'utf8',
    });
    expect(wait.status).toBe(1);
    expect(wait.stderr).not.toContain('PostgreSQL');
    expect(wait.stderr).toContain('Redis at 127.0.0.1:6379 did not come up within 1s');
  });
});
