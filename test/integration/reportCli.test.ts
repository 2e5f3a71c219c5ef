// `carrel report` (docs/reports.md): the table, --json, and the --html page, over a week of
// simulated history; a student is told it is for admins; bad dates are the command line's fault.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenStore, tokenFilePath } from '../../clients/tokenStore.js';
import { FakeClock } from '../../src/core/clock.js';
import { simulateHistory } from '../../src/history/simulate.js';
import type { UtilizationReportWire } from '../../src/reports/utilization.js';
import { makeUsers, type TestUser } from '../support/core.js';
import { runCli } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server.js';

const NOW = Date.parse('2030-02-05T17:00:00Z'); // Tuesday, noon in New York
let t: TestServer;
let server: string;
let admin: TestUser;
let student: TestUser;

beforeAll(async () => {
  const clock = new FakeClock(NOW);
  t = await startTestServer({ lifecycle: { enabled: false } }, { clock });
  server = `127.0.0.1:${t.server.ports.rpc}`;
  admin = (await makeUsers(t, 1, 'cli-report-admin', 'admin'))[0]!;
  student = (await makeUsers(t, 1, 'cli-report-student'))[0]!;
  await simulateHistory(t.db.pool, {
    days: 7,
    seed: 3,
    nowMs: NOW,
    branch: 'Main Library',
    slotMinutes: 15,
    checkInGraceMinutes: 15,
    awayHoldMs: 20 * 60_000,
    staleAfterMs: 60_000,
  });
});
afterAll(async () => t.close());

function as(user: TestUser): NodeJS.ProcessEnv {
  const env = { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'carrel-report-')) };
  new TokenStore(tokenFilePath(env)).set(server, { token: user.token, expiresAt: '2999-01-01T00:00:00Z', user: { id: user.id, studentId: user.studentId, name: user.studentId, role: 'admin' } });
  return env;
}
const report = (user: TestUser, ...argv: string[]) => runCli(['report', '--branch', 'Main Library', ...argv, '--server', server], { env: as(user), now: () => new Date(NOW) });

describe('carrel report', () => {
  it('prints a table with one row per day and a total, in hours', async () => {
    const r = await report(admin, '--from', '2030-01-29', '--to', '-1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^Main Library, 2030-01-29 to 2030-02-04 \(America\/New_York\), by day: 54 seats/);
    expect(lines[2]).toMatch(/^DAY\s+BOOKED h\s+ATTENDED h\s+GHOST h\s+OF IT AWAY h\s+NO SENSOR h\s+NO-SHOWS\s+UNBOOKED h\s+PEAK\s+UTILIZATION$/);
    expect(lines.filter((l) => /^2030-0[12]-\d\d\s/.test(l))).toHaveLength(7);
    expect(lines.find((l) => l.startsWith('TOTAL'))).toMatch(/^TOTAL\s+[\d,]+\.\d\s+[\d,]+\.\d\s+[\d,]+\.\d/);
  });

  it('--json is the server\'s answer; --by seat marks the seats without a sensor', async () => {
    const r = await report(admin, '--from', '2030-01-29', '--to', '2030-02-04', '--by', 'seat', '--json');
    expect(r.code).toBe(0);
    const body = JSON.parse(r.stdout) as UtilizationReportWire;
    expect(body).toMatchObject({ by: 'seat', from: '2030-01-29', to: '2030-02-04', seats: 54 });
    expect(body.buckets).toHaveLength(54);
    const unsensed = body.buckets.filter((b) => 'sensor' in b && !b.sensor);
    expect(unsensed.map((b) => ('label' in b ? b.label : '')).sort()).toEqual([...body.seatsWithoutSensor.labels].sort());
    for (const b of unsensed) expect(b).toMatchObject({ attendedMinutes: null, ghostMinutes: null, utilizationPct: null });
  });

  it('--html writes one self-contained page with the three charts', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'carrel-report-html-')), 'report.html');
    const r = await report(admin, '--from', '2030-01-29', '--to', '2030-02-04', '--html', file);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`wrote ${file}`);
    const html = readFileSync(file, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    // Self-contained: nothing fetched, nothing run.
    expect(html).not.toMatch(/<script|<link|@import|src=|href="http|url\(http/i);
    expect(html.match(/<svg /g)).toHaveLength(3);
    for (const title of ['Occupancy by weekday and hour', 'Booked seat-hours per day', 'seats with the most ghost hours']) expect(html).toContain(title);
    expect(html.match(/How to read this:/g)).toHaveLength(3);
    // The heatmap has all 7 × 24 squares, each with its figure in a tooltip.
    expect(html.match(/<title>(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) \d+:00-/g)).toHaveLength(168);
    // One stacked bar per day.
    expect(html.match(/<title>(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d+ (Jan|Feb): booked/g)).toHaveLength(7);
  });

  it('is for admins, and a bad date is the command line\'s fault', async () => {
    const refused = await report(student, '--from', '2030-01-29');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error PERMISSION_DENIED: .*`carrel report` is for admins/);
    const bad = await report(admin, '--from', 'last tuesday');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--from takes a date/);
    const tooLong = await report(admin, '--from', '2029-01-01', '--to', '2030-02-01');
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toMatch(/^error INVALID_ARGUMENT: a report by day covers at most 366 days/);
  });
});
