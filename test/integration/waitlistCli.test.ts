import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenStore, tokenFilePath } from '../../clients/tokenStore.js';
import type { CliIo } from '../../clients/cliIo.js';
import { registerWaitlistCommands } from '../../clients/waitlistCommands.js';
import { FakeClock } from '../../src/core/clock.js';
import { insertBooking, insertUser, seatsOf } from '../support/fixtures.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Friendly times ("today 16:15") are read in the branch's zone, whatever this machine's.
process.env.TZ = 'Australia/Sydney';

let t: TestServer;
const clock = new FakeClock(Date.parse('2026-01-05T15:00:00Z'));

beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false } }, { clock });
});
afterAll(async () => t.close());

/** Runs `carrel waitlist …` in-process with its own config dir; returns what it printed. */
async function carrel(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<{ out: string; err: string; code: number }> {
  const res = { out: '', err: '', code: 0 };
  const io: CliIo = { out: (s) => void (res.out += s), err: (s) => void (res.err += s), setExitCode: (c) => void (res.code = c), env, now: () => new Date(clock.now()) };
  const program = new Command().exitOverride();
  registerWaitlistCommands(program, io);
  await program.parseAsync(['node', 'carrel', 'waitlist', ...argv, '--server', `127.0.0.1:${t.server.ports.rpc}`]);
  return res;
}

describe('carrel waitlist', () => {
  it('joins, lists as a table or JSON, claims an offer and leaves, with the stored token', async () => {
    const env = { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'carrel-cli-')) };
    const user = await insertUser(t.db.pool);
    const owner = await insertUser(t.db.pool);
    const [seat] = await seatsOf(t.db.pool, 'Main Library');
    await insertBooking(t.db.pool, { seatId: seat!.id, userId: owner.id, start: '2026-01-05T17:00:00Z', end: '2026-01-05T19:00:00Z' });

    const notLoggedIn = await carrel(env, 'list');
    expect(notLoggedIn.code).toBe(1);
    expect(notLoggedIn.err).toMatch(/not logged in/);

    const store = new TokenStore(tokenFilePath(env));
    const issued = t.tokens.issue(user);
    // The server runs on a fake clock; the CLI judges expiry by the real one.
    store.set(`127.0.0.1:${t.server.ports.rpc}`, { token: issued.token, expiresAt: '2999-01-01T00:00:00Z', user });
    expect(statSync(store.path).mode & 0o777).toBe(0o600);

    const joined = await carrel(env, 'join', '--seat', String(seat!.id), '--start', '2026-01-05T17:00:00Z', '--end', '2026-01-05T18:00:00Z', '--json');
    expect(joined.code).toBe(0);
    const entry = JSON.parse(joined.out);
    expect(entry).toMatchObject({ seatId: seat!.id, status: 'WAITING', position: 1 });

    const table = await carrel(env, 'list');
    expect(table.code).toBe(0);
    expect(table.out.split('\n')[0]).toMatch(/^ID\s+STATUS\s+POS\s+FOR\s+START\s+END\s+OFFER$/);
    expect(table.out).toMatch(new RegExp(`^${entry.id}\\s+WAITING\\s+1\\s+seat ${seat!.label} \\(Main Library\\)`, 'm'));

    await t.db.pool.query(`UPDATE reservations SET status = 'CANCELLED' WHERE seat_id = $1`, [seat!.id]);
    await t.waitlist.onSlotFreed({ seatId: seat!.id, branchId: seat!.branchId, start: new Date('2026-01-05T17:00:00Z'), end: new Date('2026-01-05T19:00:00Z') });
    // The offer says the seat, the time to claim by in the branch's zone, and the command.
    expect((await carrel(env, 'list')).out).toMatch(
      new RegExp(`^${entry.id}\\s+OFFERED\\s+-\\s+seat ${seat!.label} \\(Main Library\\).*claim by 2026-01-05 \\d\\d:\\d\\d EST: carrel waitlist claim ${entry.id}$`, 'm'),
    );

    const claimed = await carrel(env, 'claim', String(entry.id));
    expect(claimed.code).toBe(0);
    expect(claimed.out).toMatch(/^RESERVATION\s+BRANCH\s+SEAT\s+START\s+END\s+STATUS/);
    expect(claimed.out).toContain(` Main Library  ${seat!.label} `);
    expect(claimed.out).toMatch(/CONFIRMED/);

    const leaveClaimed = await carrel(env, 'leave', String(entry.id), '--json');
    expect(leaveClaimed.code).toBe(1);
    expect(JSON.parse(leaveClaimed.err)).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule: 'alreadyClaimed' } });
    // The same error for people, printed as every other command prints one.
    const leaveText = await carrel(env, 'leave', String(entry.id));
    expect(leaveText.code).toBe(1);
    // …and what to do instead: cancel the reservation the offer became.
    const rid = (JSON.parse((await carrel(env, 'list', '--json')).out) as Array<{ reservationId: number }>)[0]!.reservationId;
    expect(leaveText.err).toMatch(new RegExp(`^error FAILED_PRECONDITION: .* \\[rule: alreadyClaimed\\]\\nnext: carrel cancel ${rid} --server \\S+ {3}\\(the reservation the offer became\\)\\n$`));

    const bad = await carrel(env, 'leave', 'abc');
    expect(bad.code).toBe(2);
    const neither = await carrel(env, 'join', '--start', '2026-01-05T17:00', '--end', '2026-01-05T18:00');
    expect(neither.code).toBe(2);
    expect(neither.err).toMatch(/--seat <id-or-label> or --branch <name>/);
  });

  it('reads times as reserve does ("today 21:15"), and shows them in the branch zone', async () => {
    const env = { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'carrel-cli-')) };
    const user = await insertUser(t.db.pool);
    const owner = await insertUser(t.db.pool);
    const seat = (await seatsOf(t.db.pool, 'Main Library'))[1]!;
    // The fake clock is 2026-01-05 15:00Z (10:00 in New York); the CLI's "today" is read against it.
    await insertBooking(t.db.pool, { seatId: seat.id, userId: owner.id, start: '2026-01-05T21:00:00Z', end: '2026-01-05T23:00:00Z' });
    new TokenStore(tokenFilePath(env)).set(`127.0.0.1:${t.server.ports.rpc}`, { token: t.tokens.issue(user).token, expiresAt: '2999-01-01T00:00:00Z', user });
    // "today 16:15" is 16:15 in New York (21:15Z), though this machine is in Sydney, where it is tomorrow.
    const joined = await carrel(env, 'join', '--seat', seat.label, '--start', 'today 16:15', '--end', 'today 17:15', '--json');
    expect(joined.err).toBe('');
    expect(joined.code).toBe(0);
    expect(JSON.parse(joined.out)).toMatchObject({ seatId: seat.id, start: '2026-01-05T21:15:00.000Z', end: '2026-01-05T22:15:00.000Z' });
    const shown = await carrel(env, 'list');
    expect(shown.out).toMatch(new RegExp(`^\\d+\\s+WAITING\\s+1\\s+seat ${seat.label} \\(Main Library\\)\\s+2026-01-05 16:15 EST\\s+2026-01-05 17:15 EST$`, 'm'));
    const bad = await carrel(env, 'join', '--seat', String(seat.id), '--start', 'whenever', '--end', 'today 22:15');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--start: cannot read the time "whenever"');
  });
});
