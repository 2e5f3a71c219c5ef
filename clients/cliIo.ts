// What every RPC client command shares (docs/protocol.md): where its output goes, the server address
// and remembered token, one way to print a result (a table or a line for people, the value as
// JSON with --json) and one way to print an error:
//
//   people:  error FAILED_PRECONDITION: check-in is open 2030-01-07 09:45 → 10:15 EST, not yet [rule: checkInWindow]
//            next: carrel checkin 7, from 2030-01-07 09:45 EST
//   --json:  {"code":"FAILED_PRECONDITION","message":"…","details":{…}}   (one line, on stderr)
//
// What the server refused reads "error CODE: …", in the words of the command line (the server's
// message names RPC methods; a person typed `carrel reserve`), times in the branch's zone, and
// "next:" lines saying what to type next, when there is something to type; what this side found
// ("cannot connect", a bad time) reads "carrel: …". Exit codes: 1 when the server or the network
// said no, 2 when the command line was wrong. --json keeps the server's own message and details.
// Commands take a CliIo so tests can run them in-process.
import { RpcCallError, RpcClient, parseServer } from './rpcClient.js';
import { formatRange } from './timeInput.js';
import { TokenStore, tokenFilePath } from './tokenStore.js';
import type { MethodArgs } from '../src/wire/args.js';
import { findBranch, parseBranchRef } from '../src/wire/branchRef.js';
import type { BranchWire, MethodName, MethodResults, SeatWire } from '../src/wire/types.js';

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

/** A method call as the wire module types it (src/wire): its args[0] and its result. */
export type Call = <M extends MethodName>(method: M, args?: MethodArgs<M>) => Promise<MethodResults[M]>;

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
  /**
   * What the person could type next after this refusal ("next:" lines), from the command that
   * knows what was asked; looked up only when an error is printed. Failures are ignored.
   */
  next?: (e: RefusalInfo) => Promise<Refusal | undefined>;
}

/** A refusal from the server, as the hint providers see it. */
export interface RefusalInfo {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

/** How a command words a refusal: its own message (else the server's), and what to type next. */
export interface Refusal {
  message?: string;
  next?: string[];
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
    const call: Call = async <M extends MethodName>(method: M, args?: MethodArgs<M>): Promise<MethodResults[M]> => {
      const c = await connect();
      const reply = await c.request(method, args === undefined ? undefined : [args], token).catch((err: Error) => {
        throw new ClientError('UNAVAILABLE', `${server}: ${err.message}`);
      });
      if (reply.error) throw new RpcCallError(reply.error);
      return reply.result as MethodResults[M];
    };
    const session: Session = { server, store, token, call, zones: new ZoneBook(call), now: io.now ?? (() => new Date()) };
    const output = await body(session, ctx);
    io.out(`${opts.json ? JSON.stringify(output.value, null, 2) : await output.text()}\n`);
  } catch (err) {
    await printError(io, err, { json: opts.json === true, server, hadToken: token !== undefined, ctx, now: io.now });
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
export async function printError(io: CliIo, err: unknown, o: { json: boolean; server?: string; hadToken?: boolean; ctx?: ErrorContext; now?: () => Date }): Promise<void> {
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
  const server = o.server ?? DEFAULT_RPC_SERVER;
  const login = `carrel login${server === DEFAULT_RPC_SERVER ? '' : ` --server ${server}`}`;
  let message = cliWords(e.message);
  let next: string[] = [];
  if (e.code === 'UNAUTHENTICATED' && /\btoken\b|no longer exists/.test(e.message)) {
    // "reservations.mine needs a token (auth.login)": the server's words name the RPC method and
    // auth.login; the person needs the command. (A wrong password is UNAUTHENTICATED too, and
    // its message is already the person's.)
    message = o.hadToken ? `the token remembered for ${server} was refused (${cliWords(e.message)})` : `not logged in to ${server}`;
    next = [login];
  } else {
    const zone = await (o.ctx?.zone?.() ?? Promise.resolve(undefined)).catch(() => undefined);
    const conflict = d.conflict as { start?: string; end?: string } | undefined;
    if (conflict?.start && conflict.end) message += ` (booked ${formatRange(conflict.start, conflict.end, zone)})`;
    if (d.rule === 'checkInWindow' && typeof d.opensAt === 'string' && typeof d.closesAt === 'string') {
      const now = (o.now ?? (() => new Date()))().getTime();
      const early = now < Date.parse(d.opensAt);
      message = `check-in is open ${formatRange(d.opensAt, d.closesAt, zone)}, ${early ? 'not yet' : 'no longer'}`;
    }
    const refusal = await o.ctx?.next?.({ code: e.code, message: e.message, details: d }).catch(() => undefined);
    if (refusal?.message) message = refusal.message;
    if (refusal?.next) next = refusal.next;
  }
  const rule = d.rule !== undefined ? ` [rule: ${String(d.rule)}]` : '';
  io.err(`error ${e.code}: ${message}${rule}\n${next.map((n, i) => `${i === 0 ? 'next' : '  or'}: ${n}\n`).join('')}`);
}

/**
 * RPC method names in a server message, as the commands a person types: "book it with
 * reservations.create" reads "book it with `carrel reserve`".
 */
const COMMAND_OF: Record<string, string> = {
  'auth.login': 'carrel login',
  'auth.register': 'carrel register',
  'branches.list': 'carrel branches',
  'seats.list': 'carrel seats',
  'reservations.create': 'carrel reserve',
  'reservations.mine': 'carrel mine',
  'reservations.cancel': 'carrel cancel',
  'reservations.checkIn': 'carrel checkin',
  'reservations.checkOut': 'carrel checkout',
  'waitlist.join': 'carrel waitlist join',
  'waitlist.mine': 'carrel waitlist list',
  'waitlist.leave': 'carrel waitlist leave',
  'waitlist.claim': 'carrel waitlist claim',
  'admin.sensors.addKey': 'carrel admin sensor-keys add',
  'admin.sensors.listKeys': 'carrel admin sensor-keys list',
  'admin.sensors.revokeKey': 'carrel admin sensor-keys revoke',
  'admin.reports.utilization': 'carrel report',
  'admin.users.strikes': 'carrel admin strikes list',
  'admin.users.clearStrikes': 'carrel admin strikes clear',
};

export function cliWords(message: string): string {
  return message.replace(/\b[a-z]+(?:\.[a-zA-Z]+)+\b/g, (name) => (COMMAND_OF[name] ? `\`${COMMAND_OF[name]}\`` : name));
}

/** A value as a shell word: bare when safe, else in single quotes. */
export function shellWord(text: string | number): string {
  const t = String(text);
  return /^[\w@%+=:,./-]+$/.test(t) ? t : `'${t.replace(/'/g, `'\\''`)}'`;
}

/**
 * What the commands look up to speak a person's language: branches (zones, hours) from
 * branches.list, seats (branch, label) from seats.get, each once per command. A failed lookup
 * leaves the answer undefined (times are then shown in this machine's zone, still marked).
 */
export class ZoneBook {
  private branchList: Promise<BranchWire[]> | undefined;
  private readonly seats = new Map<number, Promise<SeatWire | undefined>>();

  constructor(private readonly call: Call) {}

  branches(): Promise<BranchWire[]> {
    this.branchList ??= this.call('branches.list');
    return this.branchList;
  }

  /** A branch by name or id, as the server reads a branch reference (src/wire/branchRef.ts). */
  async branch(ref: string | number): Promise<BranchWire | undefined> {
    const parsed = parseBranchRef(ref);
    return typeof parsed === 'string' ? undefined : findBranch(parsed, await this.branches());
  }

  async ofBranch(ref: string | number): Promise<string | undefined> {
    return (await this.branch(ref).catch(() => undefined))?.timezone;
  }

  /** A seat by id (seats.get), or undefined when there is none or the lookup failed. */
  seat(seatId: number): Promise<SeatWire | undefined> {
    let seat = this.seats.get(seatId);
    if (!seat) {
      seat = this.call('seats.get', { id: seatId }).then(
        (x) => x,
        () => undefined,
      );
      this.seats.set(seatId, seat);
    }
    return seat;
  }

  /** Remembers seats read another way (seats.list), so seat() need not ask again. */
  know(seats: SeatWire[]): void {
    for (const x of seats) if (!this.seats.has(x.id)) this.seats.set(x.id, Promise.resolve(x));
  }

  async ofSeat(seatId: number): Promise<string | undefined> {
    const seat = await this.seat(seatId);
    return seat === undefined ? undefined : this.ofBranch(seat.branch);
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
