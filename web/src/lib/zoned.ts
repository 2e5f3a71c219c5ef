// Wall-clock time in a branch's time zone (docs/rules.md, "Time zones"): the student picks a day
// and a time as the branch's clock shows them, whatever zone the phone is in, and the server gets
// instants. Intl does the zone arithmetic; nothing here knows a zone's rules.

const partsFormatters = new Map<string, Intl.DateTimeFormat>();

function partsFormatter(tz: string): Intl.DateTimeFormat {
  let f = partsFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    partsFormatters.set(tz, f);
  }
  return f;
}

/** The wall clock in `tz` at instant `ms`, as numbers. */
export function wallClock(ms: number, tz: string): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  const out: Record<string, number> = {};
  for (const p of partsFormatter(tz).formatToParts(new Date(ms))) if (p.type !== 'literal') out[p.type] = Number(p.value);
  return { year: out.year!, month: out.month!, day: out.day!, hour: out.hour! % 24, minute: out.minute!, second: out.second! };
}

/** How far `tz`'s wall clock is ahead of UTC at instant `ms`, in ms. */
function offsetAt(ms: number, tz: string): number {
  const w = wallClock(ms, tz);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant the wall clock in `tz` shows `date` ("YYYY-MM-DD") at `time` ("HH:MM"), as an ISO
 * string in UTC with seconds (what every method accepts). A time the clocks skip (spring forward)
 * is read with the offset before the change, so it lands just after the gap.
 */
export function zonedToIso(date: string, time: string, tz: string): string {
  const [y, mo, d] = date.split('-').map(Number) as [number, number, number];
  const [h, mi] = time.split(':').map(Number) as [number, number];
  const asUtc = Date.UTC(y, mo - 1, d, h, mi);
  const first = asUtc - offsetAt(asUtc, tz);
  const second = asUtc - offsetAt(first, tz);
  const ms = offsetAt(second, tz) === offsetAt(first, tz) ? second : Math.max(first, second);
  return new Date(ms).toISOString();
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Today's date on `tz`'s clock, "YYYY-MM-DD". */
export function todayIn(tz: string, nowMs = Date.now()): string {
  const w = wallClock(nowMs, tz);
  return `${w.year}-${pad(w.month)}-${pad(w.day)}`;
}

/** The date `days` after "YYYY-MM-DD" (calendar arithmetic, no zone). */
export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const t = new Date(Date.UTC(y, m - 1, d + days));
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}

/** The next slot boundary at or after now on `tz`'s clock, "HH:MM", and whether it rolled into tomorrow. */
export function nextSlotIn(tz: string, slotMinutes: number, nowMs = Date.now()): { time: string; tomorrow: boolean } {
  const w = wallClock(nowMs, tz);
  const minutes = Math.ceil((w.hour * 60 + w.minute + (w.second > 0 ? 1 : 0)) / slotMinutes) * slotMinutes;
  if (minutes >= 24 * 60) return { time: '00:00', tomorrow: true };
  return { time: `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`, tomorrow: false };
}

const displayFormatters = new Map<string, Intl.DateTimeFormat>();

function display(tz: string, kind: 'time' | 'dateTime' | 'day'): Intl.DateTimeFormat {
  const key = `${kind} ${tz}`;
  let f = displayFormatters.get(key);
  if (!f) {
    const opts: Intl.DateTimeFormatOptions =
      kind === 'time'
        ? { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }
        : kind === 'day'
          ? { weekday: 'short', day: 'numeric', month: 'short' }
          : { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
    f = new Intl.DateTimeFormat(undefined, { ...opts, timeZone: tz });
    displayFormatters.set(key, f);
  }
  return f;
}

/** "14:30" on `tz`'s clock. */
export function timeIn(iso: string | number, tz: string): string {
  return display(tz, 'time').format(new Date(iso));
}

/** "Mon, 7 Jan, 14:30" on `tz`'s clock. */
export function dateTimeIn(iso: string | number, tz: string): string {
  return display(tz, 'dateTime').format(new Date(iso));
}

/** "Mon, 7 Jan" on `tz`'s clock. */
export function dayIn(iso: string | number, tz: string): string {
  return display(tz, 'day').format(new Date(iso));
}

/** "14:30–16:00, Mon 7 Jan" for a booking window. */
export function windowIn(start: string, end: string, tz: string): string {
  return `${dayIn(start, tz)}, ${timeIn(start, tz)}–${timeIn(end, tz)}`;
}
