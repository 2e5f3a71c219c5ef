// The live-port clients against a real server on port 0: the sensor simulator and `carrel watch`,
// as the start-up banner prints them, at a high rate, with the remembered token, under signals.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulate } from '../../clients/sensorSim.js';
import { banner } from '../../src/cli/serve.js';
import { runBin, runCli, shellWords, spawnBin } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server.js';

let t: TestServer;
let at: { rpc: string; sensor: string; pubsub: string };

beforeAll(async () => {
  t = await startTestServer();
  const p = t.server.ports;
  at = { rpc: `127.0.0.1:${p.rpc}`, sensor: `127.0.0.1:${p.sensor}`, pubsub: `127.0.0.1:${p.pubsub}` };
});
afterAll(async () => t.close());

function newUser(): NodeJS.ProcessEnv {
  const home = mkdtempSync(join(tmpdir(), 'carrel-live-'));
  return { HOME: home, XDG_CONFIG_HOME: join(home, 'xdg') };
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The arguments of the banner's `npx carrel …` line that contains `needle`. */
function bannerCommand(needle: string): string[] {
  const line = banner(t.config, t.server.ports, '').split('\n').find((l) => l.includes(needle));
  expect(line).toBeDefined();
  const words = shellWords(line!.replace(/^try:/, ''));
  expect(words.slice(0, 2)).toEqual(['npx', 'carrel']);
  return words.slice(2);
}

const lines = (text: string) => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('live clients', () => {
  it("the banner's watch and simulate commands work as printed for a server on port 0; SIGINT stops watch", async () => {
    const sim = bannerCommand('sensors simulate');
    expect(sim).toEqual(['sensors', 'simulate', '--branch', 'Main Library', '--server', at.sensor, '--pubsub', at.pubsub]);
    const watchArgs = bannerCommand('carrel watch');
    expect(watchArgs).toEqual(['watch', 'Main Library', '--server', at.pubsub]);

    const env = newUser();
    const watcher = spawnBin([...watchArgs, '--json'], env);
    await until(() => watcher.output.stdout.includes('"type":"snapshot"'), 'the watcher\'s snapshot');
    const run = await runBin([...sim, '--duration', '1', '--rate', '200'], env);
    expect(run.code).toBe(0);
    const stats = JSON.parse(run.stdout) as { sent: number; applied: number; stale: number; unknownSeats: number; errors: number };
    expect(stats.sent).toBeGreaterThan(50);
    expect(stats).toMatchObject({ applied: stats.sent, stale: 0, unknownSeats: 0, errors: 0 });
    await until(() => watcher.output.stdout.includes('"cause":"sensor"'), 'a seat event caused by the simulator');

    watcher.child.kill('SIGINT');
    const done = await watcher.done;
    expect(done.code).toBe(0);
    const frames = lines(done.stdout);
    expect(frames[0]).toMatchObject({ type: 'subscribed', personal: false });
    expect(frames.filter((f) => f.type === 'seat' && f.cause === 'sensor').length).toBeGreaterThan(0);
  });

  it('at 5,000 readings/s every reading is applied and none is stale (each seat\'s `at` strictly increases)', async () => {
    const stats = await simulate({
      server: at.sensor,
      pubsub: at.pubsub,
      branch: 'Main Library',
      rate: 5000,
      durationSec: 1.2,
      pattern: 'random',
      periodSec: 60,
      key: 'dev-sensor-key',
      sensorId: 'sim-high-rate',
      quiet: true,
    });
    expect(stats.sent).toBeGreaterThan(3000);
    expect(stats).toMatchObject({ stale: 0, applied: stats.sent, unknownSeats: 0, errors: 0, reconnects: 0 });
  });

  it('simulate stops on its signal: the last acks are counted and the stats come back at once', async () => {
    const ac = new AbortController();
    const before = t.live.counters.readings;
    const started = Date.now();
    const run = simulate({ server: at.sensor, seats: 20, rate: 200, pattern: 'random', periodSec: 60, key: 'dev-sensor-key', sensorId: 'sim-abort', quiet: true, signal: ac.signal });
    await until(() => t.live.counters.readings > before, 'the first readings');
    ac.abort();
    const stats = await run;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(stats.sent).toBeGreaterThan(0);
    expect(stats.applied).toBe(stats.sent);
  });

  it('SIGINT to `carrel sensors simulate` ends it in order: stats on stdout, exit 0', async () => {
    const before = t.live.counters.readings;
    const sim = spawnBin(['sensors', 'simulate', '--server', at.sensor, '--seats', '10', '--rate', '100'], newUser());
    await until(() => t.live.counters.readings > before, 'the simulator\'s first readings');
    sim.child.kill('SIGINT');
    const done = await sim.done;
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ sent: expect.any(Number), errors: 0 });
  });

  it('an unreachable subscriber port names itself and the --pubsub that fixes it', async () => {
    const run = await runBin(['sensors', 'simulate', '--branch', 'Main Library', '--server', '127.0.0.1:1', '--duration', '1'], newUser());
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('cannot list the seats of "Main Library" from the subscriber port 127.0.0.1:2');
    expect(run.stderr).toContain('name it with --pubsub host:port');
  });

  it('watch sends the token `carrel login` remembered for the server it watches; --no-token opts out', async () => {
    const env = newUser();
    const login = await runCli(['login', '--student-id', 's1001', '--password', 'password123', '--server', at.rpc], { env });
    expect(login.code).toBe(0);
    const watchFor = (...extra: string[]) => runCli(['watch', 'Main Library', '--server', at.pubsub, '--json', '--duration', '0.3', ...extra], { env });
    const [remembered, without, elsewhere] = await Promise.all([
      watchFor(),
      watchFor('--no-token'),
      // Another user (no login) watching the same port gets no personal events.
      runCli(['watch', 'Main Library', '--server', at.pubsub, '--json', '--duration', '0.3'], { env: newUser() }),
    ]);
    expect(lines(remembered.stdout)[0]).toMatchObject({ type: 'subscribed', personal: true });
    expect(lines(without.stdout)[0]).toMatchObject({ type: 'subscribed', personal: false });
    expect(lines(elsewhere.stdout)[0]).toMatchObject({ type: 'subscribed', personal: false });

    const refused = await runCli(['watch', 'Main Library', '--server', at.pubsub, '--token', 'not-a-jwt', '--duration', '2'], { env });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('server said UNAUTHENTICATED');
  });
});
