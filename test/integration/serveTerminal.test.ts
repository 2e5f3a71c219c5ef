// `carrel serve` as a person starts it in a terminal, and as a service manager starts it: short
// readable log lines on a terminal (on a pseudo-terminal made by `script`), JSON lines when
// stdout is a pipe, and Ctrl-C in the terminal a clean stop with exit 0 (docs/operations.md).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { runInPty, screenText, type PtyRun } from '../support/pty.js';
import { startServe, type ServeProcess } from '../support/serveProcess.js';

let db: TestDatabase;
let dir: string;
const running: Array<PtyRun | ServeProcess> = [];

beforeAll(async () => {
  db = await freshDatabase(4);
  dir = mkdtempSync(join(tmpdir(), 'carrel-tty-'));
});
afterAll(async () => {
  for (const r of running) 'kill' in r ? r.kill() : r.destroy();
  rmSync(dir, { recursive: true, force: true });
  await db?.drop();
});

// An SLA line every 300 ms, so one shows up within the test.
const CONFIG = { ports: { rpc: 0, sensor: 0, pubsub: 0, http: 0 }, lifecycle: { enabled: false }, sla: { reportEveryMs: 300 }, log: { level: 'info' } };

function serveInTerminal(env: NodeJS.ProcessEnv = {}): PtyRun {
  const configFile = join(dir, `config-${running.length}.json`);
  writeFileSync(configFile, JSON.stringify(CONFIG));
  const run = runInPty(['serve'], { DATABASE_URL: db.url, CARREL_CONFIG: configFile, NODE_ENV: 'test', ...env });
  running.push(run);
  return run;
}

describe('serve in a terminal', () => {
  it('logs short pretty lines, the SLA line as one sentence, and stops on Ctrl-C with exit 0', async () => {
    const run = serveInTerminal();
    await run.waitFor(/INFO: sla: no requests in 300 ms/);
    const screen = screenText(run.output());
    expect(screen).toMatch(/^\[\d{2}:\d{2}:\d{2}\] INFO: carrel is up {2}ports=\{"rpc":\d+,/m);
    expect(screen).toContain('carrel 0.1.0 is up');
    expect(screen).not.toContain('{"level"');
    // Said once, by the log, not again on stderr to the same screen.
    expect(screen.match(/shipped development secret/g)).toHaveLength(1);
    for (const line of screen.split('\n').filter((l) => / (INFO|WARN): /.test(l) && !l.includes('development secret'))) expect(line.length).toBeLessThan(160);

    run.type('\x03');
    expect(await run.exited).toBe(0);
    expect(screenText(run.output())).toMatch(/INFO: stopped {2}tookMs=\d+/);
  });

  it('LOG_FORMAT=json keeps JSON lines on a terminal', async () => {
    const run = serveInTerminal({ LOG_FORMAT: 'json' });
    await run.waitFor(/"msg":"sla"/);
    const logLines = screenText(run.output())
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(1);
    for (const l of logLines) expect(JSON.parse(l)).toHaveProperty('level');
    run.type('\x03');
    expect(await run.exited).toBe(0);
  });

  it('with stdout a pipe (a service manager, a container, | tee) every stdout line is JSON, SLA included', async () => {
    const serve = await startServe({ env: { DATABASE_URL: db.url, REDIS_URL: undefined }, config: { ...CONFIG, ports: undefined } });
    running.push(serve);
    await new Promise((r) => setTimeout(r, 700));
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
    const lines = serve.stdout().split('\n').filter((l) => l !== '');
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string; sla?: unknown });
    expect(parsed.some((l) => l.msg === 'sla' && typeof l.sla === 'object')).toBe(true);
    expect(parsed.at(-1)!.msg).toBe('stopped');
  });
});
