// The `carrel` client end to end against a server in this process with a fake clock, HOME and
// XDG_CONFIG_HOME in a temp dir. Commands run in-process (test/support/cli.ts); the few claims
// about the process itself (main.ts's --json usage errors) run the built binary.
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { runBin, runCli, shellWords, type CliRun } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { MONDAY_10_NY, seatIdOf } from '../support/core.js';

// Friendly times ("2030-01-07 12:00") are read in the branch's zone, whatever this machine's:
// run the commands in a zone far from the branches' to show it.
process.env.TZ = 'Asia/Tokyo';

const clock = new FakeClock(Date.parse(MONDAY_10_NY));
let t: TestServer;
let server: string;

beforeAll(async () => {
  t = await startTestServer({}, { clock });
  server = `127.0.0.1:${t.server.ports.rpc}`;
});
afterAll(async () => t.close());

/** A fresh config dir: a user of the CLI who has not logged in anywhere yet. */
function newUser(): NodeJS.ProcessEnv {
  const home = mkdtempSync(join(tmpdir(), 'carrel-cli-'));
  return { HOME: home, XDG_CONFIG_HOME: join(home, 'xdg') };
}

function cli(env: NodeJS.ProcessEnv) {
  return (...argv: string[]): Promise<CliRun> => runCli([...argv, '--server', server], { env, now: () => new Date(clock.now()) });
}

const json = <T>(r: CliRun): T => {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as T;
};

/** A --json failure: nothing on stdout, one JSON object on stderr, a non-zero exit. */
const jsonError = (r: CliRun): { code: string; message: string; details?: Record<string, unknown> } => {
  expect(r.stdout).toBe('');
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  return JSON.parse(r.stderr);
};

describe('carrel CLI', () => {
  it('login → seats → reserve → mine → checkin → checkout → cancel, with the token remembered', async () => {
    const env = newUser();
    const carrel = cli(env);
    const anon = await carrel('mine');
    expect(anon.code).toBe(1);
    // In the words of the command line: no RPC method names, and what to type next.
    expect(anon.stderr).toBe(`error UNAUTHENTICATED: not logged in to ${server}\nnext: carrel login --server ${server}\n`);

    const login = await carrel('login', '--student-id', 's1001', '--password', 'password123');
    expect(login).toMatchObject({ code: 0, stderr: '' });
    expect(login.stdout).toContain('logged in as Ada Lovelace (s1001)');
    const tokenFile = join(env.XDG_CONFIG_HOME!, 'carrel', 'token.json');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);

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
    // The seat by its label, a friendly time in the branch's zone (New York, though this machine
    // is in Tokyo) and an idempotency key; the retry books nothing new.
    const laterArgs = ['reserve', 'Q-02', '--start', '2030-01-07 12:00', '--end', '2030-01-07 13:00', '--key', 'cli-1', '--json'];
    const later = json<{ id: number; start: string; end: string }>(await carrel(...laterArgs));
    expect(later).toMatchObject({ seatId: q2, start: '2030-01-07T17:00:00.000Z', end: '2030-01-07T18:00:00.000Z' });
    expect(json<{ id: number }>(await carrel(...laterArgs)).id).toBe(later.id);

    const mine = json<{ reservations: Array<{ id: number }> }>(await carrel('mine', '--json'));
    expect(mine.reservations.map((r) => r.id)).toEqual([now.id, later.id]);
    // The branch and the seat's label; times in the branch's zone (Main Library: New York),
    // marked: 17:00Z is 12:00 EST.
    const table = await carrel('mine');
    expect(table.stdout).toMatch(/^ID\s+BRANCH\s+SEAT\s+START\s+END\s+STATUS\n/);
    expect(table.stdout).toMatch(new RegExp(`^${later.id}\\s+Main Library\\s+Q-02\\s+2030-01-07 12:00 EST\\s+2030-01-07 13:00 EST\\s+CONFIRMED$`, 'm'));

    const checkin = await carrel('checkin', String(now.id));
    expect(checkin.stdout).toBe(`checked in: reservation ${now.id}: seat Q-01 (Main Library, id ${q1}), 2030-01-07 10:00 → 11:00 EST, CHECKED_IN\n`);
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
  });

  it('exits non-zero with the code on bad input and on a conflict, the clash in the branch zone', async () => {
    const carrel = cli(newUser());
    const badTime = await carrel('reserve', '1', '--start', 'whenever', '--end', '2030-01-07T16:00:00Z');
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain('cannot read the time');
    await carrel('login', '--student-id', 's1002', '--password', 'password123');
    const q3 = String(await seatIdOf(t, 'Q-03'));
    // Someone else holds the seat then (the same user would be told overlapsOwnBooking).
    const other = cli(newUser());
    await other('login', '--student-id', 's1003', '--password', 'password123');
    await other('reserve', q3, '--start', '2030-01-07T16:00:00Z', '--end', '2030-01-07T17:00:00Z');
    const clash = await carrel('reserve', q3, '--start', '2030-01-07T16:30:00Z', '--end', '2030-01-07T17:30:00Z');
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain('error CONFLICT');
    expect(clash.stderr).toContain('(booked 2030-01-07 11:00 → 12:00 EST)');
    const wrong = await carrel('login', '--student-id', 's1002', '--password', 'nope-nope');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('error UNAUTHENTICATED: wrong student id or password');
  });

  it('reserve without a seat books the best free one of --branch that matches, and says which and where', async () => {
    const carrel = cli(newUser());
    await carrel('register', '--student-id', 'cli-best', '--name', 'Best Seat', '--password', 'best-seat-1');
    await carrel('login', '--student-id', 'cli-best', '--password', 'best-seat-1');
    // Times typed in the branch's zone; the first free Group Study seat with power (G-01, G-02 have it; G-03 does not).
    const booked = await carrel('reserve', '--branch', 'main library', '--area', 'Group Study', '--power', '--start', '2030-01-08 09:00', '--end', '2030-01-08 10:00');
    expect(booked.stderr).toBe('');
    expect(booked.stdout).toMatch(/^booked reservation \d+: seat G-01 \(Group Study, Main Library, id \d+\), 2030-01-08 09:00 → 10:00 EST, CONFIRMED\n$/);
    const asJson = json<{ seatId: number }>(
      await carrel('reserve', '--branch', 'Main Library', '--near', 'R-05', '--start', '2030-01-08 10:00', '--end', '2030-01-08 11:00', '--json'),
    );
    expect(asJson.seatId).toBe(await seatIdOf(t, 'R-05'));
    // None free that matches: said so, with the waitlist to join for any seat of the branch.
    const none = await carrel('reserve', '--branch', 'Main Library', '--area', 'No Such Area', '--start', '2030-01-08 12:00', '--end', '2030-01-08 13:00');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('error CONFLICT: no seat of Main Library that matches is free 2030-01-08 12:00 → 13:00 EST');
    expect(none.stderr).toContain(`next: carrel waitlist join --branch 'Main Library' --start '2030-01-08 12:00' --end '2030-01-08 13:00' --server ${server}`);
    // Filters belong to the form without a seat; without a seat, --branch is needed.
    expect((await carrel('reserve', 'Q-04', '--power', '--start', '2030-01-08 12:00', '--end', '2030-01-08 13:00')).code).toBe(2);
    expect((await carrel('reserve', '--start', '2030-01-08 12:00', '--end', '2030-01-08 13:00')).code).toBe(2);
  });

  it('registers an account that can then log in; a taken id or a short password is refused', async () => {
    const carrel = cli(newUser());
    const made = await carrel('register', '--student-id', 'cli-reg-1', '--name', 'Grace Hopper', '--password', 'cobol-1959');
    expect(made).toMatchObject({ code: 0, stderr: '' });
    expect(made.stdout).toBe(`registered Grace Hopper (cli-reg-1); now run: carrel login --student-id cli-reg-1 --server ${server}\n`);
    const row = await t.db.pool.query<{ name: string; role: string }>('SELECT name, role FROM users WHERE student_id = $1', ['cli-reg-1']);
    expect(row.rows).toEqual([{ name: 'Grace Hopper', role: 'student' }]);
    expect((await carrel('login', '--student-id', 'cli-reg-1', '--password', 'cobol-1959')).stdout).toContain('logged in as Grace Hopper (cli-reg-1)');

    const asJson = json<{ user: { studentId: string; role: string } }>(
      await carrel('register', '--student-id', 'cli-reg-2', '--name', 'Alan Turing', '--password', 'enigma-1939', '--json'),
    );
    expect(asJson.user).toMatchObject({ studentId: 'cli-reg-2', role: 'student' });

    const taken = await carrel('register', '--student-id', 'cli-reg-1', '--name', 'Someone Else', '--password', 'another-pass');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/^error CONFLICT: /);
    expect(jsonError(await carrel('register', '--student-id', 'cli-reg-3', '--name', 'X', '--password', 'short', '--json')).code).toBe('INVALID_ARGUMENT');
  });

  it('with --json every error is one JSON object on stderr with its code, and the exit code stays non-zero', async () => {
    const carrel = cli(newUser());
    expect(jsonError(await carrel('mine', '--json'))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(jsonError(await carrel('seats', '--branch', 'Nowhere', '--json'))).toMatchObject({ code: 'NOT_FOUND', details: { branch: 'Nowhere' } });
    const usage = await carrel('reserve', '1', '--start', 'whenever', '--end', '2030-01-07T16:00:00Z', '--json');
    expect(usage.code).toBe(2);
    expect(jsonError(usage)).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('cannot read the time') });
    await carrel('login', '--student-id', 's1003', '--password', 'password123');
    const q4 = String(await seatIdOf(t, 'Q-04'));
    expect(jsonError(await carrel('reserve', q4, '--start', '2030-01-07T15:10:00Z', '--end', '2030-01-07T16:10:00Z', '--json'))).toMatchObject({
      code: 'FAILED_PRECONDITION',
      details: { rule: 'slotGranularity' },
    });
    expect(jsonError(await carrel('cancel', '987654', '--json')).code).toBe('NOT_FOUND');
    const down = await runCli(['branches', '--json', '--server', '127.0.0.1:1'], { env: newUser() });
    expect(jsonError(down)).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('cannot connect to 127.0.0.1:1') });
  });

  it('the binary prints commander usage errors as JSON with --json, and as text with help without', async () => {
    const env = { ...newUser(), TZ: 'UTC' };
    const [asJson, asText] = await Promise.all([runBin(['reserve', '1', '--json', '--server', server], env), runBin(['reserve', '1', '--server', server], env)]);
    expect(asJson.code).not.toBe(0);
    expect(asJson.stdout).toBe('');
    expect(JSON.parse(asJson.stderr)).toEqual({ code: 'INVALID_ARGUMENT', message: "required option '--start <time>' not specified" });
    expect(asText.code).not.toBe(0);
    expect(asText.stderr).toMatch(/^error: required option '--start <time>' not specified\n/);
    expect(asText.stderr).toContain('Usage: carrel reserve');
  });

  it('branches shows opening hours; seats refuses an unknown branch; checkin --help names no fixed window', async () => {
    const carrel = cli(newUser());
    const branches = await carrel('branches');
    expect(branches.stdout).toMatch(/^ID\s+BRANCH\s+TIMEZONE\s+HOURS\s+FREE/);
    expect(branches.stdout).toMatch(/Main Library\s+America\/New_York\s+daily 07:00-23:00\s+\d/);
    expect(branches.stdout).toMatch(/Medical Library\s+America\/Los_Angeles\s+Mon-Fri 08:00-22:00, Sat-Sun 10:00-20:00\s+\d/);

    const nowhere = await carrel('seats', '--branch', 'Nowhere');
    expect(nowhere.code).toBe(1);
    expect(nowhere.stdout).toBe('');
    expect(nowhere.stderr).toBe('carrel: no branch "Nowhere"; branches: Main Library, Engineering Library, Medical Library\n');
    // A branch is named in any case, as the server reads it (docs/protocol.md, "Branch references").
    const lower = await carrel('seats', '--branch', 'main library', '--json');
    expect(lower.code).toBe(0);
    expect((JSON.parse(lower.stdout) as Array<{ branch: string }>).every((x) => x.branch === 'Main Library')).toBe(true);
    // A real branch with nothing matching is still an answer, not an error.
    const none = await carrel('seats', '--branch', 'Main Library', '--area', 'Roof');
    expect(none).toMatchObject({ code: 0, stdout: 'no seats match\n' });
    const byId = await carrel('seats', '--branch', '999999');
    expect(byId.code).toBe(1);

    const help = await carrel('checkin', '--help');
    expect(help.stdout).toContain('check-in window');
    expect(help.stdout).not.toMatch(/\d+ min/);
  });

  it('a refusal says what to type next, in the branch\'s time, and each suggested command works as printed', async () => {
    // Each student on their own machine; the fake clock is Monday 10:00 in New York.
    const student = async (id: string) => {
      const run = cli(newUser());
      expect((await run('register', '--student-id', id, '--name', id, '--password', 'long-enough-1')).code).toBe(0);
      expect((await run('login', '--student-id', id, '--password', 'long-enough-1')).code).toBe(0);
      return run;
    };
    /** Runs a "next:" line as printed (its trailing "(why)" note is not part of the command). */
    const paste = (run: ReturnType<typeof cli>, line: string) => {
      const words = shellWords(line.replace(/^(next|  or): /, '').replace(/ {3}\(.*\)$/, ''));
      expect(words[0]).toBe('carrel');
      return run(...words.slice(1));
    };
    const nextLines = (r: CliRun) => r.stderr.split('\n').filter((l) => /^(next|  or): /.test(l));
    const rpcNames = /\b(auth|reservations|waitlist|seats|branches)\.[a-zA-Z]+/;
    const ada = await student('next-ada');
    const ben = await student('next-ben');

    // Past closing: the hours and the asked time in the branch's zone, and an open window to book instead.
    const late = await ada('reserve', 'Q-05', '--start', '2030-01-07 22:00', '--end', '2030-01-08 00:00');
    expect(late.code).toBe(1);
    expect(late.stderr).toBe(
      'error FAILED_PRECONDITION: Main Library is open daily 07:00-23:00 (America/New_York time); you asked for 2030-01-07 22:00 EST → 2030-01-08 00:00 EST [rule: openingHours]\n' +
        `next: carrel reserve Q-05 --branch 'Main Library' --start '2030-01-07 21:00' --end '2030-01-07 23:00' --server ${server}\n`,
    );
    const booked = await paste(ada, nextLines(late)[0]!);
    expect(booked.stdout).toMatch(/^booked reservation \d+: seat Q-05 \(Main Library, id \d+\), 2030-01-07 21:00 → 23:00 EST, CONFIRMED\n$/);

    // The seat is taken for Ben: another seat, or its waitlist, each ready to paste.
    const taken = await ben('reserve', 'Q-05', '--start', '2030-01-07 22:00', '--end', '2030-01-07 23:00');
    expect(taken.stderr).toMatch(/^error CONFLICT: the seat is already booked for part of that time \(booked 2030-01-07 21:00 → 23:\d\d EST\)\n/);
    const [others, wait] = nextLines(taken);
    expect(others).toBe(`next: carrel seats --branch 'Main Library' --available --start '2030-01-07 22:00' --end '2030-01-07 23:00' --server ${server}   (another seat, free then)`);
    expect(wait).toBe(`  or: carrel waitlist join --seat Q-05 --branch 'Main Library' --start '2030-01-07 22:00' --end '2030-01-07 23:00' --server ${server}   (wait for this one)`);
    expect((await paste(ben, others!)).stdout).toMatch(/^ID\s+BRANCH\s+AREA\s+LABEL/);
    expect((await paste(ben, wait!)).stdout).toMatch(/^\d+\s+WAITING\s+1\s+seat Q-05 \(Main Library\)\s+2030-01-07 22:00 EST\s+2030-01-07 23:00 EST/m);

    // Waiting for a seat that is free: book it instead, as printed.
    const free = await ben('waitlist', 'join', '--seat', 'Q-06', '--start', '2030-01-07 15:00', '--end', '2030-01-07 16:00');
    expect(free.stderr).toBe(
      'error FAILED_PRECONDITION: seat Q-06 (Main Library) is free 2030-01-07 15:00 → 16:00 EST: book it rather than wait [rule: seatAvailable]\n' +
        `next: carrel reserve Q-06 --branch 'Main Library' --start '2030-01-07 15:00' --end '2030-01-07 16:00' --server ${server}\n`,
    );
    expect((await paste(ben, nextLines(free)[0]!)).stdout).toContain('booked reservation');

    for (const r of [late, taken, free]) expect(r.stderr).not.toMatch(rpcNames);
    // The server's own message keeps its words for programs (--json), in the branch's zone too.
    const asJson = jsonError(await ada('reserve', 'Q-07', '--start', '2030-01-07 22:00', '--end', '2030-01-08 00:00', '--json'));
    expect(asJson).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule: 'openingHours', timezone: 'America/New_York' } });
    expect(asJson.message).toContain('it asks Mon 2030-01-07 22:00 → Tue 2030-01-08 00:00 (America/New_York); open Mon 07:00-23:00');
  });

  it('reserve finds a seat by its label in any case; an unknown label or a label in another branch is named', async () => {
    const carrel = cli(newUser());
    await carrel('login', '--student-id', 's1003', '--password', 'password123');
    const r8 = await seatIdOf(t, 'R-08');
    const booked = json<{ seatId: number }>(await carrel('reserve', 'r-08', '--start', '2030-01-07 14:00', '--end', '2030-01-07 15:00', '--json'));
    expect(booked.seatId).toBe(r8);
    const unknown = await carrel('reserve', 'Z-99', '--start', '2030-01-07 14:00', '--end', '2030-01-07 15:00');
    expect(unknown).toMatchObject({ code: 1, stdout: '' });
    expect(unknown.stderr).toMatch(/^carrel: no seat labelled "Z-99" in any branch \(labels start .*G-.*\); `carrel seats` lists them\n$/);
    const elsewhere = await carrel('reserve', 'R-08', '--branch', 'Medical Library', '--start', '2030-01-07 14:00', '--end', '2030-01-07 15:00');
    expect(elsewhere.stderr).toMatch(/^carrel: no seat labelled "R-08" in Medical Library/);
    const byIdElsewhere = await carrel('reserve', String(r8), '--branch', 'Medical Library', '--start', '2030-01-07 14:00', '--end', '2030-01-07 15:00');
    expect(byIdElsewhere.stderr).toBe(`carrel: seat ${r8} is R-08 in Main Library, not in Medical Library\n`);
    // A huge label never reaches the server.
    expect((await carrel('reserve', 'x'.repeat(10_000), '--start', '2030-01-07 14:00', '--end', '2030-01-07 15:00')).code).toBe(2);
  });

  it('sit books a free seat by its label from the slot under way, checked in; a taken seat is a conflict', async () => {
    const walker = cli(newUser());
    const other = cli(newUser());
    await walker('register', '--student-id', 'cli-sit-1', '--name', 'Walk In', '--password', 'walk-in-2030');
    await walker('login', '--student-id', 'cli-sit-1', '--password', 'walk-in-2030');
    await other('register', '--student-id', 'cli-sit-2', '--name', 'Too Late', '--password', 'walk-in-2030');
    await other('login', '--student-id', 'cli-sit-2', '--password', 'walk-in-2030');
    const q07 = await seatIdOf(t, 'Q-07');
    const sat = json<{ seatId: number; status: string; start: string; end: string }>(await walker('sit', 'q-07', '--json'));
    expect(sat).toMatchObject({ seatId: q07, status: 'CHECKED_IN' });
    // From the slot under way: it began at or before now, never after.
    expect(Date.parse(sat.start)).toBeLessThanOrEqual(clock.now());
    expect(Date.parse(sat.end)).toBeGreaterThan(clock.now());
    const taken = await other('sit', 'Q-07');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/^error CONFLICT/);
    const text = await walker('mine');
    expect(text.stdout).toMatch(/Q-07/);
  });

  it('mine pages with --cursor (printing the next one) or takes every page with --all', async () => {
    const env = newUser();
    const carrel = cli(env);
    await carrel('login', '--student-id', 'admin', '--password', 'admin-pass-2026');
    const ids: number[] = [];
    for (const [label, hour] of [['R-01', 16], ['R-02', 17], ['R-03', 18]] as const) {
      const seat = String(await seatIdOf(t, label));
      ids.push(json<{ id: number }>(await carrel('reserve', seat, '--start', `2030-01-08T${hour}:00:00Z`, '--end', `2030-01-08T${hour + 1}:00:00Z`, '--json')).id);
    }
    const first = await carrel('mine', '--limit', '2');
    expect(first.code).toBe(0);
    const cursor = new RegExp(`\\(more: carrel mine --limit 2 --cursor (\\S+) --server ${server}, or --all\\)$`, 'm').exec(first.stdout)?.[1];
    expect(cursor).toBeDefined();
    expect(first.stdout.split('\n').filter((l) => /^\d/.test(l))).toHaveLength(2);
    const second = json<{ reservations: Array<{ id: number }>; nextCursor: string | null }>(await carrel('mine', '--limit', '2', '--cursor', cursor!, '--json'));
    expect(second).toEqual({ reservations: [expect.objectContaining({ id: ids[2] })], nextCursor: null });
    const all = json<{ reservations: Array<{ id: number }>; nextCursor: string | null }>(await carrel('mine', '--all', '--limit', '1', '--json'));
    expect(all.reservations.map((r) => r.id)).toEqual(ids);
    expect(all.nextCursor).toBeNull();

    // A check-in outside the window says when it opens, in the branch's zone, the local time
    // alone (no ISO instant before it), and the command to run then.
    const early = await carrel('checkin', String(ids[0]));
    expect(early.code).toBe(1);
    expect(early.stderr).toBe(
      `error FAILED_PRECONDITION: check-in is open 2030-01-08 10:45 → 11:15 EST, not yet [rule: checkInWindow]\n` +
        `next: carrel checkin ${ids[0]} --server ${server}   (from 2030-01-08 10:45 EST)\n`,
    );
  });
});
