// `carrel waitlist join|list|leave|claim` (docs/protocol.md): the waitlist from the command line, a
// table for people by default and the server's JSON with --json. The token, times, output and
// errors work as for every other command (cliIo.ts, timeInput.ts): the token `carrel login`
// remembered for the server, times read as `reserve` reads them and shown in the branch's zone,
// a seat named by id or label (seatRef.ts), and a refusal followed by what to type next.
import type { Command } from 'commander';
import { UsageError, parseId, processIo, runCommand, shellWord, type CliIo, type Refusal, type RefusalInfo, type Session } from './cliIo.js';
import type { MethodArgs } from '../src/wire/args.js';
import type { WaitlistEntryWire } from '../src/wire/types.js';
import { resolveSeat } from './seatRef.js';
import { table } from './table.js';
import { formatRange, formatTime, parseTimeInput, typedTime } from './timeInput.js';

interface CommonOpts {
  server?: string;
  json?: boolean;
}

function time(s: Session, value: string, what: string, zone?: string): string {
  try {
    return parseTimeInput(value, s.now(), zone);
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
      .description('join the waitlist for a seat or any seat of a branch, e.g. carrel waitlist join --seat G-13 --start "today 14:00" --end "today 16:00"')
      .option('--seat <id-or-label>', 'a seat: its id, or its label (with --branch when several branches have it)')
      .option('--branch <name-or-id>', 'alone: any seat of this branch; with --seat: the seat\'s branch')
      .requiredOption('--start <time>', 'start (ISO, "today 14:00", "tomorrow 9:30", …; without an offset: the branch\'s time zone)')
      .requiredOption('--end <time>', 'end'),
  ).action((opts: CommonOpts & { seat?: string; branch?: string; start: string; end: string }) =>
    runCommand(io, opts, async (s, ctx) => {
      if (opts.seat === undefined && opts.branch === undefined) throw new UsageError('give --seat <id-or-label> or --branch <name>');
      time(s, opts.start, '--start');
      time(s, opts.end, '--end');
      let target: { seatId: number } | { branch: string };
      let zone: string | undefined;
      if (opts.seat !== undefined) {
        const seat = await resolveSeat(s, opts.seat, opts.branch);
        target = { seatId: seat.id };
        zone = await s.zones.ofBranch(seat.branch);
      } else {
        target = { branch: opts.branch! };
        zone = await s.zones.ofBranch(opts.branch!);
      }
      const args: MethodArgs<'waitlist.join'> = { ...target, start: time(s, opts.start, '--start', zone), end: time(s, opts.end, '--end', zone) };
      ctx.zone = async () => zone;
      ctx.next = (e) => afterJoin(s, e, args.start, args.end, zone, serverFlag(opts));
      const entry = await s.call('waitlist.join', args);
      return { value: entry, text: () => entriesTable(s, [entry]) };
    }),
  );

  common(wl.command('list').alias('mine').description('your waitlist entries, with position and offers')).action((opts: CommonOpts) =>
    runCommand(io, opts, async (s) => {
      const entries = await s.call('waitlist.mine');
      return { value: entries, text: async () => (entries.length === 0 ? 'You are on no waitlist.' : entriesTable(s, entries)) };
    }),
  );

  common(wl.command('leave').description('leave a waitlist entry (declines its offer, if any)').argument('<id>', 'entry id')).action(
    (id: string, opts: CommonOpts) =>
      runCommand(io, opts, async (s, ctx) => {
        const entryId = parseId(id, '<id>');
        ctx.next = async (e) => {
          if (e.details.rule !== 'alreadyClaimed') return undefined;
          const entry = (await s.call('waitlist.mine')).find((x) => x.id === entryId);
          return entry?.reservationId === undefined ? undefined : { next: [`carrel cancel ${entry.reservationId}${serverFlag(opts)}   (the reservation the offer became)`] };
        };
        const result = await s.call('waitlist.leave', { id: entryId });
        return { value: result, text: () => `Left waitlist entry ${entryId}.` };
      }),
  );

  common(wl.command('claim').description('turn the offer on a waitlist entry into a reservation').argument('<id>', 'entry id')).action(
    (id: string, opts: CommonOpts) =>
      runCommand(io, opts, async (s, ctx) => {
        const entryId = parseId(id, '<id>');
        ctx.next = async (e) => {
          if (e.details.rule !== 'noOffer') return undefined;
          const entry = (await s.call('waitlist.mine')).find((x) => x.id === entryId);
          const branch = entry?.branch ?? (await s.zones.branches()).find((b) => b.id === entry?.branchId)?.name;
          return branch === undefined ? undefined : { next: [`carrel watch ${shellWord(branch)}   (shows the offer, with the command to claim it, when it comes)`] };
        };
        const r = await s.call('waitlist.claim', { id: entryId });
        return {
          value: r,
          text: async () => {
            const [zone, seat] = await Promise.all([s.zones.ofSeat(r.seatId), s.zones.seat(r.seatId)]);
            return table(
              ['RESERVATION', 'BRANCH', 'SEAT', 'START', 'END', 'STATUS'],
              [[r.id, seat?.branch ?? '?', seat?.label ?? `#${r.seatId}`, formatTime(r.start, zone), formatTime(r.end, zone), r.status]],
            );
          },
        };
      }),
  );
  return wl;
}

const serverFlag = (opts: CommonOpts): string => (opts.server === undefined ? '' : ` --server ${opts.server}`);

/** After `waitlist join` was refused: a free seat is booked, not waited for. */
async function afterJoin(s: Session, e: RefusalInfo, start: string, end: string, zone: string | undefined, flag: string): Promise<Refusal | undefined> {
  if (e.details.rule === 'waitlistLimit') return { next: [`carrel waitlist list${flag}   (\`carrel waitlist leave <id>\` makes room)`] };
  if (e.details.rule !== 'seatAvailable' || typeof e.details.seatId !== 'number') return undefined;
  const seat = await s.zones.seat(e.details.seatId);
  if (!seat) return undefined;
  return {
    message: `seat ${seat.label} (${seat.branch}) is free ${formatRange(start, end, zone)}: book it rather than wait`,
    next: [`carrel reserve ${shellWord(seat.label)} --branch ${shellWord(seat.branch)} --start ${shellWord(typedTime(start, zone))} --end ${shellWord(typedTime(end, zone))}${flag}`],
  };
}

/** Entries as a table: seats by label, times in each entry's branch zone, an offer with the command that claims it. */
export async function entriesTable(s: Session, entries: WaitlistEntryWire[]): Promise<string> {
  const branches = await s.zones.branches().catch(() => []);
  const zoneOf = (e: WaitlistEntryWire) => branches.find((b) => b.id === e.branchId)?.timezone;
  const seatIds = [...new Set(entries.flatMap((e) => [e.seatId, e.offer?.seatId]).filter((x): x is number => x !== undefined))];
  const seats = new Map(await Promise.all(seatIds.map(async (id) => [id, await s.zones.seat(id)] as const)));
  const seatText = (id: number): string => {
    const seat = seats.get(id);
    return seat ? `seat ${seat.label} (${seat.branch})` : `seat ${id}`;
  };
  const rows = entries.map((e) => [
    e.id,
    e.status,
    e.position === null ? '-' : e.position,
    e.seatId !== undefined ? seatText(e.seatId) : `any seat, ${e.branch ?? branches.find((b) => b.id === e.branchId)?.name ?? `branch ${e.branchId}`}`,
    formatTime(e.start, zoneOf(e)),
    formatTime(e.end, zoneOf(e)),
    e.offer
      ? `${seatText(e.offer.seatId)}; claim by ${formatTime(e.offer.offerExpiresAt, zoneOf(e))}: carrel waitlist claim ${e.id}`
      : e.reservationId !== undefined
        ? `reservation ${e.reservationId}`
        : '',
  ]);
  return table(['ID', 'STATUS', 'POS', 'FOR', 'START', 'END', 'OFFER'], rows);
}
