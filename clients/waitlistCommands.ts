// `carrel waitlist join|list|leave|claim` (docs/protocol.md): the waitlist from the command line, a
// table for people by default and the server's JSON with --json. The token, times, output and
// errors work as for every other command (cliIo.ts, timeInput.ts): the token `carrel login`
// remembered for the server, times read as `reserve` reads them and shown in the branch's zone.
import { Command, Option } from 'commander';
import { UsageError, parseId, processIo, runCommand, type CliIo, type Session } from './cliIo.js';
import { table } from './table.js';
import { formatTime, parseTimeInput } from './timeInput.js';

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

function time(s: Session, value: string, what: string): string {
  try {
    return parseTimeInput(value, s.now());
  } catch (err) {
    throw new UsageError(`${what}: ${(err as Error).message}`);
  }
}

export function registerWaitlistCommands(program: Command, io: CliIo = processIo): Command {
  const wl = program.command('waitlist').description('wait for a booked seat (or any seat of a branch) to free up');
  const common = (cmd: Command): Command =>
    cmd
      .option('-s, --server <host:port>', 'server address (default: $CARREL_SERVER, else 127.0.0.1:9000)')
      .option('--json', 'print the server\'s JSON instead of a table (errors too, on stderr)');

  common(
    wl
      .command('join')
      .description('join the waitlist for a seat or a branch, e.g. carrel waitlist join --seat 12 --start "today 14:00" --end "today 16:00"')
      .addOption(new Option('--seat <id>', 'a seat id').conflicts('branch'))
      .addOption(new Option('--branch <name>', 'any seat of this branch (name or id)').conflicts('seat'))
      .requiredOption('--start <time>', 'start (ISO, "today 14:00", "tomorrow 9:30", …; without an offset: this machine\'s time zone)')
      .requiredOption('--end <time>', 'end'),
  ).action((opts: CommonOpts & { seat?: string; branch?: string; start: string; end: string }) =>
    runCommand(io, opts, async (s, ctx) => {
      if ((opts.seat === undefined) === (opts.branch === undefined)) throw new UsageError('give --seat <id> or --branch <name>');
      const args: Record<string, unknown> = { start: time(s, opts.start, '--start'), end: time(s, opts.end, '--end') };
      if (opts.seat !== undefined) {
        const seatId = parseId(opts.seat, '--seat');
        args.seatId = seatId;
        ctx.zone = () => s.zones.ofSeat(seatId);
      } else {
        args.branch = opts.branch;
        ctx.zone = () => s.zones.ofBranch(opts.branch!);
      }
      const entry = await s.call<WaitlistEntry>('waitlist.join', args);
      return { value: entry, text: () => entriesTable(s, [entry]) };
    }),
  );

  common(wl.command('list').alias('mine').description('your waitlist entries, with position and offers')).action((opts: CommonOpts) =>
    runCommand(io, opts, async (s) => {
      const entries = await s.call<WaitlistEntry[]>('waitlist.mine');
      return { value: entries, text: async () => (entries.length === 0 ? 'You are on no waitlist.' : entriesTable(s, entries)) };
    }),
  );

  common(wl.command('leave').description('leave a waitlist entry (declines its offer, if any)').argument('<id>', 'entry id')).action(
    (id: string, opts: CommonOpts) =>
      runCommand(io, opts, async (s) => {
        const entryId = parseId(id, '<id>');
        const result = await s.call<Record<string, never>>('waitlist.leave', { id: entryId });
        return { value: result, text: () => `Left waitlist entry ${entryId}.` };
      }),
  );

  common(wl.command('claim').description('turn the offer on a waitlist entry into a reservation').argument('<id>', 'entry id')).action(
    (id: string, opts: CommonOpts) =>
      runCommand(io, opts, async (s) => {
        const r = await s.call<Reservation>('waitlist.claim', { id: parseId(id, '<id>') });
        return {
          value: r,
          text: async () => {
            const zone = await s.zones.ofSeat(r.seatId);
            return table(['RESERVATION', 'SEAT', 'START', 'END', 'STATUS'], [[r.id, r.seatId, formatTime(r.start, zone), formatTime(r.end, zone), r.status]]);
          },
        };
      }),
  );
  return wl;
}

/** Entries as a table, times in each entry's branch zone. */
export async function entriesTable(s: Session, entries: WaitlistEntry[]): Promise<string> {
  const branches = await s.zones.branches().catch(() => []);
  const zoneOf = (e: WaitlistEntry) => branches.find((b) => b.id === e.branchId)?.timezone;
  const rows = entries.map((e) => [
    e.id,
    e.status,
    e.position === null ? '-' : e.position,
    e.seatId !== undefined ? `seat ${e.seatId}` : `branch ${e.branch ?? e.branchId}`,
    formatTime(e.start, zoneOf(e)),
    formatTime(e.end, zoneOf(e)),
    e.offer
      ? `seat ${e.offer.seatId}, reservation ${e.offer.reservationId}, claim by ${formatTime(e.offer.offerExpiresAt, zoneOf(e))}`
      : e.reservationId !== undefined
        ? `reservation ${e.reservationId}`
        : '',
  ]);
  return table(['ID', 'STATUS', 'POS', 'FOR', 'START', 'END', 'OFFER'], rows);
}
