// Spawning the real `carrel serve` (bin/carrel.js) for tests: a temporary config file, the
// `ports {...}` line of its banner, its exit, and a clean-up that never leaves a child behind.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.js';

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

export interface ServePorts {
  rpc: number;
  sensor: number;
  pubsub: number;
  http: number;
}

export interface ServedProcess {
  child: ChildProcess;
  /** Resolves with the bound ports from the banner; rejects if the process exits first. */
  ports: Promise<ServePorts>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  /** SIGKILLs the process if it still runs and removes its config directory. */
  cleanup(): void;
}

/** Starts `carrel serve <args>` with `config` in a temporary CARREL_CONFIG and `env` over this process's environment. */
export function spawnServe(args: string[], config: object, env: Record<string, string | undefined>): ServedProcess {
  const dir = mkdtempSync(join(tmpdir(), 'carrel-serve-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(config));
  const childEnv: NodeJS.ProcessEnv = { ...process.env, CARREL_CONFIG: configFile, NODE_ENV: 'test' };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const child = spawn(process.execPath, [join(projectRoot, 'bin', 'carrel.js'), 'serve', ...args], { cwd: projectRoot, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const ports = new Promise<ServePorts>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /^ports (\{.*\})$/m.exec(stderr);
      if (m) resolve(JSON.parse(m[1]!) as ServePorts);
    });
    void exited.then(({ code, signal }) => reject(new Error(`serve exited (${code ?? signal}) before it was up:\n${stderr}`)));
  });
  ports.catch(() => undefined);
  return {
    child,
    ports,
    exited,
    stderr: () => stderr,
    cleanup: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
