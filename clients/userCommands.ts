// The everyday `carrel` subcommands (DESIGN §8): login, register, branches, seats, reserve,
// mine, checkin, checkout, cancel. Tables for people by default, --json for scripts; the
// token from `carrel login` is remembered per server (tokenStore.ts). A failed call prints
// "error CODE: message" to stderr and exits 1.
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { RpcCallError, RpcClient, parseServer } from './rpcClient.js';
import { table } from './table.js';
import { formatLocal, parseTimeInput } from './timeInput.js';
import { TokenStore, type StoredLogin } from './tokenStore.js';

export const DEFAULT_SERVER = process.env.CARREL_SERVER ?? '127.0.0.1:9000';

interface CommonOpts {
  server: string;
  json?: boolean;
}

interface Reservation {
  id: number;
  seatId: number;
  start: string;
  end: string;
  status: string;
  checkedInAt?: string;
}

/** Connects, sends the remembered token (if any) with each call, and always closes. */
export async function withClient<T>(opts: { server: string }, fn: (client: RpcClient, store: TokenStore) => Promise<T>): Promise<T> {
  const { host, port } = parseServer(opts.server, 9000);
  const store = new TokenStore();
  const client = await RpcClient.connect(host, port);
  client.token = store.get(opts.server)?.token;
  try {
    return await fn(client, store);
  } finally {
    client.close();
  }
}

/** Runs an action; an RPC error becomes "error CODE: message" on stderr and exit code 1. */
function run<A extends unknown[]>(action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      if (!(err instanceof RpcCallError)) throw err;
      const rule = err.details?.rule ? ` [rule: ${String(err.details.rule)}]` : '';
      const conflict = err.details?.conflict as { start: string; end: string } | undefined;
      const clash = conflict ? ` (booked ${formatLocal(conflict.start)} → ${formatLocal(conflict.end)})` : '';
      const hint = err.code === 'UNAUTHENTICATED' ? '\n(run `carrel login` first)' : '';
      process.stderr.write(`error ${err.message}${rule}${clash}${hint}\n`);
      process.exitCode = 1;
    }
  };
}

function print(opts: CommonOpts, value: unknown, human: () => string): void {
  process.stdout.write(`${opts.json ? JSON.stringify(value, null, 2) : human()}\n`);
}

async function prompt(question: string, hidden = false): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stdout.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: process.stdin.isTTY === true });
  try {
    const answer = rl.question(question);
    muted = hidden;
    const value = await answer;
    if (hidden) process.stdout.write('\n');
    return value.trim();
  } finally {
    rl.close();
  }
}

const reservationRows = (rs: Reservation[]) =>
  rs.map((r) => [r.id, r.seatId, formatLocal(r.start), formatLocal(r.end), r.status]);
const RESERVATION_HEADERS = ['ID', 'SEAT', 'START', 'END', 'STATUS'];

function describe(r: Reservation): string {
  return `reservation ${r.id}: seat ${r.seatId}, ${formatLocal(r.start)} → ${formatLocal(r.end)}, ${r.status}`;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw Object.assign(new Error(`"${value}" is not an id`), { exitCode: 2 });
  return n;
}

function time(value: string): string {
  try {
    return parseTimeInput(value);
  } catch (err) {
    throw Object.assign(err as Error, { exitCode: 2 });
  }
}

export function registerUserCommands(program: Command): void {
  const common = (cmd: Command) =>
    cmd.option('-s, --server <host:port>', 'server address', DEFAULT_SERVER).option('--json', 'print JSON for scripts');

  common(program.command('login').description('log in and remember the token for later commands'))
    .option('--student-id <id>', 'student id (prompted when missing)')
    .option('--password <password>', 'password (prompted, hidden, when missing)')
    .action(
      run(async (opts: CommonOpts & { studentId?: string; password?: string }) => {
        const studentId = opts.studentId ?? (await prompt('student id: '));
        const password = opts.password ?? (await prompt('password: ', true));
        await withClient(opts, async (client, store) => {
          const login = await client.call<StoredLogin>('auth.login', { studentId, password });
          store.set(opts.server, login);
          print(opts, { user: login.user, expiresAt: login.expiresAt }, () =>
            `logged in as ${login.user.name} (${login.user.studentId}) until ${formatLocal(login.expiresAt)}`,
          );
        });
      }),
    );

  common(program.command('logout').description('forget the remembered token for this server')).action(
    run(async (opts: CommonOpts) => {
      const forgot = new TokenStore().delete(opts.server);
      print(opts, { loggedOut: forgot }, () => (forgot ? 'logged out' : 'was not logged in'));
    }),
  );

  common(program.command('register').description('create a student account'))
    .option('--student-id <id>', 'student id (prompted when missing)')
    .option('--name <name>', 'your name (prompted when missing)')
    .option('--password <password>', 'password, at least 8 characters (prompted, hidden, when missing)')
    .action(
      run(async (opts: CommonOpts & { studentId?: string; name?: string; password?: string }) => {
        const studentId = opts.studentId ?? (await prompt('student id: '));
        const name = opts.name ?? (await prompt('name: '));
        const password = opts.password ?? (await prompt('password: ', true));
        await withClient(opts, async (client) => {
          const { user } = await client.call<{ user: StoredLogin['user'] }>('auth.register', { studentId, name, password });
          print(opts, { user }, () => `registered ${user.name} (${user.studentId}); now run: carrel login --student-id ${user.studentId}`);
        });
      }),
    );

  common(program.command('branches').description('branches with opening hours and live seat counts')).action(
    run(async (opts: CommonOpts) => {
      await withClient(opts, async (client) => {
        const branches = await client.call<
          Array<{ id: number; name: string; timezone: string; counts: Record<'total' | 'free' | 'reserved' | 'occupied' | 'unavailable', number> }>
        >('branches.list');
        print(opts, branches, () =>
          table(
            ['ID', 'BRANCH', 'TIMEZONE', 'FREE', 'RESERVED', 'OCCUPIED', 'UNAVAILABLE', 'TOTAL'],
            branches.map((b) => [b.id, b.name, b.timezone, b.counts.free, b.counts.reserved, b.counts.occupied, b.counts.unavailable, b.counts.total]),
          ),
        );
      });
    }),
  );

  common(program.command('seats').description('find seats (window defaults to now → +1 h)'))
    .option('-b, --branch <name-or-id>', 'branch name or id')
    .option('-a, --area <area>', 'area, e.g. "Quiet Floor"')
    .option('--power', 'with a power outlet')
    .option('--no-power', 'without a power outlet')
    .option('--monitor', 'with a monitor')
    .option('--no-monitor', 'without a monitor')
    .option('--available', 'only seats free for the whole window')
    .option('--start <time>', 'window start (ISO, "today 14:00", …)')
    .option('--end <time>', 'window end')
    .action(
      run(async (opts: CommonOpts & { branch?: string; area?: string; power?: boolean; monitor?: boolean; available?: boolean; start?: string; end?: string }) => {
        const args: Record<string, unknown> = {};
        if (opts.branch !== undefined) args.branch = opts.branch;
        if (opts.area !== undefined) args.area = opts.area;
        if (opts.power !== undefined) args.hasPower = opts.power;
        if (opts.monitor !== undefined) args.hasMonitor = opts.monitor;
        if (opts.available) args.availableOnly = true;
        if (opts.start !== undefined) args.start = time(opts.start);
        if (opts.end !== undefined) args.end = time(opts.end);
        await withClient(opts, async (client) => {
          const seats = await client.call<
            Array<{ id: number; branch: string; area: string; label: string; hasPower: boolean; hasMonitor: boolean; status: string; available: boolean; live: string }>
          >('seats.list', args);
          print(opts, seats, () =>
            seats.length === 0
              ? 'no seats match'
              : table(
                  ['ID', 'BRANCH', 'AREA', 'LABEL', 'POWER', 'MONITOR', 'NOW', 'AVAILABLE'],
                  seats.map((s) => [s.id, s.branch, s.area, s.label, s.hasPower ? 'yes' : '-', s.hasMonitor ? 'yes' : '-', s.live, s.available ? 'yes' : 'no']),
                ),
          );
        });
      }),
    );

  common(program.command('reserve').description('book a seat'))
    .argument('<seatId>', 'seat id (see `carrel seats`)')
    .requiredOption('--start <time>', 'start (ISO, "today 14:00", "tomorrow 9:30", …)')
    .requiredOption('--end <time>', 'end')
    .option('-k, --key <idempotencyKey>', 'idempotency key: a retry with the same key never books twice')
    .action(
      run(async (seatId: string, opts: CommonOpts & { start: string; end: string; key?: string }) => {
        const args: Record<string, unknown> = { seatId: positiveInt(seatId), start: time(opts.start), end: time(opts.end) };
        if (opts.key !== undefined) args.idempotencyKey = opts.key;
        await withClient(opts, async (client) => {
          const r = await client.call<Reservation>('reservations.create', args);
          print(opts, r, () => `booked ${describe(r)}`);
        });
      }),
    );

  common(program.command('mine').description('your upcoming reservations (or --history)'))
    .option('--history', 'past and cancelled reservations instead')
    .option('-n, --limit <n>', 'how many', '20')
    .action(
      run(async (opts: CommonOpts & { history?: boolean; limit: string }) => {
        await withClient(opts, async (client) => {
          const page = await client.call<{ reservations: Reservation[]; nextCursor: string | null }>('reservations.mine', {
            scope: opts.history ? 'history' : 'upcoming',
            limit: positiveInt(opts.limit),
          });
          print(opts, page, () =>
            page.reservations.length === 0
              ? opts.history
                ? 'no past reservations'
                : 'no upcoming reservations'
              : table(RESERVATION_HEADERS, reservationRows(page.reservations)) + (page.nextCursor ? '\n(more: raise --limit)' : ''),
          );
        });
      }),
    );

  const transition = (name: string, method: string, description: string, verb: string) =>
    common(program.command(name).description(description))
      .argument('<id>', 'reservation id (see `carrel mine`)')
      .action(
        run(async (id: string, opts: CommonOpts) => {
          await withClient(opts, async (client) => {
            const r = await client.call<Reservation>(method, { id: positiveInt(id) });
            print(opts, r, () => `${verb} ${describe(r)}`);
          });
        }),
      );
  transition('checkin', 'reservations.checkIn', 'check in to a reservation (from 15 min before its start)', 'checked in:');
  transition('checkout', 'reservations.checkOut', 'leave early; the rest of the booking becomes free', 'checked out:');
  transition('cancel', 'reservations.cancel', 'cancel a reservation', 'cancelled');
}
