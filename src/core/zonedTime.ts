// Wall-clock arithmetic in a branch's IANA time zone, with nothing but Intl: opening hours,
// "today" and quota days are local to the branch (docs/rules.md, "Time zones"), while every stored
// time is an instant. Formatters are cached per zone because constructing one costs far more than
// using it.
//
// Offsets are cached too, per zone and quarter hour of UTC: a booking's rule checks ask for
// ~40 local readings, and formatToParts was a sixth of a booking's CPU in a profile. That is
// exact because every offset in use today is a multiple of 15 minutes and changes at a local
// whole or half hour, so a change never falls inside a UTC quarter hour (tested against Intl
// for St John's, Kathmandu, Lord Howe and others).

export interface LocalParts {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday … 6 = Saturday, like Date#getUTCDay. */
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock reading of instant `ms` in `timeZone`, straight from Intl. */
export function intlParts(ms: number, timeZone: string): LocalParts {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) parts[p.type] = p.value;
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: WEEKDAYS[parts.weekday ?? ''] ?? 0,
  };
}

const QUARTER_MS = 15 * 60_000;
const DAY_MS = 24 * 3600_000;
/** Offsets by zone, then by UTC quarter hour; a zone's map is dropped whole past this size. */
const OFFSET_CACHE_MAX = 50_000;
const offsets = new Map<string, Map<number, number>>();

/** Offset of the zone from UTC at instant ms, in ms (New York in winter: -5 h). */
export function offsetAt(ms: number, timeZone: string): number {
  const q = Math.floor(ms / QUARTER_MS);
  let zone = offsets.get(timeZone);
  if (!zone) offsets.set(timeZone, (zone = new Map()));
  let off = zone.get(q);
  if (off === undefined) {
    const at = q * QUARTER_MS;
    const p = intlParts(at, timeZone);
    off = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - at;
    if (zone.size >= OFFSET_CACHE_MAX) zone.clear();
    zone.set(q, off);
  }
  return off;
}

/** The wall-clock reading of instant `ms` in `timeZone`. */
export function localParts(ms: number, timeZone: string): LocalParts {
  const d = new Date(ms + offsetAt(ms, timeZone));
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    weekday: d.getUTCDay(),
  };
}

/**
 * The instant at which the wall clock in `timeZone` reads the given date and minute of day
 * (minuteOfDay may be 1440: midnight at the end of that day). A reading the clock shows twice
 * (the hour repeated when clocks go back) is its first showing. A reading the clock skips (the
 * gap when clocks go forward) resolves forward, by the length of the gap: in
 * America/Santiago, where clocks jump from 00:00 to 01:00 on a September Sunday, that day
 * starts at its 01:00, not at 23:00 of the day before (docs/rules.md, "Time zones").
 */
export function zonedInstant(year: number, month: number, day: number, minuteOfDay: number, timeZone: string): number {
  const wall = Date.UTC(year, month - 1, day) + minuteOfDay * 60_000;
  // Every offset in use lies within ±14 h, so the instant sought is within a day of `wall`
  // read as UTC; the offsets a day either side are the ones before and after any change near
  // it (zones change offset months apart, never twice in two days).
  const before = offsetAt(wall - DAY_MS, timeZone);
  const after = offsetAt(wall + DAY_MS, timeZone);
  const early = wall - Math.max(before, after);
  const late = wall - Math.min(before, after);
  if (offsetAt(early, timeZone) === wall - early) return early;
  if (offsetAt(late, timeZone) === wall - late) return late;
  // Neither offset gives this reading: the clock skips it. `wall - before` is the instant as
  // read on the clock before the jump, which the clock after the jump shows as `wall` plus
  // the gap: the first instant past the gap, shifted by how far into the gap `wall` was.
  return wall - before;
}

/** Start of the local calendar day containing `ms`, plus `days` days. */
export function localDayStart(ms: number, timeZone: string, days = 0): number {
  const p = localParts(ms, timeZone);
  const d = new Date(Date.UTC(p.year, p.month - 1, p.day + days));
  return zonedInstant(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), 0, timeZone);
}

/** Start of the local week (Monday 00:00) containing `ms`, plus `weeks` weeks. */
export function localWeekStart(ms: number, timeZone: string, weeks = 0): number {
  const p = localParts(ms, timeZone);
  const sinceMonday = (p.weekday + 6) % 7;
  return localDayStart(ms, timeZone, -sinceMonday + weeks * 7);
}

/** Parses YYYY-MM-DD (a real calendar date) into its parts, or null. */
export function parseLocalDate(text: string): { year: number; month: number; day: number } | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return null;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const d = new Date(Date.UTC(year, month - 1, day));
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return null;
  return { year, month, day };
}
