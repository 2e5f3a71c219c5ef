// `carrel waitlist join|list|leave|claim` (DESIGN §8): the waitlist from the command line, a
// table for people by default and the server's JSON with --json. The token comes from the
// token store (clients/tokenStore.ts), remembered per server: --server, else $CARREL_SERVER, else 127.0.0.1:9000.
import { Command, Option } from 'commander';
import { RpcClient, parseServer, type WireErrorShape } from './rpcClient.js';
import { TokenStore, tokenFilePath } from './tokenStore.js';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Sets the exit status without ending the process (tests run commands in-process). */
  setExitCode(code: number): void;
  env: NodeJS.ProcessEnv;
}

const processIo: CliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  setExitCode: (c) => void (process.exitCode = c),
  env: process.env,
};

interface CommonOpts {
  server?: string;
  json?: boolean;
}

export interface WaitlistEntry {
  id: number;
  position: number | null;
  seatId?: number;
  branch?: string;
  branchId: number;
  start: string;
  end: string;
  status: string;
  offer?: { reservationId: number; seatId: number; offerExpiresAt: string };
  reservationId?: number;
}

interface Reservation {
  id: number;
  seatId: number;
  start: string;
  end: string;
  status: string;
}

class UsageError extends Error {
  readonly exitCode = 2;
}

export function registerWaitlistCommands(program: Command, io: CliIo = processIo): Command {
  const wl = program.command('waitlist').description('wait for a booked seat (or any seat of a branch) to free up');
  const common = (cmd: Command): Command =>
    cmd
      .option('-s, --server <host:port>', 'server address (default: $CARREL_SERVER, else 127.0.0.1:9000)')
      .option('--json', 'print the server\'s JSON instead of a table');

  common(
    wl
      .command('join')
      .description('join the waitlist for a seat or a branch, e.g. carrel waitlist join --seat 12 --start 2026-03-02T14:00 --end 2026-03-02T16:00')
      .addOption(new Option('--seat <id>', 'a seat id').conflicts('branch'))
      .addOption(new Option('--branch <name>', 'any seat of this branch (name or id)').conflicts('seat'))
      .requiredOption('--start <time>', 'start, ISO-8601 (without an offset: local time)')
      .requiredOption('--end <time>', 'end, ISO-8601 (without an offset: local time)'),
  ).action((opts: CommonOpts & { seat?: string; branch?: string; start: string; end: string }) =>
    run(io, opts, async (call) => {
      if ((opts.seat === undefined) === (opts.branch === undefined)) throw new UsageError('give --seat <id> or --branch <name>');
      const args: Record<string, unknown> = { start: toIsoWithOffset(opts.start, '--start'), end: toIsoWithOffset(opts.end, '--end') };
      if (opts.seat !== undefined) args.seatId = parseId(opts.seat, '--seat');
      else args.branch = opts.branch;
      const entry = await call<WaitlistEntry>('waitlist.join', args);
      return opts.json ? entry : entriesTable([entry]);
    }),
  );

  common(wl.command('list').alias('mine').description('your waitlist entries, with position and offers')).action((opts: CommonOpts) =>
    run(io, opts, async (call) => {
      const entries = await call<WaitlistEntry[]>('waitlist.mine');
      if (opts.json) return entries;
      return entries.length === 0 ? 'You are on no waitlist.' : entriesTable(entries);
    }),
  );

  common(wl.command('leave').description('leave a waitlist entry (declines its offer, if any)').argument('<id>', 'entry id')).action(
    (id: string, opts: CommonOpts) =>
      run(io, opts, async (call) => {
        const entryId = parseId(id, '<id>');
        const result = await call<Record<string, never>>('waitlist.leave', { id: entryId });
        return opts.json ? result : `Left waitlist entry ${entryId}.`;
      }),
  );

  common(wl.command('claim').description('turn the offer on a waitlist entry into a reservation').argument('<id>', 'entry id')).action(
    (id: string, opts: CommonOpts) =>
      run(io, opts, async (call) => {
        const r = await call<Reservation>('waitlist.claim', { id: parseId(id, '<id>') });
        if (opts.json) return r;
        return table(['RESERVATION', 'SEAT', 'START', 'END', 'STATUS'], [[String(r.id), String(r.seatId), fmtTime(r.start), fmtTime(r.end), r.status]]);
      }),
  );
  return wl;
}

type Call = <T>(method: string, args?: Record<string, unknown>) => Promise<T>;

class RpcFailure extends Error {
  constructor(readonly error: WireErrorShape) {
    super(`${error.code}: ${error.message}`);
  }
}

/** Connects with the stored token, runs body, prints its result, maps failures to exit codes. */
async function run(io: CliIo, opts: CommonOpts, body: (call: Call) => Promise<unknown>): Promise<void> {
  let client: RpcClient | undefined;
  try {
    const server = opts.server ?? io.env.CARREL_SERVER ?? '127.0.0.1:9000';
    const stored = new TokenStore(tokenFilePath(io.env)).get(server);
    if (!stored) throw new Error(`not logged in to ${server} (no token in ${tokenFilePath(io.env)}); run carrel login first`);
    const { host, port } = parseServer(server, 9000);
    client = await RpcClient.connect(host, port);
    const c = client;
    const call: Call = async <T>(method: string, args?: Record<string, unknown>): Promise<T> => {
      const reply = await c.request(method, args === undefined ? undefined : [args], stored.token);
      if (reply.error) throw new RpcFailure(reply.error);
      return reply.result as T;
    };
    const result = await body(call);
    io.out(typeof result === 'string' ? `${result}\n` : `${JSON.stringify(result, null, 2)}\n`);
  } catch (err) {
    if (err instanceof RpcFailure && opts.json) io.err(`${JSON.stringify(err.error, null, 2)}\n`);
    else io.err(`carrel: ${(err as Error).message}\n`);
    io.setExitCode(err instanceof UsageError ? 2 : 1);
  } finally {
    client?.close();
  }
}

function parseId(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${what} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

/** ISO-8601 with the local offset; a time without an offset is read as local time. */
export function toIsoWithOffset(text: string, what: string): string {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`${what}: cannot read ${JSON.stringify(text)} as a time (use e.g. 2026-03-02T14:00)`);
  const d = new Date(ms);
  const offsetMin = -d.getTimezoneOffset();
  const sign = offsetMin >= 0 ? '+' : '-';
  const abs = Math.abs(offsetMin);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return (
    `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}` +
    `${sign}${p(Math.floor(abs / 60))}:${p(abs % 60)}`
  );
}

function fmtTime(iso: string): string {
  const d = new Date(iso);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function entriesTable(entries: WaitlistEntry[]): string {
  const rows = entries.map((e) => [
    String(e.id),
    e.status,
    e.position === null ? '-' : String(e.position),
    e.seatId !== undefined ? `seat ${e.seatId}` : `branch ${e.branch ?? e.branchId}`,
    fmtTime(e.start),
    fmtTime(e.end),
    e.offer
      ? `seat ${e.offer.seatId}, reservation ${e.offer.reservationId}, claim by ${fmtTime(e.offer.offerExpiresAt)}`
      : e.reservationId !== undefined
        ? `reservation ${e.reservationId}`
        : '',
  ]);
  return table(['ID', 'STATUS', 'POS', 'FOR', 'START', 'END', 'OFFER'], rows);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
