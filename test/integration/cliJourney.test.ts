// The booking journey as a student types it, end to end through the built `carrel` CLI (child
// processes, as test/integration/cli.test.ts runs it) against a server in this process on a
// fake clock: two new students register and log in (each with their own config dir), the
// first finds a powered seat in a branch, reserves it, lists it, checks in and leaves early;
// the second, who found it taken, waits for it, is offered the freed time and claims it.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { projectRoot } from '../../src/paths.js';
import { MONDAY_10_NY, iso } from '../support/core.js';
import { startTestServer, type TestServer } from '../support/server.js';

const clock = new FakeClock(Date.parse(MONDAY_10_NY)); // Monday 10:00 in New York
let t: TestServer;
let server: string;

beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false } }, { clock });
  server = `127.0.0.1:${t.server.ports.rpc}`;
});
afterAll(async () => t.close());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A student at their own machine: their own HOME and config dir (so their own token). */
function student(): (...args: string[]) => Promise<Run> {
  const home = mkdtempSync(join(tmpdir(), 'carrel-journey-'));
  return (...args) =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [join(projectRoot, 'bin', 'carrel.js'), ...args, '--server', server],
        { env: { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: join(home, 'xdg'), TZ: 'UTC' }, timeout: 15_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
}

function json<T>(r: Run): T {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as T;
}

interface Reservation {
  id: number;
  seatId: number;
  userId: number;
  start: string;
  end: string;
  status: string;
}

describe('the booking journey through the carrel CLI', () => {
  it('register → login → find a powered seat → reserve → mine → checkin → checkout; a second student waits, is offered the seat and claims it', async () => {
    const ada = student();
    const ben = student();
    const password = 'correct horse battery';

    // Two new accounts (each student on their own machine, so these may run side by side); a
    // taken student id is refused.
    const [registered, benRegistered] = await Promise.all([
      ada('register', '--student-id', 'j-ada', '--name', 'Ada Journey', '--password', password),
      ben('register', '--student-id', 'j-ben', '--name', 'Ben Journey', '--password', password, '--json'),
    ]);
    expect(registered).toMatchObject({ code: 0, stderr: '' });
    expect(registered.stdout).toContain('registered Ada Journey (j-ada); now run: carrel login --student-id j-ada');
    expect(json<{ user: { studentId: string; role: string } }>(benRegistered).user).toMatchObject({ studentId: 'j-ben', role: 'student' });
    const taken = await ben('register', '--student-id', 'j-ada', '--name', 'Someone Else', '--password', password);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('error CONFLICT');

    const [adaIn, benIn] = await Promise.all([
      ada('login', '--student-id', 'j-ada', '--password', password),
      ben('login', '--student-id', 'j-ben', '--password', password),
    ]);
    expect(adaIn.stdout).toContain('logged in as Ada Journey (j-ada)');
    expect(benIn.stdout).toContain('logged in as Ben Journey (j-ben)');

    // A powered seat in the Main Library, free for 10:00-11:00 New York time.
    const window = ['--start', MONDAY_10_NY, '--end', iso(MONDAY_10_NY, 60)];
    const seats = json<Array<{ id: number; branch: string; label: string; hasPower: boolean; available: boolean }>>(
      await ada('seats', '--branch', 'Main Library', '--power', '--available', ...window, '--json'),
    );
    expect(seats.length).toBeGreaterThan(0);
    expect(seats.every((s) => s.branch === 'Main Library' && s.hasPower && s.available)).toBe(true);
    const seat = seats[0]!.id;

    const booked = json<Reservation>(await ada('reserve', String(seat), ...window, '--key', 'journey-1', '--json'));
    expect(booked).toMatchObject({ seatId: seat, start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 60), status: 'CONFIRMED' });

    // Ben wants the same seat: taken (a free seat could not be waited for), so he joins its
    // waitlist for that hour.
    const entry = json<{ id: number; status: string; position: number; seatId: number }>(await ben('waitlist', 'join', '--seat', String(seat), ...window, '--json'));
    expect(entry).toMatchObject({ seatId: seat, status: 'WAITING', position: 1 });

    const mine = await ada('mine');
    expect(mine.stdout).toMatch(/^ID\s+BRANCH\s+SEAT\s+START\s+END\s+STATUS\n/);
    // Tables show the branch, the seat's label and times in the branch's zone (Main Library: New
    // York), whatever the machine's TZ.
    expect(mine.stdout).toMatch(new RegExp(`^${booked.id}\\s+Main Library\\s+${seats[0]!.label}\\s+2030-01-07 10:00 EST\\s+2030-01-07 11:00 EST\\s+CONFIRMED`, 'm'));

    expect((await ada('checkin', String(booked.id))).stdout).toContain(`checked in: reservation ${booked.id}`);
    clock.advance(10 * 60_000); // 10:10: Ada leaves early
    const left = json<Reservation>(await ada('checkout', String(booked.id), '--json'));
    expect(left).toMatchObject({ status: 'COMPLETED', end: iso(MONDAY_10_NY, 15) });

    // The freed time went to Ben: an offer on his entry, which he claims.
    const waiting = json<Array<{ id: number; status: string; offer?: { reservationId: number; seatId: number; offerExpiresAt: string } }>>(
      await ben('waitlist', 'list', '--json'),
    );
    expect(waiting).toEqual([expect.objectContaining({ id: entry.id, status: 'OFFERED', offer: expect.objectContaining({ seatId: seat }) })]);
    const claimed = await ben('waitlist', 'claim', String(entry.id));
    expect(claimed).toMatchObject({ code: 0, stderr: '' });
    expect(claimed.stdout).toMatch(new RegExp(`^${waiting[0]!.offer!.reservationId}\\s+Main Library\\s+${seats[0]!.label}\\s+.*CONFIRMED`, 'm'));

    const bens = json<{ reservations: Reservation[] }>(await ben('mine', '--json'));
    expect(bens.reservations).toEqual([
      expect.objectContaining({ id: waiting[0]!.offer!.reservationId, seatId: seat, end: iso(MONDAY_10_NY, 60), status: 'CONFIRMED' }),
    ]);
  }, 60_000);
});
