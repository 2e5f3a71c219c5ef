// Runs the real `carrel serve` in a child process for the fault tests: a config file of its own
// in a temp directory, ports 0, and the ports read back from the banner's machine-readable line.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.js';

export interface ServePorts {
  rpc: number;
  sensor: number;
  pubsub: number;
  http: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServeProcess extends SpawnedServe {
  ports: ServePorts;
}

export interface ServeOptions {
  /** Merged over ports 0 and log level warn. */
  config?: Record<string, unknown>;
  env?: Record<string, string | undefined>;
  /** Its own process group (and session), so a test can signal the group like a terminal does. */
  detached?: boolean;
  /** Start-up may include initdb of an embedded PostgreSQL. */
  startTimeoutMs?: number;
}

/** `npm test` builds first; a direct vitest run after editing src rebuilds here rather than test stale code. */
export function ensureBuilt(): void {
  const built = join(projectRoot, 'dist', '.tsbuildinfo');
  const builtAt = (() => {
    try {
      return statSync(built).mtimeMs;
    } catch {
      return 0;
    }
  })();
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  if (newest(join(projectRoot, 'src')) > builtAt) {
    execFileSync(process.execPath, [join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: projectRoot, stdio: 'inherit' });
  }
}

export interface SpawnedServe {
  child: ChildProcess;
  /** The config file it runs with (`carrel db seed -c` it to act on the same database). */
  configFile: string;
  exited: Promise<Exit>;
  /** Everything the process wrote to stderr so far (the banner, fatal errors). */
  stderr(): string;
  /** Everything it wrote to stdout so far (its JSON log lines). */
  stdout(): string;
  /** SIGKILLs the process if it still runs and removes its temp directory; for afterAll. */
  destroy(): void;
}

/** Spawns `carrel serve` with its own config file and returns at once. */
export function spawnServe(opts: ServeOptions = {}): SpawnedServe {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'carrel-serve-'));
  const configFile = join(dir, 'config.json');
  const { ports, log, ...rest } = opts.config ?? {};
  writeFileSync(
    configFile,
    JSON.stringify({
      ports: { rpc: 0, sensor: 0, pubsub: 0, http: 0, ...(ports as object | undefined) },
      log: { level: 'warn', ...(log as object | undefined) },
      ...rest,
    }),
  );
  const child = spawn(process.execPath, [join(projectRoot, 'bin', 'carrel.js'), 'serve'], {
    cwd: projectRoot,
    env: { ...process.env, CARREL_CONFIG: configFile, LOG_LEVEL: undefined, NODE_ENV: 'test', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    configFile,
    exited,
    stderr: () => stderr,
    stdout: () => stdout,
    destroy: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Spawns `carrel serve` and resolves once it printed its ports; rejects (with its stderr) if it exits first. */
export async function startServe(opts: ServeOptions = {}): Promise<ServeProcess> {
  const spawned = spawnServe(opts);
  const { child, exited } = spawned;
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  try {
    const ports = await new Promise<ServePorts>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not come up within ${timeoutMs} ms:\n${spawned.stderr()}`)), timeoutMs);
      const onData = (): void => {
        const m = /^ports (\{.*\})$/m.exec(spawned.stderr());
        if (!m) return;
        clearTimeout(timer);
        child.stderr!.off('data', onData);
        resolve(JSON.parse(m[1]!) as ServePorts);
      };
      child.stderr!.on('data', onData);
      void exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`serve exited early (${JSON.stringify(e)}):\n${spawned.stderr()}`));
      });
    });
    return { ...spawned, ports };
  } catch (err) {
    spawned.destroy();
    throw err;
  }
}
