// The embedded PostgreSQL on a machine that is not a developer's laptop (docs/operations.md, "The
// database": two commands and a working system). PostgreSQL refuses to run as root, so as root
// carrel runs it as the `postgres` OS user, creating that user when the machine has none, makes the
// data directory's parents traversable for it and hands it the directory; and npm 11 skips the
// package's postinstall, which makes the versioned lib symlinks the binaries load, so carrel makes
// them.
//
// The root test must not change the shared machine: it runs in a private mount namespace
// (`unshare --mount`) over a copy of /etc without the postgres user and group and a copy of the
// package's lib without its symlinks, then checks the real /etc is as it was. It needs root and
// unshare; elsewhere it is skipped, saying why. CI runs as root (.ci/run), so there (CI=true)
// it must run: a missing prerequisite fails it instead of skipping it silently.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hydrateSymlinks, packageNativeDir } from '../../src/db/embeddedPostgres.js';
import { projectRoot } from '../../src/paths.js';
import { ensureBuilt } from '../support/serveProcess.js';
import { freePort } from '../support/processes.js';

const CI = process.env.CI === 'true';
const ACCOUNT_FILES = ['/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow'];

/** Why the root test cannot run here, or undefined when it can. */
function rootTestBlocker(): string | undefined {
  if (process.platform !== 'linux') return 'it needs Linux (mount namespaces)';
  if (process.getuid?.() !== 0) return 'it needs root (the code path under test runs only as root)';
  const probe = spawnSync('unshare', ['--mount', '--propagation', 'private', 'mount', '--bind', '/etc', '/etc'], { stdio: 'ignore' });
  if (probe.error) return `unshare is missing (${probe.error.message})`;
  if (probe.status !== 0) return 'unshare --mount and mount are not permitted here (a container without CAP_SYS_ADMIN?)';
  return undefined;
}
const blocker = rootTestBlocker();
if (blocker && !CI) process.stderr.write(`embeddedRoot.test.ts: skipping the root test: ${blocker}; CI runs it as root\n`);

const temps: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix)); // 0700, like any mkdtemp dir
  temps.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Link {
  source: string;
  target: string;
}

/** The package's lib as npm 11 leaves it: the files, none of the symlinks. */
function copyLibWithoutSymlinks(nativeDir: string, to: string): void {
  cpSync(join(nativeDir, 'lib'), to, { recursive: true, filter: (src) => !lstatSync(src).isSymbolicLink() });
}

function expectLinksRestored(pkgDir: string, links: Link[], libDir = join(pkgDir, 'native', 'lib')): void {
  for (const { source, target } of links) {
    const made = join(libDir, basename(target));
    expect(lstatSync(made).isSymbolicLink(), `${basename(target)} is a symlink again`).toBe(true);
    expect(readlinkSync(made)).toBe(basename(source)); // relative, as the postinstall makes it
    expect(existsSync(made)).toBe(true); // and it resolves
  }
}

/** The account files' exact bytes (hashed), the /etc listing and the host's postgres entry. */
function hostAccounts(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of [...ACCOUNT_FILES, ...ACCOUNT_FILES.map((f) => `${f}-`), '/var/log/lastlog', '/var/log/faillog']) {
    out[f] = existsSync(f) ? createHash('sha256').update(readFileSync(f)).digest('hex') : 'absent';
  }
  out['/etc listing'] = readdirSync('/etc').sort().join(' ');
  out['getent passwd postgres'] = spawnSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).stdout;
  out['getent group postgres'] = spawnSync('getent', ['group', 'postgres'], { encoding: 'utf8' }).stdout;
  return out;
}

/** A copy of /etc in which no user or group is called postgres, and no group lists it. */
function etcWithoutPostgres(to: string): void {
  execFileSync('cp', ['-a', '/etc', to]); // a real copy: useradd rewrites these files
  const memberFields = { passwd: Infinity, shadow: Infinity, group: 3, gshadow: 2 } as const;
  for (const [name, from] of Object.entries(memberFields)) {
    const file = join(to, name);
    if (!existsSync(file)) continue;
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('postgres:'))
      .map((l) =>
        l
          .split(':')
          .map((field, i) => (i >= from ? field.split(',').filter((m) => m !== 'postgres').join(',') : field))
          .join(':'),
      );
    writeFileSync(file, lines.join('\n'));
  }
}

describe('embedded PostgreSQL where npm skipped the postinstall, and as root', () => {
  it('recreates the lib symlinks a skipped postinstall leaves out, after which the binaries load', async (ctx) => {
    const nativeDir = await packageNativeDir();
    const listFile = join(nativeDir, 'pg-symlinks.json');
    if (!existsSync(listFile)) return ctx.skip(); // platforms without versioned libraries ship none
    const links = JSON.parse(readFileSync(listFile, 'utf8')) as Link[];
    expect(links.length).toBeGreaterThan(0);
    const pkgDir = join(tempDir('carrel-links-'), 'pkg');
    const copy = join(pkgDir, 'native');
    mkdirSync(join(copy, 'bin'), { recursive: true });
    cpSync(join(nativeDir, 'bin', 'postgres'), join(copy, 'bin', 'postgres'));
    cpSync(listFile, join(copy, 'pg-symlinks.json'));
    copyLibWithoutSymlinks(nativeDir, join(copy, 'lib'));
    const version = (): ReturnType<typeof spawnSync> => spawnSync(join(copy, 'bin', 'postgres'), ['--version'], { encoding: 'utf8' });

    const broken = version();
    expect(broken.status, 'without the symlinks the binary cannot load its libraries').not.toBe(0);
    expect(String(broken.stderr)).toMatch(/error while loading shared libraries/);

    const notices: string[] = [];
    await hydrateSymlinks(copy, (level, message) => notices.push(`${level}: ${message}`));
    expect(notices).toEqual([`info: made ${links.length} library symlinks in ${join(copy, 'lib')} that the package's postinstall did not (npm skipped it)`]);
    expectLinksRestored(pkgDir, links);
    const fixed = version();
    expect(fixed.status, String(fixed.stderr)).toBe(0);
    expect(String(fixed.stdout)).toMatch(/^postgres \(PostgreSQL\) \d+/);
    await hydrateSymlinks(copy, (level, message) => notices.push(`${level}: ${message}`)); // again: nothing to do
    expect(notices).toHaveLength(1);
  });

  it.skipIf(blocker !== undefined && !CI)(
    'as root on a machine with no postgres user: creates one, makes a 0700 parent traversable, repairs the libs, serves; the real /etc is untouched',
    async () => {
      if (blocker) throw new Error(`CI=true, yet the root test cannot run: ${blocker}. CI runs as root so that this path is tested.`);
      ensureBuilt(); // the child runs the built code
      const nativeDir = await packageNativeDir();
      const links = JSON.parse(readFileSync(join(nativeDir, 'pg-symlinks.json'), 'utf8')) as Link[];
      const realLib = readdirSync(join(nativeDir, 'lib')).sort();
      const root = tempDir('carrel-root-');
      const etc = join(root, 'etc');
      etcWithoutPostgres(etc);
      const lib = join(root, 'lib');
      copyLibWithoutSymlinks(nativeDir, lib);
      // The data directory two 0700 levels down (a home directory under a mkdtemp one).
      const home = join(root, 'home');
      mkdirSync(home, { mode: 0o700 });
      const dataDir = join(home, 'pgdata');
      const host = hostAccounts();

      // In the namespace: its own /etc; a tmpfs over /var/log, where useradd resets the new uid's
      // lastlog and faillog records; the lib copy over the package's lib.
      const script = [
        'set -eu',
        'mount --bind "$ROOT_TEST_ETC" /etc',
        'if [ -d /var/log ]; then mount -t tmpfs tmpfs /var/log; fi',
        'mount --bind "$ROOT_TEST_LIB" "$ROOT_TEST_NATIVE/lib"',
        'exec "$ROOT_TEST_NODE" "$ROOT_TEST_CHILD" "$ROOT_TEST_DATADIR" "$ROOT_TEST_PORT"',
      ].join('\n');
      const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
        cwd: projectRoot,
        env: {
          ...process.env,
          ROOT_TEST_ETC: etc,
          ROOT_TEST_LIB: lib,
          ROOT_TEST_NATIVE: realpathSync(nativeDir),
          ROOT_TEST_NODE: process.execPath,
          ROOT_TEST_CHILD: join(projectRoot, 'test', 'support', 'embeddedRootChild.mjs'),
          ROOT_TEST_DATADIR: dataDir,
          ROOT_TEST_PORT: String(await freePort()),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
      expect(code, `${stderr}\n${stdout}`).toBe(0);
      const report = JSON.parse(stdout.trim().split('\n').pop()!) as {
        userBefore: { uid: number; gid: number } | null;
        userAfter: { uid: number; gid: number } | null;
        notices: { level: string; message: string }[];
        rows: { one: number; role: string }[];
        postmasterUid: number;
      };
      const notices = report.notices.map((n) => `${n.level}: ${n.message}`);

      // The namespace had no postgres user; carrel created one there and ran PostgreSQL as it.
      expect(report.userBefore).toBeNull();
      expect(report.userAfter).not.toBeNull();
      const { uid, gid } = report.userAfter!;
      expect(uid).not.toBe(0);
      expect(notices).toContain(`info: created system user 'postgres' (uid ${uid}) to run PostgreSQL as, since it refuses to run as root`);
      expect(report.postmasterUid).toBe(uid);
      expect(report.rows).toEqual([{ one: 1, role: 'postgres' }]);

      // The 0700 parents became traversable for it (and said so), and the data directory is its.
      for (const dir of [root, home]) {
        expect(notices).toContain(`info: made ${dir} traversable (+x) for the 'postgres' OS user`);
        expect(statSync(dir).mode & 0o001, `${dir} is o+x`).toBe(0o001);
        expect(statSync(dir).mode & 0o006, `${dir} is not o+rw`).toBe(0);
      }
      expect(notices).toContain(`info: gave ${dataDir} (and everything in it) to the 'postgres' OS user`);
      expect(statSync(dataDir)).toMatchObject({ uid, gid });
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(existsSync(join(dataDir, 'postmaster.pid')), 'it stopped cleanly').toBe(false);

      // initdb and the server ran from the lib copy, whose symlinks carrel made; the real lib
      // is as it was.
      expect(notices).toContain(`info: made ${links.length} library symlinks in ${realpathSync(nativeDir)}/lib that the package's postinstall did not (npm skipped it)`);
      expectLinksRestored(root, links, lib);
      expect(readdirSync(join(nativeDir, 'lib')).sort()).toEqual(realLib);

      // Nothing of it reached the host's accounts.
      expect(hostAccounts()).toEqual(host);
      expect(readFileSync(join(etc, 'passwd'), 'utf8')).toMatch(new RegExp(`^postgres:x:${uid}:${gid}:`, 'm'));
    },
    60_000,
  );
});
