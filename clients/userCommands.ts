// The everyday `carrel` subcommands (docs/protocol.md): login, register, branches, seats, reserve,
// sit, mine, checkin, checkout, cancel. Tables for people by default, --json for scripts; the
// token from `carrel login` is remembered per server (tokenStore.ts). Output, errors and exit
// codes are cliIo.ts's, shared with the waitlist commands. Times are shown in the branch's
// time zone, marked ("2030-01-07 10:00 EST"), and typed times are read there too; a seat is
// named by its id or its label (seatRef.ts); a refusal says what to type next (nextSteps.ts).
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import type { MethodArgs } from '../src/wire/args.js';
import type { ReservationWire } from '../src/wire/types.js';
import { UsageError, parseId, processIo, runCommand, type CliIo, type ErrorContext, type Output, type Session } from './cliIo.js';
import { afterCheckIn, afterReserve, afterReserveAny } from './nextSteps.js';
import { resolveSeat, unknownBranch } from './seatRef.js';
import { table } from './table.js';
import { formatHours, formatRange, formatTime, parseTimeInput } from './timeInput.js';

interface CommonOpts {
  server?: string;
  json?: boolean;
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

const RESERVATION_HEADERS = ['ID', 'BRANCH', 'SEAT', 'START', 'END', 'STATUS'];

/** Reservations with their branch and seat label (looked up once per seat), times in the branch's zone. */
async function reservationTable(s: Session, rs: ReservationWire[]): Promise<string> {
  const zones = await s.zones.ofSeats(rs.map((r) => r.seatId));
  const seats = new Map(await Promise.all([...new Set(rs.map((r) => r.seatId))].map(async (id) => [id, await s.zones.seat(id)] as const)));
  return table(
    RESERVATION_HEADERS,
    rs.map((r) => {
      const seat = seats.get(r.seatId);
      return [r.id, seat?.branch ?? '?', seat?.label ?? `#${r.seatId}`, formatTime(r.start, zones.get(r.seatId)), formatTime(r.end, zones.get(r.seatId)), r.status];
    }),
  );
}

async function describe(s: Session, r: ReservationWire): Promise<string> {
  const seat = await s.zones.seat(r.seatId);
  const where = seat ? `seat ${seat.label} (${seat.branch}, id ${r.seatId})` : `seat ${r.seatId}`;
  return `reservation ${r.id}: ${where}, ${formatRange(r.start, r.end, await s.zones.ofSeat(r.seatId))}, ${r.status}`;
}

/** Reads a typed time; without an offset, in `zone` (the branch's), else this machine's. */
function time(s: Session, value: string, what: string, zone?: string): string {
  try {
    return parseTimeInput(value, s.now(), zone);
  } catch (err) {
    throw new UsageError(`${what}: ${(err as Error).message}`);
  }
}

const serverFlag = (opts: CommonOpts): string => (opts.server === undefined ? '' : ` --server ${opts.server}`);

function limitOf(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new UsageError(`--limit must be an integer from 1 to 100, got ${JSON.stringify(text)}`);
  return n;
}

export function registerUserCommands(program: Command, io: CliIo = processIo): void {
  const common = (cmd: Command) =>
    cmd.option('-s, --server <host:port>', 'server address (default: $CARREL_SERVER, else 127.0.0.1:9000)').option('--json', 'print JSON for scripts (errors too, on stderr)');
  const run =
    <O extends CommonOpts>(body: (s: Session, opts: O) => Promise<Output>) =>
    (opts: O): Promise<void> =>
      runCommand(io, opts, (s) => body(s, opts));

  common(program.command('login').description('log in and remember the token for later commands'))
    .option('--student-id <id>', 'student id (prompted when missing)')
    .option('--password <password>', 'password (prompted, hidden, when missing)')
    .action(
      run(async (s, opts: CommonOpts & { studentId?: string; password?: string }) => {
        const studentId = opts.studentId ?? (await prompt('student id: '));
        const password = opts.password ?? (await prompt('password: ', true));
        // server.info's ports are remembered too, so `carrel watch` on this server's subscriber
        // port finds this token (tokenStore.ts).
        const info = s.call('server.info').catch(() => undefined);
        const login = await s.call('auth.login', { studentId, password });
        const ports = (await info)?.ports;
        s.store.set(s.server, { ...login, ...(ports ? { ports } : {}) });
        return {
          value: { user: login.user, expiresAt: login.expiresAt },
          text: () => `logged in as ${login.user.name} (${login.user.studentId}) until ${formatTime(login.expiresAt)}`,
        };
      }),
    );

  common(program.command('logout').description('forget the remembered token for this server')).action(
    run(async (s: Session) => {
      const forgot = s.store.delete(s.server);
      return { value: { loggedOut: forgot }, text: () => (forgot ? 'logged out' : 'was not logged in') };
    }),
  );

  common(program.command('register').description('create a student account'))
    .option('--student-id <id>', 'student id (prompted when missing)')
    .option('--name <name>', 'your name (prompted when missing)')
    .option('--password <password>', 'password, at least 8 characters (prompted, hidden, when missing)')
    .action(
      run(async (s, opts: CommonOpts & { studentId?: string; name?: string; password?: string }) => {
        const studentId = opts.studentId ?? (await prompt('student id: '));
        const name = opts.name ?? (await prompt('name: '));
        const password = opts.password ?? (await prompt('password: ', true));
        const { user } = await s.call('auth.register', { studentId, name, password });
        const server = opts.server === undefined ? '' : ` --server ${opts.server}`;
        return { value: { user }, text: () => `registered ${user.name} (${user.studentId}); now run: carrel login --student-id ${user.studentId}${server}` };
      }),
    );

  common(program.command('branches').description('branches with opening hours (in the branch\'s time zone) and live seat counts')).action(
    run(async (s) => {
      const branches = await s.zones.branches();
      return {
        value: branches,
        text: () =>
          table(
            ['ID', 'BRANCH', 'TIMEZONE', 'HOURS', 'FREE', 'RESERVED', 'OCCUPIED', 'UNAVAILABLE', 'TOTAL'],
            branches.map((b) => [b.id, b.name, b.timezone, formatHours(b.hours), b.counts.free, b.counts.reserved, b.counts.occupied, b.counts.unavailable, b.counts.total]),
          ),
      };
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
    .option('--start <time>', 'window start (ISO, "today 14:00", …; without an offset: the --branch\'s time zone, else this machine\'s)')
    .option('--end <time>', 'window end')
    .action(
      run(async (s, opts: CommonOpts & { branch?: string; area?: string; power?: boolean; monitor?: boolean; available?: boolean; start?: string; end?: string }) => {
        const args: NonNullable<MethodArgs<'seats.list'>> = {};
        if (opts.branch !== undefined) args.branch = opts.branch;
        if (opts.area !== undefined) args.area = opts.area;
        if (opts.power !== undefined) args.hasPower = opts.power;
        if (opts.monitor !== undefined) args.hasMonitor = opts.monitor;
        if (opts.available) args.availableOnly = true;
        // With a branch, typed times are that branch's; across branches, this machine's.
        if (opts.start !== undefined) time(s, opts.start, '--start');
        if (opts.end !== undefined) time(s, opts.end, '--end');
        const zone = opts.branch !== undefined && (opts.start !== undefined || opts.end !== undefined) ? await s.zones.ofBranch(opts.branch) : undefined;
        if (opts.start !== undefined) args.start = time(s, opts.start, '--start', zone);
        if (opts.end !== undefined) args.end = time(s, opts.end, '--end', zone);
        const seats = await s.call('seats.list', args);
        // seats.list answers [] for a branch that does not exist; a typo should not read as "full".
        if (seats.length === 0 && opts.branch !== undefined && !(await s.zones.branch(opts.branch))) throw await unknownBranch(s, opts.branch);
        return {
          value: seats,
          text: () =>
            seats.length === 0
              ? 'no seats match'
              : table(
                  ['ID', 'BRANCH', 'AREA', 'LABEL', 'POWER', 'MONITOR', 'NOW', 'AVAILABLE'],
                  seats.map((x) => [x.id, x.branch, x.area, x.label, x.hasPower ? 'yes' : '-', x.hasMonitor ? 'yes' : '-', x.live, x.available ? 'yes' : 'no']),
                ),
        };
      }),
    );

  common(
    program
      .command('reserve')
      .description(
        'book a seat, e.g. carrel reserve G-13 --branch "Main Library" --start "tomorrow 9:00" --end "tomorrow 11:00"; ' +
          'without a seat, the best free one of --branch that matches (--area, --power, --monitor, --near), e.g. carrel reserve --branch "Main Library" --power --start … --end …',
      ),
  )
    .argument('[seat]', 'seat id or label (see `carrel seats`); leave it out for any free seat of --branch')
    .option('-b, --branch <name-or-id>', 'the seat\'s branch (needed for a label that several branches have); without a seat, the branch to book in')
    .option('-a, --area <area>', 'without a seat: only seats of this area, e.g. "Quiet Floor"')
    .option('--power', 'without a seat: only seats with a power outlet')
    .option('--no-power', 'without a seat: only seats without one')
    .option('--monitor', 'without a seat: only seats with a monitor')
    .option('--no-monitor', 'without a seat: only seats without one')
    .option('--near <seat>', 'without a seat: prefer seats close to this one (id or label), in its area')
    .requiredOption('--start <time>', 'start (ISO, "today 14:00", "tomorrow 9:30", "2030-01-07 14:00"; without an offset: the branch\'s time zone)')
    .requiredOption('--end <time>', 'end')
    .option('-k, --key <idempotencyKey>', 'idempotency key: a retry with the same key never books twice')
    .action(
      (
        seatRef: string | undefined,
        opts: CommonOpts & { branch?: string; area?: string; power?: boolean; monitor?: boolean; near?: string; start: string; end: string; key?: string },
      ) =>
        runCommand(io, opts, async (s, ctx) => {
          // The times' form is checked before anything is asked of the server.
          time(s, opts.start, '--start');
          time(s, opts.end, '--end');
          if (seatRef === undefined) return reserveAny(s, ctx, opts);
          for (const [flag, given] of [['--area', opts.area], ['--power', opts.power], ['--monitor', opts.monitor], ['--near', opts.near]] as const) {
            if (given !== undefined) throw new UsageError(`${flag} chooses among a branch's seats: leave out the seat, or leave out ${flag}`);
          }
          const seat = await resolveSeat(s, seatRef, opts.branch);
          const branch = await s.zones.branch(seat.branch).catch(() => undefined);
          const zone = branch?.timezone;
          const args: MethodArgs<'reservations.create'> = { seatId: seat.id, start: time(s, opts.start, '--start', zone), end: time(s, opts.end, '--end', zone) };
          if (opts.key !== undefined) args.idempotencyKey = opts.key;
          ctx.zone = async () => zone;
          ctx.next = async (e) => afterReserve({ seat, branch, start: args.start, end: args.end, serverFlag: serverFlag(opts) }, e, s.now().getTime());
          const r = await s.call('reservations.create', args);
          return { value: r, text: async () => `booked ${await describe(s, r)}` };
        }),
    );

  common(program.command('sit').description('sit at a free seat now: books it from the slot under way (until the next booking or closing, at most rules.walkInMinutes) and checks you in, e.g. carrel sit G-13'))
    .argument('<seat>', 'seat id or label (see `carrel seats`)')
    .option('-b, --branch <name-or-id>', 'the seat\'s branch (needed for a label that several branches have)')
    .action((seatRef: string, opts: CommonOpts & { branch?: string }) =>
      runCommand(io, opts, async (s, ctx) => {
        const seat = await resolveSeat(s, seatRef, opts.branch);
        ctx.zone = async () => (await s.zones.branch(seat.branch).catch(() => undefined))?.timezone;
        const r = await s.call('reservations.walkIn', { seatId: seat.id });
        return { value: r, text: async () => `sitting, checked in: ${await describe(s, r)}` };
      }),
    );

  /** `carrel reserve --branch …` without a seat: the server picks the best free one; the reply says which, and where. */
  async function reserveAny(
    s: Session,
    ctx: ErrorContext,
    opts: CommonOpts & { branch?: string; area?: string; power?: boolean; monitor?: boolean; near?: string; start: string; end: string; key?: string },
  ): Promise<Output> {
    if (opts.branch === undefined) throw new UsageError('give a seat, or --branch to book any free seat of that branch');
    const branch = await s.zones.branch(opts.branch).catch(() => undefined);
    if (!branch) throw await unknownBranch(s, opts.branch);
    const zone = branch.timezone;
    const args: MethodArgs<'reservations.create'> = { branch: branch.id, start: time(s, opts.start, '--start', zone), end: time(s, opts.end, '--end', zone) };
    if (opts.area !== undefined) args.area = opts.area;
    if (opts.power !== undefined) args.hasPower = opts.power;
    if (opts.monitor !== undefined) args.hasMonitor = opts.monitor;
    if (opts.near !== undefined) args.near = (await resolveSeat(s, opts.near, String(branch.id))).id;
    if (opts.key !== undefined) args.idempotencyKey = opts.key;
    ctx.zone = async () => zone;
    ctx.next = async (e) => afterReserveAny({ branch, start: args.start, end: args.end, serverFlag: serverFlag(opts) }, e);
    const r = await s.call('reservations.create', args);
    return {
      value: r,
      text: async () => {
        const seat = await s.zones.seat(r.seatId);
        const where = seat ? `seat ${seat.label} (${seat.area}, ${seat.branch}, id ${r.seatId})` : `seat ${r.seatId} (${branch.name})`;
        return `booked reservation ${r.id}: ${where}, ${formatRange(r.start, r.end, zone)}, ${r.status}`;
      },
    };
  }

  common(program.command('mine').description('your upcoming reservations (or --history), a page at a time'))
    .option('--history', 'past and cancelled reservations instead')
    .option('-n, --limit <n>', 'how many per page, 1-100 (default 20; 100 with --all)')
    .option('--cursor <cursor>', 'the page after the one that printed this cursor')
    .option('--all', 'every page')
    .action((opts: CommonOpts & { history?: boolean; limit?: string; cursor?: string; all?: boolean }) =>
      runCommand(io, opts, async (s) => {
        const scope = opts.history ? 'history' : 'upcoming';
        const limit = limitOf(opts.limit, opts.all ? 100 : 20);
        let cursor: string | null = opts.cursor ?? null;
        const reservations: ReservationWire[] = [];
        do {
          const page = await s.call('reservations.mine', { scope, limit, ...(cursor ? { cursor } : {}) });
          reservations.push(...page.reservations);
          cursor = page.nextCursor;
        } while (opts.all && cursor);
        // The next page's command, ready to paste (the cursor is tied to the scope and limit).
        const more = `carrel mine${opts.history ? ' --history' : ''}${opts.limit ? ` --limit ${limit}` : ''} --cursor ${cursor}${opts.server ? ` --server ${opts.server}` : ''}`;
        return {
          value: { reservations, nextCursor: cursor },
          text: async () =>
            reservations.length === 0
              ? `no ${opts.history ? 'past' : 'upcoming'} reservations${opts.cursor ? ' after this cursor' : ''}`
              : (await reservationTable(s, reservations)) + (cursor ? `\n(more: ${more}, or --all)` : ''),
        };
      }),
    );

  const transition = (name: string, method: 'reservations.checkIn' | 'reservations.checkOut' | 'reservations.cancel', description: string, verb: string) =>
    common(program.command(name).description(description))
      .argument('<id>', 'reservation id (see `carrel mine`)')
      .action((id: string, opts: CommonOpts) =>
        runCommand(io, opts, async (s, ctx) => {
          const rid = parseId(id, '<id>');
          let looked: Promise<string | undefined> | undefined;
          const zone = (): Promise<string | undefined> => (looked ??= s.call('reservations.get', { id: rid }).then((r) => s.zones.ofSeat(r.seatId)));
          ctx.zone = zone;
          ctx.next = async (e) => {
            if (e.code === 'NOT_FOUND') return { next: [`carrel mine${serverFlag(opts)}   (your reservations and their ids)`] };
            return name === 'checkin' ? afterCheckIn(rid, e, await zone(), serverFlag(opts), s.now().getTime()) : undefined;
          };
          const r = await s.call(method, { id: rid });
          return { value: r, text: async () => `${verb} ${await describe(s, r)}` };
        }),
      );
  transition('checkin', 'reservations.checkIn', 'check in to a reservation, inside its check-in window (it opens a little before the start and closes a grace period after; outside it, the error says when it is open)', 'checked in:');
  transition('checkout', 'reservations.checkOut', 'leave early; the rest of the booking becomes free', 'checked out:');
  transition('cancel', 'reservations.cancel', 'cancel a reservation', 'cancelled');
}

