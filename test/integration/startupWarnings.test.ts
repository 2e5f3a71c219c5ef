// `carrel serve` says at start what an operator must not miss (docs/http.md): the shipped JWT
// secret is accepted outside production, so it is named on stderr and in the log, every time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { spawnServe, startServe, type SpawnedServe } from '../support/serveProcess.js';

let db: TestDatabase;
const spawned: SpawnedServe[] = [];
beforeAll(async () => {
  db = await freshDatabase(2);
});
afterAll(async () => {
  for (const s of spawned) s.destroy();
  await db?.drop();
});

const WARNING = /^carrel: warning: auth\.jwtSecret is the shipped development secret: anyone can sign a token for any account\. Set JWT_SECRET/m;

/** Starts serve, stops it with SIGTERM, and returns what it printed. */
async function serveOnce(env: Record<string, string | undefined>): Promise<{ stderr: string; warnLines: Array<Record<string, unknown>> }> {
  const serve = await startServe({ env: { DATABASE_URL: db.url, REDIS_URL: undefined, ...env }, config: { lifecycle: { enabled: false } } });
  spawned.push(serve);
  serve.child.kill('SIGTERM');
  expect(await serve.exited).toEqual({ code: 0, signal: null });
  const warnLines = serve
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.level === 'warn');
  return { stderr: serve.stderr(), warnLines };
}

describe('startup warnings', () => {
  it('the shipped JWT secret outside production: one stderr line before the banner and one warn log line', async () => {
    const { stderr, warnLines } = await serveOnce({ JWT_SECRET: undefined, NODE_ENV: 'development' });
    expect(stderr).toMatch(WARNING);
    expect(stderr.match(new RegExp(WARNING.source, 'gm'))).toHaveLength(1);
    // Said before the banner, so it is not lost above it.
    expect(stderr.search(WARNING)).toBeLessThan(stderr.indexOf(' is up'));
    expect(warnLines.filter((l) => String(l.msg).startsWith('auth.jwtSecret is the shipped development secret'))).toHaveLength(1);
  }, 30_000);

  it('a secret of its own: no warning', async () => {
    const { stderr, warnLines } = await serveOnce({ JWT_SECRET: 'a-deployment-secret-of-its-own-0123' });
    expect(stderr).not.toMatch(/jwtSecret/);
    expect(warnLines.filter((l) => String(l.msg).includes('jwtSecret'))).toEqual([]);
  }, 30_000);

  it('NODE_ENV=production still refuses the shipped secret, naming the key', async () => {
    const serve = spawnServe({ env: { DATABASE_URL: db.url, JWT_SECRET: undefined, NODE_ENV: 'production' } });
    spawned.push(serve);
    const exit = await serve.exited;
    expect(exit.code).not.toBe(0);
    expect(serve.stderr()).toMatch(/auth\.jwtSecret is the shipped development secret; set JWT_SECRET for production/);
  }, 30_000);
});
