// Runs the built `carrel` on a pseudo-terminal, as a person at a terminal would, for the claims
// that hang on stdout being a terminal (the pretty log, watch's seat map). util-linux `script`
// makes the terminal (it is in every Debian: bsdutils), so no native addon is needed. What the
// command writes comes back with the terminal's \r\n; `screenText` strips that and the ANSI codes.
import { spawn, type ChildProcess } from 'node:child_process';
import { carrelBin } from './cli.js';
import { ensureBuilt } from './serveProcess.js';

export interface PtyRun {
  child: ChildProcess;
  /** Everything written to the terminal so far, raw. */
  output(): string;
  /** Types into the terminal: "\x03" is Ctrl-C, which the terminal turns into SIGINT. */
  type(text: string): void;
  /** The exit code of the command itself (script -e passes it on). */
  exited: Promise<number | null>;
  /** Resolves when the output matches, rejects after timeoutMs with what was written. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  kill(): void;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function runInPty(argv: string[], env: NodeJS.ProcessEnv, opts: { columns?: number; rows?: number } = {}): PtyRun {
  ensureBuilt();
  // The size is set inside the terminal before carrel starts, so process.stdout.columns sees it.
  const size = `stty cols ${opts.columns ?? 100} rows ${opts.rows ?? 40} 2>/dev/null; `;
  const command = `${size}exec ${[process.execPath, carrelBin, ...argv].map(quote).join(' ')}`;
  const child = spawn('script', ['-qefc', command, '/dev/null'], { env: { PATH: process.env.PATH, TERM: 'xterm', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (c: Buffer): void => {
    out += c.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    type: (text) => void child.stdin!.write(text),
    exited,
    waitFor: (pattern, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const m = pattern.exec(screenText(out));
          if (!m) return;
          done();
          resolve(m[0]);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; the terminal shows:\n${screenText(out)}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        void exited.then(() => setTimeout(check, 0));
        check();
      }),
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** The text a person reads: no ANSI escape sequences, no carriage returns. */
export function screenText(raw: string): string {
  // eslint-disable-next-line no-control-regex
  return raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}
