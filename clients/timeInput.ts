// Times typed by people, and times shown to them: the one parser and the one formatter of every
// client command (reserve, seats, waitlist, …), so a form one command accepts, all accept.
//
// Input: ISO-8601 with an offset passes through; friendlier forms are wall-clock times: "2030-01-07
// 14:00", "2030-01-07T14:00", "2030-01-07T14:00:30", "today 14:00", "tomorrow 9:30", "14:00". They
// are read in the branch's time zone when the command knows the branch (the seat's, the
// branch's), like every time the commands show, so a time copied from `carrel branches`, a table
// or an error's suggestion means what it says on any machine; without a branch, in this
// machine's zone. "today" is the day where the time is read.
// Output: "2030-01-07 10:00 EST", in the branch's time zone when the caller knows the branch
// (opening hours, quotas and days are the branch's), else in this machine's, always marked.
import { localParts, zonedInstant } from '../src/core/zonedTime.js';

export function parseTimeInput(text: string, now: Date = new Date(), timeZone?: string): string {
  const s = text.trim();
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(s)) {
    const ms = Date.parse(s);
    if (Number.isFinite(ms)) return new Date(ms).toISOString();
  }
  const wall = (y: number, mo: number, d: number, h: number, mi: number, sec: number): string =>
    timeZone === undefined ? local(y, mo, d, h, mi, sec, text) : zoned(y, mo, d, h, mi, sec, text, timeZone);
  let m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(s);
  if (m) return wall(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
  m = /^(?:(today|tomorrow)\s+)?(\d{1,2}):(\d{2})$/i.exec(s);
  if (m) {
    const plus = m[1]?.toLowerCase() === 'tomorrow' ? 1 : 0;
    const day = timeZone === undefined ? new Date(now.getFullYear(), now.getMonth(), now.getDate() + plus) : zonedDay(now, timeZone, plus);
    return wall(day.getFullYear(), day.getMonth() + 1, day.getDate(), Number(m[2]), Number(m[3]), 0);
  }
  throw new Error(`cannot read the time "${text}"; use ISO (2030-01-07T14:00:00Z), "2030-01-07 14:00", "today 14:00" or "tomorrow 9:30"`);
}

function local(y: number, mo: number, d: number, h: number, mi: number, sec: number, original: string): string {
  const date = new Date(y, mo - 1, d, h, mi, sec);
  if (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d || h > 23 || mi > 59 || sec > 59) {
    throw new Error(`"${original}" is not a real time`);
  }
  return date.toISOString();
}

/** The wall-clock time in `timeZone` (a time the clocks skip resolves forward, as the server reads opening hours). */
function zoned(y: number, mo: number, d: number, h: number, mi: number, sec: number, original: string, timeZone: string): string {
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || sec > 59) {
    throw new Error(`"${original}" is not a real time`);
  }
  return new Date(zonedInstant(y, mo, d, h * 60 + mi, timeZone) + sec * 1000).toISOString();
}

/** Today (plus `days`) in `timeZone`, as a local-calendar Date whose y/m/d getters read that day. */
function zonedDay(now: Date, timeZone: string, days: number): Date {
  const p = localParts(now.getTime(), timeZone);
  return new Date(p.year, p.month - 1, p.day + days);
}

/** "2030-01-07 14:00": how a person types `iso` back, read in `timeZone` (see parseTimeInput). */
export function typedTime(iso: string, timeZone?: string): string {
  const p = partsOf(iso, timeZone);
  return `${p.date} ${p.time}`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function partsOf(iso: string, timeZone: string | undefined): { date: string; time: string; zone: string } {
  const key = timeZone ?? '';
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      ...(timeZone ? { timeZone } : {}),
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    });
    formatters.set(key, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}`, zone: p.timeZoneName ?? '' };
}

/** "2030-01-07 10:00 EST": in `timeZone` (an IANA name), or this machine's zone when undefined. */
export function formatTime(iso: string, timeZone?: string): string {
  const p = partsOf(iso, timeZone);
  return `${p.date} ${p.time} ${p.zone}`;
}

/** "2030-01-07 10:00 → 11:00 EST" within one day and zone; both in full otherwise. */
export function formatRange(start: string, end: string, timeZone?: string): string {
  const a = partsOf(start, timeZone);
  const b = partsOf(end, timeZone);
  if (a.date === b.date && a.zone === b.zone) return `${a.date} ${a.time} → ${b.time} ${b.zone}`;
  return `${a.date} ${a.time} ${a.zone} → ${b.date} ${b.time} ${b.zone}`;
}

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const DAY_NAMES: Record<string, string> = { mon: 'Mon', tue: 'Tue', wed: 'Wed', thu: 'Thu', fri: 'Fri', sat: 'Sat', sun: 'Sun' };

/** Opening hours as branches.list gives them ({mon: {open, close} | null, …}), compactly: "Mon-Fri 08:00-22:00, Sat-Sun 10:00-20:00". */
export function formatHours(hours: Partial<Record<string, { open: string; close: string } | null>> | null | undefined): string {
  const text = DAYS.map((d) => {
    const h = hours?.[d];
    return h ? `${h.open}-${h.close}` : 'closed';
  });
  if (text.every((t) => t === text[0])) return text[0] === 'closed' ? 'closed' : `daily ${text[0]}`;
  const groups: string[] = [];
  for (let i = 0; i < DAYS.length; ) {
    let j = i;
    while (j + 1 < DAYS.length && text[j + 1] === text[i]) j++;
    const days = i === j ? DAY_NAMES[DAYS[i]!] : `${DAY_NAMES[DAYS[i]!]}-${DAY_NAMES[DAYS[j]!]}`;
    groups.push(`${days} ${text[i]}`);
    i = j + 1;
  }
  return groups.join(', ');
}
