// A sensor reading's `at`, read strictly (docs/sensors.md): an RFC 3339 date-time with seconds
// and a `Z` or numeric offset, every field in range, nothing else. Date.parse is not used: it
// reads "1" as 2001, takes RFC 1123 dates ("Tue, 02 Mar 2027 14:50:00 GMT") and local times
// without an offset, and rolls 2030-02-30 over into March. The result only gates a reading (the
// window check in sensorSession.ts); ordering and timers use the server's receipt time.

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** The longest `at` worth reading: 9 fraction digits and an offset make 35 characters. */
export const MAX_AT_CHARS = 40;

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Milliseconds since the epoch, or undefined when `text` is not an RFC 3339 date-time with an offset. */
export function parseRfc3339(text: string): number | undefined {
  if (text.length > MAX_AT_CHARS) return undefined;
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  // Second 60 is a leap second (RFC 3339 §5.6); it is read as the next second, 00 of the next minute.
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 60) return undefined;
  let offsetMin = 0;
  if (!m[8]) {
    const [oh, om] = [Number(m[10]), Number(m[11])];
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const millis = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  // Midnight of the day (setUTCFullYear, because Date.UTC maps years 0-99 to 1900-1999), then the time.
  const day0 = new Date(0);
  day0.setUTCFullYear(year, month - 1, day);
  return day0.getTime() + ((hour * 60 + minute - offsetMin) * 60 + second) * 1000 + millis;
}
