// The `carrel` client end to end: the built CLI (npm test builds first) as a child process
// against a server in this process with a fake clock, HOME and XDG_CONFIG_HOME in a temp dir.
import { execFile } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { projectRoot } from '../../src/paths.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { MONDAY_10_NY, seatIdOf } from '../support/core.js';

let t: TestServer;
let home: string;
let server: string;

beforeAll(async () => {
  t = await startTestServer({}, { clock: new FakeClock(Date.parse(MONDAY_10_NY)) });
  home = mkdtempSync(join(tmpdir(), 'carrel-cli-'));
  server = `127.0.0.1:${t.server.ports.rpc}`;
});
afterAll(async () => t.close());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `carrel …` asynchronously (the server under test shares this event loop). */
function carrel(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(projectRoot, 'bin', 'carrel.js'), ...args, '--server', server],
      { env: { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: join(home, 'xdg'), TZ: 'UTC' }, timeout: 15_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const json = <T>(r: Run): T => {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as T;
};

describe('carrel CLI', () => {
  it('login → seats → reserve → mine → checkin → checkout → cancel, with the token remembered', async () => {
    const anon = await carrel('mine');
    expect(anon.code).toBe(1);
    expect(anon.stderr).toContain('error UNAUTHENTICATED');

    const login = await carrel('login', '--student-id', 's1001', '--password', 'password123');
    expect(login).toMatchObject({ code: 0, stderr: '' });
    expect(login.stdout).toContain('logged in as Ada Lovelace (s1001)');
    const tokenFile = join(home, 'xdg', 'carrel', 'token.json');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);

    const branches = await carrel('branches');
    expect(branches.stdout).toMatch(/^ID\s+BRANCH\s+TIMEZONE\s+FREE/);
    expect(branches.stdout).toContain('Main Library');

    const seats = json<Array<{ id: number; label: string; available: boolean }>>(
      await carrel('seats', '--branch', 'Main Library', '--area', 'Quiet Floor', '--power', '--available', '--json'),
    );
    expect(seats.length).toBeGreaterThan(0);
    expect(seats.every((s) => s.available)).toBe(true);

    const q1 = await seatIdOf(t, 'Q-01');
    const q2 = await seatIdOf(t, 'Q-02');
    const now = json<{ id: number; status: string; start: string }>(
      await carrel('reserve', String(q1), '--start', '2030-01-07T15:00:00Z', '--end', '2030-01-07T16:00:00Z', '--json'),
    );
    expect(now).toMatchObject({ status: 'CONFIRMED', start: '2030-01-07T15:00:00.000Z' });
    // Friendly local time (TZ=UTC here) and an idempotency key; the retry books nothing new.
    const laterArgs = ['reserve', String(q2), '--start', '2030-01-07 17:00', '--end', '2030-01-07 18:00', '--key', 'cli-1', '--json'];
    const later = json<{ id: number; start: string; end: string }>(await carrel(...laterArgs));
    expect(later).toMatchObject({ start: '2030-01-07T17:00:00.000Z', end: '2030-01-07T18:00:00.000Z' });
    expect(json<{ id: number }>(await carrel(...laterArgs)).id).toBe(later.id);

    const mine = json<{ reservations: Array<{ id: number }> }>(await carrel('mine', '--json'));
    expect(mine.reservations.map((r) => r.id)).toEqual([now.id, later.id]);
    const table = await carrel('mine');
    expect(table.stdout).toMatch(/^ID\s+SEAT\s+START\s+END\s+STATUS\n/);
    expect(table.stdout).toContain('2030-01-07 17:00');

    const checkin = await carrel('checkin', String(now.id));
    expect(checkin.stdout).toContain(`checked in: reservation ${now.id}`);
    expect(checkin.stdout).toContain('CHECKED_IN');
    expect(json<{ status: string; end: string }>(await carrel('checkout', String(now.id), '--json'))).toMatchObject({
      status: 'COMPLETED',
      end: '2030-01-07T15:15:00.000Z',
    });
    expect(json<{ status: string }>(await carrel('cancel', String(later.id), '--json')).status).toBe('CANCELLED');

    const again = await carrel('cancel', String(later.id));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('error FAILED_PRECONDITION');
    expect(again.stderr).toContain('[rule: status]');

    const history = json<{ reservations: Array<{ id: number; status: string }> }>(await carrel('mine', '--history', '--json'));
    expect(history.reservations.map((r) => [r.id, r.status])).toEqual([
      [later.id, 'CANCELLED'],
      [now.id, 'COMPLETED'],
    ]);

    const me = await carrel('call', 'auth.me');
    expect(JSON.parse(me.stdout)).toMatchObject({ user: { studentId: 's1001' } });

    expect((await carrel('logout')).stdout).toContain('logged out');
    expect((await carrel('call', 'auth.me')).code).toBe(1);
  }, 60_000);

  it('exits non-zero with the code on bad input and on a conflict', async () => {
    const badTime = await carrel('reserve', '1', '--start', 'whenever', '--end', '2030-01-07T16:00:00Z');
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain('cannot read the time');
    await carrel('login', '--student-id', 's1002', '--password', 'password123');
    const q3 = String(await seatIdOf(t, 'Q-03'));
    await carrel('reserve', q3, '--start', '2030-01-07T16:00:00Z', '--end', '2030-01-07T17:00:00Z');
    const clash = await carrel('reserve', q3, '--start', '2030-01-07T16:30:00Z', '--end', '2030-01-07T17:30:00Z');
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain('error CONFLICT');
    expect(clash.stderr).toContain('booked 2030-01-07 16:00 → 2030-01-07 17:00');
    const wrong = await carrel('login', '--student-id', 's1002', '--password', 'nope-nope');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('error UNAUTHENTICATED: wrong student id or password');
  }, 60_000);
});
