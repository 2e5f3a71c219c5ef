// Remembers the login token between `carrel` invocations (docs/protocol.md), one per server address,
// in $XDG_CONFIG_HOME/carrel/token.json (default ~/.config/carrel). The file holds a bearer
// credential, so it is written 0600 in a 0700 directory, atomically (temp file + rename).
// A login also records the server's ports (server.info), so `carrel watch`, which talks to the
// subscriber port, can find the token of the server it watches.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { MethodResults } from '../src/wire/types.js';
import { parseServer } from './rpcClient.js';

/** auth.login's answer, and where the server listens. */
export interface StoredLogin extends Readonly<MethodResults['auth.login']> {
  /** The server's ports at login ({rpc, sensor, pubsub, http}), when it told them. */
  ports?: Record<string, number>;
}

interface TokenFile {
  servers: Record<string, StoredLogin>;
}

export function tokenFilePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.length > 0 ? env.XDG_CONFIG_HOME : join(env.HOME ?? homedir(), '.config');
  return join(base, 'carrel', 'token.json');
}

function read(path: string): TokenFile {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as TokenFile;
    return parsed && typeof parsed.servers === 'object' && parsed.servers !== null ? parsed : { servers: {} };
  } catch {
    return { servers: {} };
  }
}

function write(path: string, file: TokenFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export class TokenStore {
  constructor(readonly path: string = tokenFilePath()) {}

  /** The remembered login for a server, unless it has expired. */
  get(server: string, nowMs = Date.now()): StoredLogin | undefined {
    const login = read(this.path).servers[server];
    if (!login || typeof login.token !== 'string') return undefined;
    return Date.parse(login.expiresAt) > nowMs ? login : undefined;
  }

  /**
   * The unexpired login for the server whose subscriber port is `address` ("host:port"): same
   * host as typed at login, port as server.info reported it. The latest to expire wins.
   */
  forSubscriberPort(address: string, nowMs = Date.now()): { server: string; login: StoredLogin } | undefined {
    let want: { host: string; port: number };
    try {
      want = parseServer(address, 9002);
    } catch {
      return undefined;
    }
    let best: { server: string; login: StoredLogin } | undefined;
    for (const [server, login] of Object.entries(read(this.path).servers)) {
      if (!login || typeof login.token !== 'string' || !(Date.parse(login.expiresAt) > nowMs) || login.ports?.pubsub !== want.port) continue;
      let host: string;
      try {
        host = parseServer(server, 9000).host;
      } catch {
        continue;
      }
      if (host === want.host && (!best || Date.parse(login.expiresAt) > Date.parse(best.login.expiresAt))) best = { server, login };
    }
    return best;
  }

  set(server: string, login: StoredLogin): void {
    const file = read(this.path);
    file.servers[server] = login;
    write(this.path, file);
  }

  delete(server: string): boolean {
    const file = read(this.path);
    if (!(server in file.servers)) return false;
    delete file.servers[server];
    write(this.path, file);
    return true;
  }
}
