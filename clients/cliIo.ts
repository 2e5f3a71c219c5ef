// What every RPC client command shares (docs/protocol.md): where its output goes, the server address
// and remembered token, one way to print a result (a table or a line for people, the value as
// JSON with --json) and one way to print an error:
//
//   people:  error FAILED_PRECONDITION: check-in is open … [rule: checkInWindow] (open … EST)
//   --json:  {"code":"FAILED_PRECONDITION","message":"…","details":{…}}   (one line, on stderr)
//
// What the server refused reads "error CODE: …"; what this side found ("cannot connect", a bad
// time) reads "carrel: …". Exit codes: 1 when the server or the network said no, 2 when the
// command line was wrong.
// Commands take a CliIo so tests can run them in-process.
import { RpcCallError, RpcClient, parseServer } from './rpcClient.js';
import { formatRange } from './timeInput.js';
import { TokenStore, tokenFilePath } from './tokenStore.js';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Sets the exit status without ending the process (tests run commands in-process). */
  setExitCode(code: number): void;
  env: NodeJS.ProcessEnv;
  /** "today" and "tomorrow" are read against this (tests pin it to the server's fake clock). */
  now?: () => Date;
}

export const processIo: CliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  setExitCode: (c) => void (process.exitCode = c),
  env: process.env,
};

export const DEFAULT_RPC_SERVER = '127.0.0.1:9000';

/** --server, else $CARREL_SERVER, else 127.0.0.1:9000. */
export function rpcServer(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.CARREL_SERVER ?? DEFAULT_RPC_SERVER;
}

/** The command line was wrong: exit 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
}

/** A failure found on this side, with a code from the wire set so --json output has one shape. */
export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export type Call = <T>(method: string, args?: Record<string, unknown>) => Promise<T>;

export interface Session {
  readonly server: string;
  readonly store: TokenStore;
  /** The token sent with every call: the one `carrel login` remembered for this server, if any. */
  readonly token: string | undefined;
  /** Connects on first use; rejects with RpcCallError when the server answers an error. */
  call: Call;
  readonly zones: ZoneBook;
  readonly now: () => Date;
}

/** What a command prints: `value` as JSON with --json, else `text` (computed only then). */
export interface Output {
  value: unknown;
  text: () => string | Promise<string>;
}

export interface ErrorContext {
  /** The time zone to show an error's times in (a clash, a check-in window), looked up only when needed. */
  zone?: () => Promise<string | undefined>;
}

/**
 * Runs one command: a session on the server, the body, then its output or its error, printed one
 * way for every command. Never throws.
 */
export async function runCommand(io: CliIo, opts: { server?: string; json?: boolean }, body: (s: Session, ctx: ErrorContext) => Promise<Output>): Promise<void> {
  const server = rpcServer(opts.server, io.env);
  const store = new TokenStore(tokenFilePath(io.env));
  const ctx: ErrorContext = {};
  let client: Promise<RpcClient> | undefined;
  let token: string | undefined;
  try {
    token = store.get(server)?.token;
    const connect = (): Promise<RpcClient> => {
      if (!client) {
        const { host, port } = parseServer(server, 9000);
        client = RpcClient.connect(host, port).catch((err: NodeJS.ErrnoException) => {
          throw new ClientError('UNAVAILABLE', `cannot connect to ${server}: ${err.code ?? err.message}`);
        });
      }
      return client;
    };
    const call: Call = async <T>(method: string, args?: Record<string, unknown>): Promise<T> => {
      const c = await connect();
      const reply = await c.request(method, args === undefined ? undefined : [args], token).catch((err: Error) => {
        throw new ClientError('UNAVAILABLE', `${server}: ${err.message}`);
      });
      if (reply.error) throw new RpcCallError(reply.error);
      return reply.result as T;
    };
    const session: Session = { server, store, token, call, zones: new ZoneBook(call), now: io.now ?? (() => new Date()) };
    const output = await body(session, ctx);
    io.out(`${opts.json ? JSON.stringify(output.value, null, 2) : await output.text()}\n`);
  } catch (err) {
    await printError(io, err, { json: opts.json === true, server, hadToken: token !== undefined, ctx });
  } finally {
    if (client) await client.then((c) => c.close(), () => undefined);
  }
}

interface ErrorShape {
  code: string;
  message: string;
  details?: Record<string, unknown>;
  exitCode: number;
}

function shapeOf(err: unknown): ErrorShape {
  if (err instanceof RpcCallError) return { code: err.code, message: err.error.message, details: err.details, exitCode: 1 };
  if (err instanceof ClientError) return { code: err.code, message: err.message, details: err.details, exitCode: 1 };
  const e = err as NodeJS.ErrnoException & { exitCode?: number };
  if (err instanceof UsageError || e.exitCode === 2) return { code: 'INVALID_ARGUMENT', message: e.message, exitCode: 2 };
  // A socket error (ECONNREFUSED, ECONNRESET, …): the network said no.
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) return { code: 'UNAVAILABLE', message: e.message, exitCode: 1 };
  return { code: 'INTERNAL', message: e?.message ?? String(err), exitCode: e?.exitCode ?? 1 };
}

/** The one error printer: a line for people, the error object as one JSON line with --json. */
export async function printError(io: CliIo, err: unknown, o: { json: boolean; server?: string; hadToken?: boolean; ctx?: ErrorContext }): Promise<void> {
  const e = shapeOf(err);
  io.setExitCode(e.exitCode);
  if (o.json) {
    io.err(`${JSON.stringify({ code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) })}\n`);
    return;
  }
  if (!(err instanceof RpcCallError)) {
    // Found on this side (bad input, no connection, no such branch): no server code to show.
    io.err(`carrel: ${e.message}\n`);
    return;
  }
  const d = e.details ?? {};
  let extra = '';
  if (d.rule !== undefined) extra += ` [rule: ${String(d.rule)}]`;
  const conflict = d.conflict as { start?: string; end?: string } | undefined;
  const window = typeof d.opensAt === 'string' && typeof d.closesAt === 'string' ? { start: d.opensAt, end: d.closesAt } : undefined;
  if ((conflict?.start && conflict.end) || window) {
    const zone = await o.ctx?.zone?.().catch(() => undefined);
    if (conflict?.start && conflict.end) extra += ` (booked ${formatRange(conflict.start, conflict.end, zone)})`;
    if (window) extra += ` (open ${formatRange(window.start, window.end, zone)})`;
  }
  let hint = '';
  if (e.code === 'UNAUTHENTICATED') {
    hint = o.hadToken
      ? `\n(the token remembered for ${o.server} was refused; run \`carrel login\` again)`
      : `\n(not logged in to ${o.server}; run \`carrel login${o.server === DEFAULT_RPC_SERVER ? '' : ` --server ${o.server}`}\` first)`;
  }
  io.err(`error ${e.code}: ${e.message}${extra}${hint}\n`);
}

export interface BranchInfo {
  id: number;
  name: string;
  timezone: string;
  hours: Partial<Record<string, { open: string; close: string } | null>>;
  paddingMinutes?: number;
  counts: Record<'total' | 'free' | 'reserved' | 'occupied' | 'unavailable', number>;
}

/**
 * Time zones for display, looked up once per command from the public reads: branches.list for
 * a branch's zone, seats.get for a seat's branch. A failed lookup leaves the zone undefined
 * (shown in this machine's zone, still marked).
 */
export class ZoneBook {
  private branchList: Promise<BranchInfo[]> | undefined;
  private readonly seatBranch = new Map<number, Promise<string | undefined>>();

  constructor(private readonly call: Call) {}

  branches(): Promise<BranchInfo[]> {
    this.branchList ??= this.call<BranchInfo[]>('branches.list');
    return this.branchList;
  }

  /** A branch by name or id, as the server reads a branch reference. */
  async branch(ref: string | number): Promise<BranchInfo | undefined> {
    const list = await this.branches();
    const text = String(ref);
    return /^\d{1,9}$/.test(text) ? list.find((b) => b.id === Number(text)) : list.find((b) => b.name === text);
  }

  async ofBranch(ref: string | number): Promise<string | undefined> {
    return (await this.branch(ref).catch(() => undefined))?.timezone;
  }

  async ofSeat(seatId: number): Promise<string | undefined> {
    let name = this.seatBranch.get(seatId);
    if (!name) {
      name = this.call<{ branch: string }>('seats.get', { id: seatId }).then((s) => s.branch, () => undefined);
      this.seatBranch.set(seatId, name);
    }
    const branch = await name;
    return branch === undefined ? undefined : this.ofBranch(branch);
  }

  /** Zones of many seats at once (the lookups are pipelined). */
  async ofSeats(seatIds: number[]): Promise<Map<number, string | undefined>> {
    const ids = [...new Set(seatIds)];
    const zones = await Promise.all(ids.map((id) => this.ofSeat(id)));
    return new Map(ids.map((id, i) => [id, zones[i]]));
  }
}

/** A positive integer id typed on the command line. */
export function parseId(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${what} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}
