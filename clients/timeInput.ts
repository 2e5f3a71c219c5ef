// Times typed by people: ISO-8601 with an offset passes through; friendlier forms are read in
// this machine's local time zone: "2030-01-07 14:00", "2030-01-07T14:00", "today 14:00",
// "tomorrow 9:30", "14:00".

const pad = (n: number) => String(n).padStart(2, '0');

export function parseTimeInput(text: string, now: Date = new Date()): string {
  const s = text.trim();
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(s)) {
    const ms = Date.parse(s);
    if (Number.isFinite(ms)) return new Date(ms).toISOString();
  }
  let m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})$/.exec(s);
  if (m) return local(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), text);
  m = /^(?:(today|tomorrow)\s+)?(\d{1,2}):(\d{2})$/i.exec(s);
  if (m) {
    const day = new Date(now.getFullYear(), now.getMonth(), now.getDate() + (m[1]?.toLowerCase() === 'tomorrow' ? 1 : 0));
    return local(day.getFullYear(), day.getMonth() + 1, day.getDate(), Number(m[2]), Number(m[3]), text);
  }
  throw new Error(`cannot read the time "${text}"; use ISO (2030-01-07T14:00:00Z), "2030-01-07 14:00", "today 14:00" or "tomorrow 9:30"`);
}

function local(y: number, mo: number, d: number, h: number, mi: number, original: string): string {
  const date = new Date(y, mo - 1, d, h, mi);
  if (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d || h > 23 || mi > 59) {
    throw new Error(`"${original}" is not a real time`);
  }
  return date.toISOString();
}

/** "2030-01-07 10:00" in this machine's local time, for tables. */
export function formatLocal(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
