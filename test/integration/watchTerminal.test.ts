// `carrel watch` as a student runs it, in a terminal (a pseudo-terminal made by `script`), against
// a server in this process on a fake clock: a waitlist offer stays on screen with the entry id
// that `carrel waitlist claim` takes and the claim-by time in the branch's zone, whatever comes
// after it; `l` shows labels; a seat whose sensor went offline keeps its last known state,
// marked; a mistyped branch is answered with the real ones, on the screen, with exit 1.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTimeInput } from '../../clients/timeInput.js';
import { TokenStore, tokenFilePath } from '../../clients/tokenStore.js';
import { FakeClock } from '../../src/core/clock.js';
import { runCli } from '../support/cli.js';
import { insertBooking, insertUser, seatsOf } from '../support/fixtures.js';
import { connectSensor, sendReadings } from '../support/live.js';
import { runInPty, screenText, type PtyRun } from '../support/pty.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Monday 2026-01-05 10:00 in New York.
const clock = new FakeClock(Date.parse('2026-01-05T15:00:00Z'));
let t: TestServer;
let rpc: string;
let pubsub: string;
const runs: PtyRun[] = [];

beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false }, sensors: { offlineAfterMs: 60_000 } }, { clock });
  rpc = `127.0.0.1:${t.server.ports.rpc}`;
  pubsub = `127.0.0.1:${t.server.ports.pubsub}`;
});
afterAll(async () => {
  for (const r of runs) r.kill();
  await t.close();
});

function watchInTerminal(args: string[], env: NodeJS.ProcessEnv = {}): PtyRun {
  const run = runInPty(['watch', ...args, '--server', pubsub], { HOME: mkdtempSync(join(tmpdir(), 'carrel-watch-')), ...env }, { columns: 120 });
  runs.push(run);
  return run;
}

/** The screen as last drawn: the text after the last clear-screen, ANSI codes kept. */
const lastScreen = (raw: string): string => raw.slice(raw.lastIndexOf('\x1b[H\x1b[2J'));

describe('carrel watch in a terminal', () => {
  it('a mistyped branch lists the real ones on the screen and exits 1', async () => {
    const typo = watchInTerminal(['Main Libary']);
    expect(await typo.exited).toBe(1);
    expect(screenText(typo.output())).toContain('carrel: no branch "Main Libary"; branches: Main Library, Engineering Library, Medical Library\n');
    // The same words without a terminal (a pipe, a script), on stdout with the other lines.
    const piped = await runCli(['watch', 'Main Libary', '--server', pubsub, '--duration', '5'], { env: { HOME: mkdtempSync(join(tmpdir(), 'carrel-watch-')) } });
    expect(piped.code).toBe(1);
    expect(piped.stdout).toBe('carrel: no branch "Main Libary"; branches: Main Library, Engineering Library, Medical Library\n');
  });

  it('an offer stays on screen with entry id, seat and claim-by time; `l` shows labels; offline seats keep their state, marked; `q` quits', async () => {
    const env = { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'carrel-watch-xdg-')) };
    const user = await insertUser(t.db.pool);
    const owner = await insertUser(t.db.pool);
    const [first, second] = await seatsOf(t.db.pool, 'Main Library');
    const booking = await insertBooking(t.db.pool, { seatId: first!.id, userId: owner.id, start: '2026-01-05T17:00:00Z', end: '2026-01-05T19:00:00Z' });
    // Logged in as `carrel login` leaves it: the token, and the server's ports.
    new TokenStore(tokenFilePath(env)).set(rpc, { token: t.tokens.issue(user).token, expiresAt: '2999-01-01T00:00:00Z', user, ports: t.server.ports as unknown as Record<string, number> });
    const joined = await runCli(['waitlist', 'join', '--seat', first!.label, '--start', 'today 12:00', '--end', 'today 14:00', '--server', rpc, '--json'], {
      env,
      now: () => new Date(clock.now()),
    });
    expect(joined.stderr).toBe('');
    const entryId = (JSON.parse(joined.stdout) as { id: number }).id;

    const run = watchInTerminal(['Main Library'], env);
    await run.waitFor(/live on \S+, with your personal events/);

    // The seat is freed: the waitlist offers it to the watcher.
    await t.db.pool.query(`UPDATE reservations SET status = 'CANCELLED' WHERE id = $1`, [booking]);
    await t.waitlist.onSlotFreed({ seatId: first!.id, branchId: first!.branchId, start: new Date('2026-01-05T17:00:00Z'), end: new Date('2026-01-05T19:00:00Z') });
    const offer = new RegExp(
      `your offers \\(claim before they lapse\\):\\n  offer on waitlist entry ${entryId}: seat ${first!.label} \\(Main Library\\), 2026-01-05 12:00 → 14:00 EST; claim by \\d\\d:\\d\\d EST: carrel waitlist claim ${entryId}\\n`,
    );
    await run.waitFor(offer);

    // A sensor makes another seat occupied: the event is the last one; the offer is still there.
    const sensor = await connectSensor(t.server.ports.sensor);
    await sendReadings(sensor, [{ seatId: second!.id, occupied: true, at: clock.now() - 1000 }]);
    await run.waitFor(new RegExp(`last: #\\d+ ${second!.label} → occupied \\(sensor\\)`));
    expect(screenText(lastScreen(run.output()))).toMatch(offer);

    // The sensor falls silent: the seat stays occupied (and unbooked) on the map, on grey.
    clock.advance(70_000);
    t.live.tick();
    await run.waitFor(/sensors offline 1 \(last known state, on grey\)/);
    const screen = lastScreen(run.output());
    expect(screen).toContain('\x1b[35;100m!\x1b[0m');
    expect(screenText(screen)).not.toMatch(/^ {2}Group Study +.*\?/m);

    run.type('l');
    await run.waitFor(new RegExp(`Group Study +${first!.label} +G-02 +G-03`));
    run.type('q');
    expect(await run.exited).toBe(0);
    // The last view is left on the screen.
    expect(screenText(lastScreen(run.output()))).toMatch(offer);
    sensor.destroy();
  });
});

describe('carrel watch started after the offer was made', () => {
  it('shows the offers already waiting (waitlist.mine), worded as those that arrive', async () => {
    // The real clock here: offers lapse by this machine's clock when they were not seen arrive.
    const live = await startTestServer({ lifecycle: { enabled: false } });
    try {
      const at = { rpc: `127.0.0.1:${live.server.ports.rpc}`, pubsub: `127.0.0.1:${live.server.ports.pubsub}` };
      const env = { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'carrel-watch-xdg-')) };
      const user = await insertUser(live.db.pool);
      const owner = await insertUser(live.db.pool);
      const seat = (await seatsOf(live.db.pool, 'Main Library'))[2]!;
      const [start, end] = [parseTimeInput('tomorrow 12:00', new Date(), 'America/New_York'), parseTimeInput('tomorrow 14:00', new Date(), 'America/New_York')];
      const booking = await insertBooking(live.db.pool, { seatId: seat.id, userId: owner.id, start, end });
      new TokenStore(tokenFilePath(env)).set(at.rpc, { token: live.tokens.issue(user).token, expiresAt: '2999-01-01T00:00:00Z', user, ports: live.server.ports as unknown as Record<string, number> });
      const joined = await runCli(['waitlist', 'join', '--seat', seat.label, '--start', 'tomorrow 12:00', '--end', 'tomorrow 14:00', '--server', at.rpc, '--json'], { env });
      expect(joined.stderr).toBe('');
      const entryId = (JSON.parse(joined.stdout) as { id: number }).id;
      await live.db.pool.query(`UPDATE reservations SET status = 'CANCELLED' WHERE id = $1`, [booking]);
      await live.waitlist.onSlotFreed({ seatId: seat.id, branchId: seat.branchId, start: new Date(start), end: new Date(end) });

      const watched = await runCli(['watch', 'Main Library', '--server', at.pubsub, '--duration', '1'], { env });
      expect(watched.code).toBe(0);
      expect(watched.stdout).toMatch(
        new RegExp(`^Main Library: snapshot at seq \\d+, 54 seats\\nfor you: offer on waitlist entry ${entryId}: seat ${seat.label} \\(Main Library\\), \\d{4}-\\d\\d-\\d\\d 12:00 → 14:00 E[SD]T; claim by \\d\\d:\\d\\d E[SD]T: carrel waitlist claim ${entryId}$`, 'm'),
      );
    } finally {
      await live.close();
    }
  });
});
