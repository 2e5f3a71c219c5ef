// What to type next after the server said no: the "next:" lines under an error (cliIo.ts), as
// commands ready to paste, with times in the branch's zone as the commands read them
// (timeInput.ts). One function per command that books, each turning a refusal's code and
// details.rule into a sentence a person can act on.
import { fitsOpeningHours } from '../src/core/rules.js';
import { DAY_KEYS, parseClock, type BranchHours } from '../src/wire/hours.js';
import { localDayStart, localParts, zonedInstant } from '../src/core/zonedTime.js';
import type { BranchWire, SeatWire } from '../src/wire/types.js';
import { shellWord, type Refusal, type RefusalInfo } from './cliIo.js';
import { formatHours, formatRange, formatTime, typedTime } from './timeInput.js';

/** The booking a command asked for, and how to address the server again. */
export interface Asked {
  seat: SeatWire;
  branch: BranchWire | undefined;
  start: string;
  end: string;
  /** " --server host:port" when the command had one, else "". */
  serverFlag: string;
}

const DAY_MS = 24 * 3600_000;

function window(a: Asked, start: string, end: string): string {
  const zone = a.branch?.timezone;
  return `--start ${shellWord(typedTime(start, zone))} --end ${shellWord(typedTime(end, zone))}`;
}

function seatArgs(a: Asked): string {
  return `${shellWord(a.seat.label)} --branch ${shellWord(a.seat.branch)}`;
}

export function reserveCommand(a: Asked, start = a.start, end = a.end): string {
  return `carrel reserve ${seatArgs(a)} ${window(a, start, end)}${a.serverFlag}`;
}

/** After `carrel reserve` was refused: another seat, the waitlist, another time, or the bookings to cancel. */
export function afterReserve(a: Asked, e: RefusalInfo, nowMs: number): Refusal | undefined {
  const zone = a.branch?.timezone;
  const others = `carrel seats --branch ${shellWord(a.seat.branch)} --available ${window(a, a.start, a.end)}${a.serverFlag}`;
  if (e.code === 'CONFLICT' || e.details.rule === 'padding') {
    return { next: [`${others}   (another seat, free then)`, `carrel waitlist join --seat ${seatArgs(a)} ${window(a, a.start, a.end)}${a.serverFlag}   (wait for this one)`] };
  }
  switch (e.details.rule) {
    case 'openingHours': {
      if (!a.branch) return undefined;
      const message = `${a.branch.name} is open ${formatHours(a.branch.hours)} (${a.branch.timezone} time); you asked for ${formatRange(a.start, a.end, zone)}`;
      const near = openWindowNear(Date.parse(a.start), Date.parse(a.end), nowMs, a.branch.timezone, a.branch.hours);
      return { message, next: near ? [reserveCommand(a, new Date(near[0]).toISOString(), new Date(near[1]).toISOString())] : [] };
    }
    case 'seatOutOfService':
      return { next: [`${others}   (a seat in service)`] };
    case 'maxActive':
    case 'dailyQuota':
    case 'weeklyQuota':
    case 'overlapsOwnBooking':
      return yourBookings(a.serverFlag);
    case 'bookingNotOpen':
      return notOpenYet(e, zone, reserveCommand(a));
    default:
      return undefined;
  }
}

/** The refusal is about the user's own bookings (one seat at a time, the active limit, a quota): see them. */
function yourBookings(serverFlag: string): Refusal {
  return { next: [`carrel mine${serverFlag}   (your bookings; \`carrel cancel <id>\` frees one)`] };
}

/** The branch and window a `carrel reserve --branch …` (any free seat) asked for. */
export interface AskedAny {
  branch: BranchWire;
  start: string;
  end: string;
  serverFlag: string;
}

/** After `carrel reserve --branch …` was refused: the waitlist for any seat, other filters or times, or the bookings in the way. */
export function afterReserveAny(a: AskedAny, e: RefusalInfo): Refusal | undefined {
  const zone = a.branch.timezone;
  const times = `--start ${shellWord(typedTime(a.start, zone))} --end ${shellWord(typedTime(a.end, zone))}`;
  const branch = `--branch ${shellWord(a.branch.name)}`;
  if (e.code === 'CONFLICT' && e.details.reason === 'noSeatFree') {
    return {
      message: `no seat of ${a.branch.name} that matches is free ${formatRange(a.start, a.end, zone)}`,
      next: [`carrel waitlist join ${branch} ${times}${a.serverFlag}   (wait for any seat of the branch)`, `carrel seats ${branch} ${times}${a.serverFlag}   (when seats are free)`],
    };
  }
  switch (e.details.rule) {
    case 'maxActive':
    case 'dailyQuota':
    case 'weeklyQuota':
    case 'overlapsOwnBooking':
      return yourBookings(a.serverFlag);
    case 'bookingNotOpen':
      return notOpenYet(e, zone, `carrel reserve ${branch} ${times}${a.serverFlag}`);
    default:
      return undefined;
  }
}

/** bookingNotOpen: when, in the branch's time, and the same command to run then. */
function notOpenYet(e: RefusalInfo, zone: string | undefined, again: string): Refusal | undefined {
  const opensAt = e.details.opensAt;
  if (typeof opensAt !== 'string') return undefined;
  return { message: `bookings for that day open ${formatTime(opensAt, zone)}`, next: [`${again}   (from ${formatTime(opensAt, zone)})`] };
}

/** After `carrel checkin <id>` outside its window: the same command, and when. */
export function afterCheckIn(id: number, e: RefusalInfo, zone: string | undefined, serverFlag: string, nowMs: number): Refusal | undefined {
  const opensAt = e.details.opensAt;
  if (e.details.rule !== 'checkInWindow' || typeof opensAt !== 'string' || nowMs >= Date.parse(opensAt)) return undefined;
  return { next: [`carrel checkin ${id}${serverFlag}   (from ${formatTime(opensAt, zone)})`] };
}

/**
 * The open stretch nearest the window asked for, of the same length: the asked day's opening or
 * its closing minus the length, or a later day's opening, within a week; never in the past.
 */
export function openWindowNear(startMs: number, endMs: number, nowMs: number, timeZone: string, hours: BranchHours): [number, number] | undefined {
  const length = endMs - startMs;
  const candidates: number[] = [];
  for (let offset = 0; offset <= 7; offset++) {
    const dayStart = localDayStart(startMs, timeZone, offset);
    // Noon is inside the day whatever a clock change does at either end.
    const p = localParts(dayStart + DAY_MS / 2, timeZone);
    const h = hours[DAY_KEYS[p.weekday]!];
    const open = h ? parseClock(h.open) : null;
    const close = h ? parseClock(h.close) : null;
    if (open === null || close === null) continue;
    candidates.push(zonedInstant(p.year, p.month, p.day, open, timeZone));
    if (offset === 0) candidates.push(zonedInstant(p.year, p.month, p.day, close, timeZone) - length);
  }
  const fitting = candidates.filter((c) => c >= nowMs && fitsOpeningHours(c, c + length, timeZone, hours));
  if (fitting.length === 0) return undefined;
  const best = fitting.reduce((x, y) => (Math.abs(y - startMs) < Math.abs(x - startMs) ? y : x));
  return [best, best + length];
}
