// Running `carrel` client commands in tests: in-process (fast: no node start-up per command)
// with their own config dir and clock, or as the built binary in a child process where the
// process itself is under test (exit codes from main.ts, signals, the banner's commands).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { printError, type CliIo } from '../../clients/cliIo.js';
import { registerClientCommands } from '../../clients/cli.js';
import { projectRoot } from '../../src/paths.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `carrel <argv…>` in this process, as main.ts would, with `env` as its environment. */
export async function runCli(argv: string[], opts: { env: NodeJS.ProcessEnv; now?: () => Date }): Promise<CliRun> {
  const res: CliRun = { code: 0, stdout: '', stderr: '' };
  const io: CliIo = {
    out: (s) => void (res.stdout += s),
    err: (s) => void (res.stderr += s),
    setExitCode: (c) => void (res.code = c),
    env: opts.env,
    now: opts.now,
  };
  const program = new Command()
    .name('carrel')
    .exitOverride()
    .configureOutput({ writeOut: (s) => void (res.stdout += s), writeErr: (s) => void (res.stderr += s) });
  registerClientCommands(program, io);
  try {
    await program.parseAsync(['node', 'carrel', ...argv]);
  } catch (err) {
    if (err instanceof CommanderError) res.code = err.exitCode;
    else await printError(io, err, { json: argv.includes('--json') });
  }
  return res;
}

export const carrelBin = join(projectRoot, 'bin', 'carrel.js');

/** Runs the built `carrel` (npm test builds first) in a child process, asynchronously. */
export function runBin(argv: string[], env: NodeJS.ProcessEnv, timeoutMs = 15_000): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [carrelBin, ...argv], { env: { PATH: process.env.PATH, ...env }, timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Starts the built `carrel` and keeps hold of it (to signal it); `done` resolves when it exits. */
export function spawnBin(argv: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: CliRun; done: Promise<CliRun> } {
  const child = spawn(process.execPath, [carrelBin, ...argv], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: CliRun = { code: -1, stdout: '', stderr: '' };
  child.stdout!.on('data', (c: Buffer) => (output.stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output.stderr += c.toString()));
  const done = new Promise<CliRun>((resolve) =>
    child.on('close', (code, signal) => {
      output.code = code ?? (signal ? 128 : -1);
      resolve(output);
    }),
  );
  return { child, output, done };
}

/** Splits a command line as a POSIX shell would for the simple quoting the banner uses ('…', "…"). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) words.push(m[1] ?? m[2] ?? m[3]!);
  return words;
}
