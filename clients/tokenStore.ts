// Where the CLI remembers who you are between calls (DESIGN §8): one JSON file,
// $XDG_CONFIG_HOME/carrel/token.json (default ~/.config/carrel/token.json), readable by its
// owner only, holding {"token": "...", "server": "host:port"}.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface StoredToken {
  token: string;
  /** The server the token was issued by, used when --server is not given. */
  server?: string;
}

export function tokenPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.length > 0 ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'carrel', 'token.json');
}

/** The stored token, or null when there is none; a damaged file is an error that names it. */
export function loadToken(env: NodeJS.ProcessEnv = process.env): StoredToken | null {
  const file = tokenPath(env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not valid JSON; log in again`);
  }
  const obj = parsed as Partial<StoredToken> | null;
  if (!obj || typeof obj !== 'object' || typeof obj.token !== 'string' || obj.token.length === 0) {
    throw new Error(`${file} holds no token; log in again`);
  }
  return typeof obj.server === 'string' ? { token: obj.token, server: obj.server } : { token: obj.token };
}

/** Writes the token file with mode 0600 (and its directory 0700), replacing any previous one. */
export function saveToken(value: StoredToken, env: NodeJS.ProcessEnv = process.env): string {
  const file = tokenPath(env);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  // writeFileSync's mode applies only when it creates the file.
  chmodSync(file, 0o600);
  return file;
}
