// The booking rules that need nothing but the request, the clock and the branch (docs/rules.md):
// slot granularity, duration, how far ahead, not in the past, opening hours in the branch's
// time zone. Pure functions, so they are unit-tested without a database. The rules that read a
// user's other rows (active limit, daily and weekly quotas) are in userRules.ts: Node computes
// their periods and limits, and the SQL function carrel_user_rules checks them in the booking's
// own statement, under the per-user lock (carrel_book, carrel_claim).
// Every violation is FAILED_PRECONDITION with details.rule naming the rule.
import { CarrelError, ErrorCode } from '../errors.js';
import type { Config } from '../config/schema.js';
import { localDayStart, localParts, localWeekStart, zonedInstant } from './zonedTime.js';
import { DAY_KEYS, parseClock, type BranchHours } from '../wire/hours.js';

export type RulesConfig = Config['rules'];

/** The names of every rule, bookings' and the waitlist's, as they appear in details.rule (docs/protocol.md, "Rule names"). */
export const Rule = {
  slotGranularity: 'slotGranularity',
  minDuration: 'minDuration',
  maxDuration: 'maxDuration',
  maxDaysAhead: 'maxDaysAhead',
  inThePast: 'inThePast',
  openingHours: 'openingHours',
  seatOutOfService: 'seatOutOfService',
  /** Only the branch's cleaning buffer clashes with another booking (core/bufferClash.ts). */
  padding: 'padding',
  maxActive: 'maxActive',
  dailyQuota: 'dailyQuota',
  weeklyQuota: 'weeklyQuota',
  /** Strikes suspended the user's booking (docs/rules.md, "Strikes and suspension"); details.until. */
  suspended: 'suspended',
  idempotencyKeyReused: 'idempotencyKeyReused',
  /** rules.oneSeatAtATime: the user holds a CONFIRMED or CHECKED_IN booking overlapping the time. */
  overlapsOwnBooking: 'overlapsOwnBooking',
  /** rules.bookingOpensAt: the window's day is not open for booking yet (details.opensAt). */
  bookingNotOpen: 'bookingNotOpen',
  status: 'status',
  checkInWindow: 'checkInWindow',
  ended: 'ended',
  /** waitlist.join: a seat is free for the window, so book it instead. */
  seatAvailable: 'seatAvailable',
  /** waitlist.join: the user has waitlist.maxEntriesPerUser open entries. */
  waitlistLimit: 'waitlistLimit',
  /** waitlist.leave: the offer became a reservation; cancel that instead. */
  alreadyClaimed: 'alreadyClaimed',
  /** waitlist.claim: the offer lapsed, there is none yet, or the user left the entry. */
  offerExpired: 'offerExpired',
  noOffer: 'noOffer',
  entryLeft: 'entryLeft',
} as const;
export type Rule = (typeof Rule)[keyof typeof Rule];

export function ruleError(rule: Rule, message: string, details: Record<string, unknown> = {}): CarrelError {
  return new CarrelError(ErrorCode.FAILED_PRECONDITION, message, { rule, ...details });
}

const MINUTE = 60_000;

/** Open intervals [start, end) as instants for the local days from `fromDay` to `toDay` (offsets from the day of `ms`). */
function openIntervals(ms: number, timeZone: string, hours: BranchHours, fromDay: number, toDay: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let offset = fromDay; offset <= toDay; offset++) {
    const dayStart = localDayStart(ms, timeZone, offset);
    // Noon of that day is safely inside it whatever DST does at either end.
    const p = localParts(dayStart + 12 * 3600_000, timeZone);
    const h = hours[DAY_KEYS[p.weekday]!];
    if (!h) continue;
    const open = parseClock(h.open);
    const close = parseClock(h.close);
    if (open === null || close === null || open >= close) continue;
    const start = zonedInstant(p.year, p.month, p.day, open, timeZone);
    const end = zonedInstant(p.year, p.month, p.day, close, timeZone);
    const last = out[out.length - 1];
    // A day that closes at 24:00 followed by one that opens at 00:00 is one stretch: around
    // the clock, a booking may run past midnight.
    if (last && last[1] >= start) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/** True when [startMs, endMs) fits inside one open stretch of the branch. */
export function fitsOpeningHours(startMs: number, endMs: number, timeZone: string, hours: BranchHours): boolean {
  // Stretches around the start: the day before (a 24 h run into it) through the day after.
  return openIntervals(startMs, timeZone, hours, -1, 1).some(([s, e]) => s <= startMs && endMs <= e);
}

/**
 * The end of the branch's open stretch that holds [startMs, nowMs] (a walk-in's start and now),
 * or null when the branch is not open through both: where a walk-in must end by
 * (docs/rules.md, "Walk-ins").
 */
export function openUntil(startMs: number, nowMs: number, timeZone: string, hours: BranchHours): number | null {
  const stretch = openIntervals(startMs, timeZone, hours, -1, 1).find(([s, e]) => s <= startMs && nowMs < e);
  return stretch ? stretch[1] : null;
}

export function floorToSlot(ms: number, slotMinutes: number): number {
  const slot = slotMinutes * MINUTE;
  return Math.floor(ms / slot) * slot;
}

export function ceilToSlot(ms: number, slotMinutes: number): number {
  const slot = slotMinutes * MINUTE;
  return Math.ceil(ms / slot) * slot;
}

/** INVALID_ARGUMENT unless [startMs, endMs) is a real, non-empty window. */
export function checkWindowShape(startMs: number, endMs: number): void {
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) {
    throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'start and end must be valid times');
  }
  if (endMs <= startMs) throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'end must be after start');
}

export interface BookingWindow {
  startMs: number;
  endMs: number;
}

/**
 * The rules a booking request must pass before it goes to the database, in the order a person
 * would want to hear them. "Not in the past" allows the slot in progress: at 10:07 one may
 * book from 10:00, which is what someone walking up to a free seat needs.
 *
 * A window that ends at or before its start is not a booking that breaks a rule but a malformed
 * request: INVALID_ARGUMENT (the code for bad arguments, docs/protocol.md "Error codes"), the same
 * answer waitlist.join and seats.availability give.
 */
export function checkBookingWindow(
  w: BookingWindow,
  nowMs: number,
  rules: RulesConfig,
  branch: { timezone: string; hours: BranchHours },
): void {
  const { startMs, endMs } = w;
  checkWindowShape(startMs, endMs);
  const slot = rules.slotMinutes * MINUTE;
  if (startMs % slot !== 0 || endMs % slot !== 0) {
    throw ruleError(Rule.slotGranularity, `start and end must fall on ${rules.slotMinutes}-minute boundaries`, {
      slotMinutes: rules.slotMinutes,
    });
  }
  const minutes = (endMs - startMs) / MINUTE;
  if (minutes < rules.minDurationMinutes) {
    throw ruleError(Rule.minDuration, `a booking lasts at least ${rules.minDurationMinutes} minutes`, {
      minDurationMinutes: rules.minDurationMinutes,
    });
  }
  if (minutes > rules.maxDurationMinutes) {
    throw ruleError(Rule.maxDuration, `a booking lasts at most ${rules.maxDurationMinutes} minutes`, {
      maxDurationMinutes: rules.maxDurationMinutes,
    });
  }
  if (startMs < floorToSlot(nowMs, rules.slotMinutes)) {
    throw ruleError(Rule.inThePast, 'the booking would start in the past');
  }
  const opensAt = bookingOpensAt(startMs, branch.timezone, rules);
  if (opensAt === null && startMs > nowMs + rules.maxDaysAhead * 24 * 3600_000) {
    throw ruleError(Rule.maxDaysAhead, `bookings open at most ${rules.maxDaysAhead} days ahead`, {
      maxDaysAhead: rules.maxDaysAhead,
    });
  }
  if (opensAt !== null && nowMs < opensAt) {
    throw ruleError(Rule.bookingNotOpen, `bookings for that day open at ${new Date(opensAt).toISOString()}`, {
      opensAt: new Date(opensAt).toISOString(),
    });
  }
  if (!fitsOpeningHours(startMs, endMs, branch.timezone, branch.hours)) {
    throw ruleError(Rule.openingHours, openingHoursMessage(startMs, endMs, branch.timezone, branch.hours), { timezone: branch.timezone });
  }
}

/**
 * When bookings for the local day of startMs open (docs/rules.md, "When bookings open"): with
 * rules.bookingOpensAt "HH:MM", at that time of the branch's day maxDaysAhead days before it —
 * with 14 and "08:00", Monday's bookings open at 08:00 two Mondays before. null without
 * bookingOpensAt: then the window is the rolling maxDaysAhead days from now.
 */
export function bookingOpensAt(startMs: number, timeZone: string, rules: Pick<RulesConfig, 'bookingOpensAt' | 'maxDaysAhead'>): number | null {
  if (rules.bookingOpensAt === null) return null;
  const minute = parseClock(rules.bookingOpensAt);
  if (minute === null) return null;
  // Noon of the opening day is inside it whatever DST does at either end.
  const p = localParts(localDayStart(startMs, timeZone, -rules.maxDaysAhead) + 12 * 3600_000, timeZone);
  return zonedInstant(p.year, p.month, p.day, minute, timeZone);
}

const WEEKDAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const two = (n: number): string => String(n).padStart(2, '0');

/**
 * Says the booking asked and the hours of the days it touches, both on the branch's wall clock:
 * "the branch is not open for the whole booking: it asks Mon 2030-01-07 22:00 → Tue 2030-01-08
 * 00:00 (America/New_York); open Mon 07:00-23:00, Tue 07:00-23:00".
 */
function openingHoursMessage(startMs: number, endMs: number, timeZone: string, hours: BranchHours): string {
  const wall = (ms: number): string => {
    const p = localParts(ms, timeZone);
    return `${WEEKDAY_NAMES[p.weekday]} ${p.year}-${two(p.month)}-${two(p.day)} ${two(p.hour)}:${two(p.minute)}`;
  };
  const days: string[] = [];
  // The local days from the start's to the one holding the end's last minute (a booking is at most a few).
  for (let day = localDayStart(startMs, timeZone); day < endMs && days.length < 3; day = localDayStart(day + 12 * 3600_000, timeZone, 1)) {
    const weekday = localParts(day + 12 * 3600_000, timeZone).weekday;
    const h = hours[DAY_KEYS[weekday]!];
    days.push(`${WEEKDAY_NAMES[weekday]} ${h ? `${h.open}-${h.close}` : 'closed'}`);
  }
  return `the branch is not open for the whole booking: it asks ${wall(startMs)} → ${wall(endMs)} (${timeZone}); open ${days.join(', ')}`;
}

/** The local days and weeks (as [start, end) instants) a booking touches, for the quotas. */
export function quotaPeriods(w: BookingWindow, timeZone: string): { days: Array<[number, number]>; weeks: Array<[number, number]> } {
  const days: Array<[number, number]> = [];
  const weeks: Array<[number, number]> = [];
  for (let d = localDayStart(w.startMs, timeZone); d < w.endMs; ) {
    const next = localDayStart(d + 12 * 3600_000, timeZone, 1);
    days.push([d, next]);
    d = next;
  }
  for (const [dayStart] of days) {
    const ws = localWeekStart(dayStart + 12 * 3600_000, timeZone);
    if (!weeks.some(([s]) => s === ws)) weeks.push([ws, localWeekStart(ws + 12 * 3600_000, timeZone, 1)]);
  }
  return { days, weeks };
}
