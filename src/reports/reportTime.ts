// The calendar of a utilization report (docs/reports.md, "Days, hours and time zones"): the local
// days (and hours) of the branch between two dates, as instants, and what the report's SQL needs
// to put an instant into its local day or hour without asking for the time zone row by row.
//
// A report reads hundreds of thousands of intervals; converting each one's ends to local time in
// PostgreSQL (AT TIME ZONE) cost more than everything else together. Every UTC offset in use is a
// multiple of 15 minutes and changes only at a quarter hour of UTC (src/core/zonedTime.ts), so
// the offset of every UTC quarter hour in the range, computed here once, is the whole time zone
// the query needs: an instant's local time is its epoch plus one array element.
import { offsetAt, zonedInstant, type LocalParts, localParts } from '../core/zonedTime.js';
import { DAY_KEYS, parseClock, type BranchHours } from '../wire/hours.js';

const QUARTER_S = 900;
const DAY_S = 86_400;

export interface LocalDate {
  year: number;
  month: number;
  day: number;
}

export interface ReportCalendar {
  /** Local dates of the range, from `from` to `to`: day i of the SQL is days[i]. */
  days: string[];
  /** Epoch seconds of each local midnight: dayStarts[i] .. dayStarts[i + 1] is day i (three past the last). */
  dayStarts: number[];
  /** Opening hours of day i as epoch seconds (opens = closes when closed), one past the last. */
  opens: number[];
  closes: number[];
  /** Local hours of the range: hourStarts[k] is the first instant of local hour k (24 a day, one past the last). */
  hourStarts: number[];
  /** Epoch seconds where `offsets` starts, and the UTC offset in seconds of each quarter hour from there. */
  q0: number;
  offsets: number[];
  /** Local day number (days since 1970-01-01 in local time) of day 0, and local hour number of hour 0. */
  localDay0: number;
  localHour0: number;
}

export function addDays(d: LocalDate, n: number): LocalDate {
  const t = new Date(Date.UTC(d.year, d.month - 1, d.day + n));
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
}

export function formatDate(d: LocalDate): string {
  return `${String(d.year).padStart(4, '0')}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}

/** Days from `from` to `to`, both counted. */
export function daysBetween(from: LocalDate, to: LocalDate): number {
  return Math.round((Date.UTC(to.year, to.month - 1, to.day) - Date.UTC(from.year, from.month - 1, from.day)) / 86_400_000) + 1;
}

/**
 * The calendar of `days` local days from `from` in `timeZone`: their midnights and hours, the
 * branch's opening hours, and the offsets of a day or two around them.
 */
export function reportCalendar(from: LocalDate, days: number, timeZone: string, openingHours: BranchHours): ReportCalendar {
  const dayList: string[] = [];
  const dayStarts: number[] = [];
  const opens: number[] = [];
  const closes: number[] = [];
  for (let i = 0; i <= days + 2; i++) {
    const d = addDays(from, i);
    const start = zonedInstant(d.year, d.month, d.day, 0, timeZone) / 1000;
    dayStarts.push(start);
    if (i < days) dayList.push(formatDate(d));
    if (i <= days) {
      const [o, c] = openWindow(d, timeZone, openingHours);
      opens.push(o ?? start);
      closes.push(c ?? start);
    }
  }
  const hourStarts: number[] = [];
  for (let i = 0; i < days; i++) {
    const d = addDays(from, i);
    for (let h = 0; h < 24; h++) hourStarts.push(zonedInstant(d.year, d.month, d.day, h * 60, timeZone) / 1000);
  }
  hourStarts.push(dayStarts[days]!);
  const q0 = Math.floor((dayStarts[0]! - DAY_S * 2) / QUARTER_S) * QUARTER_S;
  const qEnd = dayStarts[days + 2]! + DAY_S;
  const offsets = quarterOffsets(q0, qEnd, timeZone);
  const first = localParts(dayStarts[0]! * 1000 + 12 * 3_600_000, timeZone);
  const localDay0 = Math.floor(Date.UTC(first.year, first.month - 1, first.day) / 86_400_000);
  return { days: dayList, dayStarts, opens, closes, hourStarts, q0, offsets, localDay0, localHour0: localDay0 * 24 };
}

/** The local date's opening window as epoch seconds, or [null, null] when the branch is closed. */
function openWindow(d: LocalDate, timeZone: string, hours: BranchHours): [number | null, number | null] {
  const noon = localParts(zonedInstant(d.year, d.month, d.day, 12 * 60, timeZone), timeZone);
  const h = hours[DAY_KEYS[noon.weekday]!];
  const open = h ? parseClock(h.open) : null;
  const close = h ? parseClock(h.close) : null;
  if (open === null || close === null || open >= close) return [null, null];
  return [zonedInstant(d.year, d.month, d.day, open, timeZone) / 1000, zonedInstant(d.year, d.month, d.day, close, timeZone) / 1000];
}

/**
 * The offset (seconds) of every UTC quarter hour in [q0, qEnd): asked of Intl once a day, and
 * quarter hour by quarter hour only through a day where it changes.
 */
function quarterOffsets(q0: number, qEnd: number, timeZone: string): number[] {
  const out: number[] = [];
  const perDay = DAY_S / QUARTER_S;
  for (let day = q0; day < qEnd; day += DAY_S) {
    const a = offsetAt(day * 1000, timeZone) / 1000;
    const b = offsetAt(Math.min(day + DAY_S, qEnd) * 1000, timeZone) / 1000;
    const n = Math.min(perDay, Math.round((qEnd - day) / QUARTER_S));
    if (a === b) for (let i = 0; i < n; i++) out.push(a);
    else for (let i = 0; i < n; i++) out.push(offsetAt((day + i * QUARTER_S) * 1000, timeZone) / 1000);
  }
  return out;
}

/** Local wall-clock parts of epoch seconds `s` (for labels). */
export function localOf(s: number, timeZone: string): LocalParts {
  return localParts(s * 1000, timeZone);
}
