// The README's five-minute tour, run as a newcomer types it: every `npx carrel …` line of the ```sh
// blocks under its heading, in order, through the built CLI in child processes whose TZ is Tokyo,
// against a real `carrel serve` whose TZ is Tokyo too, on the seeded demo data (Main Library is in
// New York). The README promises the tour works on any machine and any day, and the same when run
// twice, so it runs twice on one database. The ports come from the environment (CARREL_SERVER,
// CARREL_PUBSUB_SERVER), so the commands are run exactly as printed.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { carrelBin, type CliRun } from '../support/cli.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { startServe, type ServeProcess } from '../support/serveProcess.js';

const TOUR_HEADING = '## A five-minute tour';
const ZONE = 'Asia/Tokyo'; // not the branch's (America/New_York): "tomorrow 10:00" differs by 14 h

/** The tour's command lines: the ```sh blocks between its heading and the next `## `. */
export function tourCommands(readme: string): string[] {
  const start = readme.indexOf(`\n${TOUR_HEADING}\n`);
  if (start < 0) throw new Error(`README.md has no "${TOUR_HEADING}" heading`);
  const rest = readme.slice(start + TOUR_HEADING.length + 2);
  const section = rest.slice(0, rest.search(/^## /m) >= 0 ? rest.search(/^## /m) : undefined);
  const commands: string[] = [];
  for (const block of section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    for (const line of block[1]!.split('\n')) {
      const text = line.trim();
      if (text !== '' && !text.startsWith('#')) commands.push(text);
    }
  }
  return commands;
}

/** Splits a command line as a POSIX shell does for plain words, '…' and "…", dropping an unquoted # comment. */
export function words(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    if (m[3]?.startsWith('#')) break;
    out.push(m[1] ?? m[2] ?? m[3]!);
  }
  return out;
}

let db: TestDatabase;
let serve: ServeProcess;
let home: string;

beforeAll(async () => {
  db = await freshDatabase(); // migrated and seeded: the demo branches and accounts the tour uses
  serve = await startServe({ env: { TZ: ZONE, DATABASE_URL: db.url, REDIS_URL: undefined } });
  home = mkdtempSync(join(tmpdir(), 'carrel-tour-'));
});

afterAll(async () => {
  serve?.destroy();
  await serve?.exited;
  await db?.drop();
  if (home) rmSync(home, { recursive: true, force: true });
});

/** `npx carrel <args>` as the newcomer's shell runs it: the built bin, their own HOME, the Tokyo zone. */
function carrel(args: string[]): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'xdg'),
    TZ: ZONE,
    CARREL_SERVER: `127.0.0.1:${serve.ports.rpc}`,
    CARREL_PUBSUB_SERVER: `127.0.0.1:${serve.ports.pubsub}`,
  };
  return new Promise((resolve) => {
    execFile(process.execPath, [carrelBin, ...args], { env, timeout: 15_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("the README's five-minute tour", () => {
  const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
  const commands = tourCommands(readme);

  it('is short, and its commands are carrel commands a newcomer can paste', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(200);
    expect(commands.length).toBeGreaterThanOrEqual(8);
    for (const c of commands) expect(c, c).toMatch(/^npx carrel /);
    // Nothing to fill in: no placeholders, and no dates that will one day be in the past.
    for (const c of commands) expect(c, c).not.toMatch(/<[^>]+>|\bID\b|\d{4}-\d{2}-\d{2}/);
  });

  it('runs as printed, twice on one database, in a time zone other than the branch\'s', { timeout: 60_000 }, async () => {
    for (const run of [1, 2]) {
      const outputs: string[] = [];
      for (const line of commands) {
        const argv = words(line).slice(2); // "npx carrel"
        const r = await carrel(argv);
        expect({ run, line, code: r.code, stderr: r.stderr }).toEqual({ run, line, code: 0, stderr: '' });
        outputs.push(r.stdout);
      }
      const at = (prefix: string): string => outputs[commands.findIndex((c) => c.startsWith(prefix))] ?? '';
      expect(at('npx carrel call PING')).toContain('PONG');
      // Both runs end where the tour says: Ada holds G-13 tomorrow 10:00-12:00 New York time, and
      // Grace waits for it (the second run's reserve and join return the same booking and entry).
      expect(at('npx carrel reserve')).toMatch(/G-13/);
      expect(at('npx carrel reserve')).toMatch(/10:00 → 12:00 E[SD]T/);
      expect(at('npx carrel mine')).toMatch(/Main Library[\s\S]*G-13|G-13[\s\S]*Main Library/);
      expect(at('npx carrel seats --branch "Main Library" --area')).toMatch(/\bG-13\b.*\bno\s*$/m);
      expect(at('npx carrel waitlist list')).toMatch(/WAITING\s+1\s+seat G-13 \(Main Library\)\s+\S+ 10:00 E[SD]T/);
      // Grace's afternoon: a seat the server chose, with power, named in the reply.
      expect(at('npx carrel reserve --branch')).toMatch(/14:00 → 16:00 E[SD]T/);
    }
    // Two bookings (Ada's and Grace's afternoon) and one waitlist entry in all, however often the tour ran.
    const { rows } = await db.pool.query<{ bookings: number; entries: number }>(
      `SELECT (SELECT count(*)::int FROM reservations) AS bookings, (SELECT count(*)::int FROM waitlist) AS entries`,
    );
    expect(rows[0]).toEqual({ bookings: 2, entries: 1 });
    const grace = await db.pool.query<{ has_power: boolean }>(
      `SELECT s.has_power FROM reservations r JOIN seats s ON s.id = r.seat_id JOIN users u ON u.id = r.user_id WHERE u.student_id = 's1002'`,
    );
    expect(grace.rows).toEqual([{ has_power: true }]);
  });
});
