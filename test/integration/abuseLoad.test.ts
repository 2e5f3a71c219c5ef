// `carrel bench abuse` against a real server: every flood runs beside the well-behaved client,
// both phases are measured, and the flooders' answers are counted by code — the rate limiter's
// refusals included. Floods here are a few connections for half a second: this checks the tool
// (and needs `npm run build`: the flood runs as dist/loadtest/flooder.js), not the speed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ABUSE_DEFAULTS, FLOOD_NAMES, abuse, abuseComparisons, abuseMarkdown, type FloodFigures } from '../../loadtest/abuse.js';
import { BenchContext } from '../../loadtest/scenarios.js';
import { externalTarget } from '../../loadtest/target.js';
import { startTestServer, type TestServer } from '../support/server.js';

describe('bench abuse', () => {
  let t: TestServer;
  let figures: FloodFigures[];

  beforeAll(async () => {
    // A tight auth limit, so the register flood meets RESOURCE_EXHAUSTED within half a second.
    t = await startTestServer({
      lifecycle: { enabled: false },
      rateLimit: { rules: [{ name: 'auth', per: 'connection', methods: ['auth.login', 'auth.register'], ratePerSec: 20, burst: 10 }] },
    });
    const ctx = new BenchContext(externalTarget('127.0.0.1', t.server.ports, process.pid));
    figures = await abuse(ctx, {
      floods: [...FLOOD_NAMES],
      durationMs: 500,
      settleMs: 150,
      reads: { connections: 2, depth: 8 },
      branches: { connections: 1, depth: 8 },
      register: { connections: 2, depth: 4 },
      health: { connections: 4, everyMs: 100 },
      minLogins: 3,
      repeats: 1,
    });
  }, 120_000);
  afterAll(async () => t?.close());

  const flood = (name: string): FloodFigures => figures.find((f) => f.flood === name)!;

  it('runs every flood in order, each after an idle phase of the same well-behaved client', () => {
    expect(figures.map((f) => f.flood)).toEqual([...FLOOD_NAMES]);
    for (const f of figures) {
      expect(Object.keys(f.idle.activities)).toEqual(Object.keys(f.underFlood.activities));
      expect(f.idle.windowS).toBeGreaterThanOrEqual(0.5);
      expect(f.underFlood.windowS).toBeGreaterThanOrEqual(0.5);
      // Idle, the server answers every probe with 200.
      const probes = f.idle.activities.readyz!;
      expect(probes.count).toBeGreaterThan(0);
      expect(probes.ok).toBe(probes.count);
      expect(f.recoveredInS).not.toBeNull();
    }
  });

  it('reads and branches: the client lists its reservations and books and cancels in both phases; the flooders are answered OK', () => {
    for (const name of ['reads', 'branches']) {
      const f = flood(name);
      for (const phase of [f.idle, f.underFlood]) {
        const { mine, book } = phase.activities;
        expect(mine!.ok).toBe(mine!.count);
        expect(mine!.count).toBeGreaterThan(2);
        expect(mine!.latency.p50Ms).toBeGreaterThan(0);
        expect(book!.ok).toBeGreaterThan(0);
        expect(book!.ok).toBe(book!.count);
      }
      const r = f.flooders!;
      expect(r.connectionsOpen).toBe(name === 'reads' ? 2 : 1);
      expect(r.answers.OK).toBeGreaterThan(0);
      expect(r.answers.OK).toBeLessThanOrEqual(r.sent);
      expect(r.latency.count).toBe(Object.values(r.answers).reduce((a, b) => a + b, 0));
    }
  });

  it('register: honest logins succeed idle; the flooders meet CONFLICT for the existing id, then the rate limit, and keep going', () => {
    const f = flood('register');
    expect(f.idle.activities.login!.count).toBeGreaterThanOrEqual(3);
    expect(f.idle.activities.login!.ok).toBe(f.idle.activities.login!.count);
    expect(f.underFlood.activities.login!.count).toBeGreaterThanOrEqual(3);
    const r = f.flooders!;
    expect(r.answers.CONFLICT).toBeGreaterThan(0);
    // The per-address registration limit (burst 20, 2/s) and the per-connection auth limit: most
    // of half a second's flood is refused, and ignored.
    const refused = Object.entries(r.answers).filter(([code]) => code.startsWith('RESOURCE_EXHAUSTED')).reduce((n, [, k]) => n + k, 0);
    expect(refused).toBeGreaterThan(0);
  });

  it('health: the pollers are answered 200 on their keep-alive connections, and four of them leave /readyz answering', () => {
    const f = flood('health');
    expect(f.flooders!.connectionsOpen).toBe(4);
    expect(f.flooders!.answers['200']).toBeGreaterThan(4);
    const probes = f.underFlood.activities.readyz!;
    expect(probes.ok).toBe(probes.count);
  });

  it('reports both phases side by side and a target for each of the issue\'s promises', () => {
    const md = abuseMarkdown(figures);
    for (const name of FLOOD_NAMES) expect(md).toContain(`#### ${name}: `);
    expect(md).toContain('| reservations.mine p50 ms |');
    expect(md).toContain('| honest logins ok (failed) |');
    // Each target once, by name (what follows in brackets or after a comma is the count).
    const targets = figures.flatMap((f) => abuseComparisons(f, 3)).map((c) => c.what.replace(/ \(of \d+\)|, .*$/g, ''));
    expect(targets).toEqual([
      'reads: reservations.mine p50', 'reads: reservations.mine p99', 'reads: bookings a second', 'reads: /readyz answered 200',
      'branches: reservations.mine p50', 'branches: reservations.mine p99', 'branches: bookings a second', 'branches: /readyz answered 200',
      'register: honest logins ok', 'register: auth.login p50', 'register: /readyz answered 200',
      'health: /readyz answered 200',
    ]);
  });

  it('refuses a target that is not this machine', async () => {
    const far = new BenchContext(externalTarget('10.1.2.3', t.server.ports));
    await expect(abuse(far, { floods: ['reads'], durationMs: 100, settleMs: 0, repeats: 1, ...ABUSE_DEFAULTS })).rejects.toThrow(/only a server on this machine/);
  });
});
