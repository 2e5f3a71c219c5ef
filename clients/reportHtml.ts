// The page `carrel report --html` writes (docs/reports.md, "The page"): one self-contained HTML
// file — no script, no font, nothing fetched — with three charts drawn as SVG, each with a title,
// axes, a legend, units and a line on how to read it, for a librarian rather than an engineer:
//
// 1. when the library is full: occupancy by weekday and hour, a heatmap;
// 2. per day, the booked seat-hours split into used, ghost (booked, sensor saw it empty) and not
//    seen (no sensor), with the hours used without a booking as a line;
// 3. the seats most often booked and left empty.
//
// Colours are the Okabe-Ito set (distinguishable with the common colour-vision deficiencies) and
// a single-hue scale for the heatmap; every chart also carries its numbers (in the heatmap's
// squares, in tooltips, in a table under it), so no figure is told by colour alone.
import type { UtilizationBucket, UtilizationReportWire } from '../src/wire/types.js';

export interface ReportPages {
  /** The range by day, by seat, and by hour (in pieces of at most 31 days). */
  days: UtilizationReportWire;
  seats: UtilizationReportWire;
  hours: UtilizationReportWire[];
}

const COLORS = { used: '#0072B2', ghost: '#E69F00', ghostLight: '#F6D9A6', unseen: '#9A9A9A', unbooked: '#1A1A1A', grid: '#E3E3E3', axis: '#555555', text: '#222222' };
/** ColorBrewer "Blues", light to dark. */
const BLUES = ['#f7fbff', '#deebf7', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'];
const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"';

const esc = (s: string | number): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v: number, digits = 0): string => v.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const h = (minutes: number | null): number => (minutes ?? 0) / 60;

/** 0 = Monday … 6 = Sunday, of a local date written YYYY-MM-DD. */
function weekdayOf(date: string): number {
  return (new Date(`${date}T12:00:00Z`).getUTCDay() + 6) % 7;
}

function dayLabel(date: string, withWeekday = true): string {
  const d = new Date(`${date}T12:00:00Z`);
  return `${withWeekday ? `${WEEKDAYS[weekdayOf(date)]!.slice(0, 3)} ` : ''}${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
}

/** Round, readable axis steps: 1, 2, 2.5, 5 × 10^n, about `ticks` of them up to max. */
function niceTicks(max: number, ticks = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 0.001; v += step) out.push(Math.round(v * 1e6) / 1e6);
  if (out[out.length - 1]! < max) out.push(out[out.length - 1]! + step);
  return out;
}

export function renderReportHtml(p: ReportPages): string {
  const r = p.days;
  const t = r.total;
  const booked = t.bookedMinutes;
  const share = (part: number | null) => (booked > 0 && part !== null ? `${num((part / booked) * 100)}% of booked time` : '');
  const cards: Array<[string, string, string]> = [
    ['Seat-hours booked', num(h(t.bookedMinutes)), `${num(t.bookings)} bookings`],
    ['Used while booked', t.attendedMinutes === null ? 'no data' : `${num(h(t.attendedMinutes))} h`, share(t.attendedMinutes)],
    ['Ghost hours', t.ghostMinutes === null ? 'no data' : `${num(h(t.ghostMinutes))} h`, `${share(t.ghostMinutes)}${t.awayMinutes !== null ? `; ${num(h(t.awayMinutes))} h after check-in` : ''}`],
    ['No-shows', num(t.noShows), t.bookings > 0 ? `${num((t.noShows / t.bookings) * 100, 1)}% of bookings` : ''],
    ['Used without booking', t.unbookedOccupiedMinutes === null ? 'no data' : `${num(h(t.unbookedOccupiedMinutes))} h`, 'walk-ins and overstays'],
    ['Peak', t.peakOccupancy === null ? 'no data' : `${num(t.peakOccupancy)} seats`, `of ${num(r.seats)}, at once`],
    ['Utilization', t.utilizationPct === null ? 'no data' : `${num(t.utilizationPct, 1)}%`, 'occupied share of seat time in opening hours'],
  ];
  const missing = r.seatsWithoutSensor;
  const title = `Seat utilization: ${r.branch.name}, ${dayLabel(r.from, false)} to ${dayLabel(r.to, false)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: ${COLORS.text}; margin: 0 auto; max-width: 1000px; padding: 24px 28px 48px; line-height: 1.45; background: #fff; }
  h1 { font-size: 26px; margin: 0 0 4px; }
  h2 { font-size: 19px; margin: 36px 0 4px; }
  .sub { color: #555; margin: 0 0 18px; }
  .how { color: #444; margin: 2px 0 10px; font-size: 14px; }
  .how b { font-weight: 600; }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
  .card { border: 1px solid #ddd; border-radius: 8px; padding: 10px 12px; }
  .card .k { font-size: 13px; color: #555; }
  .card .v { font-size: 22px; font-weight: 650; margin: 2px 0; }
  .card .n { font-size: 12.5px; color: #666; }
  .note { background: #f6f6f6; border-left: 4px solid ${COLORS.unseen}; padding: 8px 12px; font-size: 14px; margin-top: 14px; }
  svg { display: block; width: 100%; height: auto; }
  details { margin-top: 8px; font-size: 13px; }
  table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
  td, th { padding: 2px 6px; text-align: right; border-bottom: 1px solid #eee; }
  th:first-child, td:first-child { text-align: left; }
  footer { margin-top: 40px; font-size: 13px; color: #666; }
  @media print { body { max-width: none; } details { display: none; } }
</style>
</head>
<body>
<h1>${esc(`Seat utilization: ${r.branch.name}`)}</h1>
<p class="sub">${esc(`${dayLabel(r.from)} to ${dayLabel(r.to)} ${r.to.slice(0, 4)} · times in ${r.branch.timezone} · ${num(r.seats)} seats · made ${r.generatedAt.slice(0, 16).replace('T', ' ')} UTC`)}</p>
<div class="cards">
${cards.map(([k, v, n]) => `  <div class="card"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div><div class="n">${esc(n)}</div></div>`).join('\n')}
</div>
${
  missing.count > 0
    ? `<p class="note">${esc(`${missing.count} of ${r.seats} seats sent no sensor data in this range (${missing.labels.join(', ')}${missing.count > missing.labels.length ? ', …' : ''}). Their bookings are counted, but whether anyone sat there is not known: it is shown as “no sensor”, never guessed.`)}</p>`
    : ''
}
${heatmapSection(p.hours)}
${daysSection(r)}
${seatsSection(p.seats)}
<footer>Made by <code>carrel report</code>. Every figure is defined in carrel's docs/reports.md: booked time is what bookings held (a no-show until it was released); a sensor “observes” a seat while it reports; ghost time is booked time the sensor saw the seat empty.</footer>
</body>
</html>
`;
}

// --- 1. occupancy by weekday and hour ------------------------------------------------------------

function heatmapSection(pages: UtilizationReportWire[]): string {
  const occ = Array.from({ length: 7 }, () => new Array<number>(24).fill(0));
  const obs = Array.from({ length: 7 }, () => new Array<number>(24).fill(0));
  const weeks = new Set<string>();
  for (const page of pages) {
    for (const b of page.buckets as Array<UtilizationBucket & { hour: string }>) {
      const wd = weekdayOf(b.hour.slice(0, 10));
      const hour = Number(b.hour.slice(11, 13));
      occ[wd]![hour]! += b.openOccupiedMinutes ?? 0;
      obs[wd]![hour]! += b.openObservedMinutes;
      weeks.add(b.hour.slice(0, 10));
    }
  }
  const value = (wd: number, hr: number): number | null => (obs[wd]![hr]! > 0 ? (occ[wd]![hr]! / obs[wd]![hr]!) * 100 : null);
  let max = 0;
  for (let wd = 0; wd < 7; wd++) for (let hr = 0; hr < 24; hr++) max = Math.max(max, value(wd, hr) ?? 0);
  // Steps of 10 percentage points (20 past 80%), one shade each, from the palette's light end up.
  const stepPct = max > 80 ? 20 : 10;
  const top = Math.max(stepPct, Math.ceil(max / stepPct) * stepPct);
  const steps = top / stepPct;
  const shades = Array.from({ length: steps }, (_, i) => BLUES[Math.round(1 + (i * (BLUES.length - 2)) / Math.max(1, steps - 1))]!);
  const colour = (v: number): string => shades[Math.min(steps - 1, Math.floor(v / stepPct))]!;
  const left = 92;
  const cw = 34;
  const ch = 30;
  const topY = 36;
  const width = left + cw * 24 + 20;
  const height = topY + ch * 7 + 76;
  const cells: string[] = [];
  for (let wd = 0; wd < 7; wd++) {
    for (let hr = 0; hr < 24; hr++) {
      const v = value(wd, hr);
      const x = left + hr * cw;
      const y = topY + wd * ch;
      const tip = v === null ? `${WEEKDAYS[wd]} ${hr}:00-${hr + 1}:00: closed, or no sensor data` : `${WEEKDAYS[wd]} ${hr}:00-${hr + 1}:00: ${num(v, 1)}% of observed seats occupied`;
      if (v === null) {
        cells.push(`<rect x="${x + 1}" y="${y + 1}" width="${cw - 2}" height="${ch - 2}" fill="url(#closed)" stroke="#ddd"><title>${esc(tip)}</title></rect>`);
      } else {
        const fill = colour(v);
        const dark = BLUES.indexOf(fill) >= 5;
        cells.push(
          `<g><title>${esc(tip)}</title><rect x="${x + 1}" y="${y + 1}" width="${cw - 2}" height="${ch - 2}" fill="${fill}"/>` +
            `<text x="${x + cw / 2}" y="${y + ch / 2 + 4}" text-anchor="middle" font-size="11" fill="${dark ? '#fff' : '#1b1b1b'}">${Math.round(v)}</text></g>`,
        );
      }
    }
  }
  const rows = WEEKDAYS.map((d, wd) => `<text x="${left - 8}" y="${topY + wd * ch + ch / 2 + 4}" text-anchor="end" font-size="13">${d}</text>`).join('');
  const cols = Array.from({ length: 24 }, (_, hr) => `<text x="${left + hr * cw + cw / 2}" y="${topY - 8}" text-anchor="middle" font-size="11.5" fill="${COLORS.axis}">${hr}</text>`).join('');
  // The legend: the scale in its steps, and what grey means.
  const ly = topY + ch * 7 + 30;
  const step = 34;
  const legend =
    `<text x="${left}" y="${ly - 8}" font-size="12.5" fill="${COLORS.axis}">Share of observed seats occupied (%), averaged over the range</text>` +
    shades.map((c, i) => `<rect x="${left + i * step}" y="${ly}" width="${step}" height="14" fill="${c}" stroke="#ccc" stroke-width="0.5"/>`).join('') +
    Array.from({ length: steps + 1 }, (_, i) => `<text x="${left + i * step}" y="${ly + 28}" font-size="11" text-anchor="middle">${i * stepPct}</text>`).join('') +
    `<rect x="${left + steps * step + 40}" y="${ly}" width="${step}" height="14" fill="url(#closed)" stroke="#ccc"/>` +
    `<text x="${left + steps * step + 40 + step + 6}" y="${ly + 11}" font-size="12">closed, or no sensor data</text>`;
  const svg = `<svg viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="hm-title hm-desc" ${FONT}>
<title id="hm-title">Occupancy by weekday and hour</title>
<desc id="hm-desc">A grid of weekdays (rows) by hour of the day (columns); each square gives the average share of observed seats that were occupied in that hour, in percent.</desc>
<defs><pattern id="closed" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f2f2f2"/><line x1="0" y1="0" x2="0" y2="6" stroke="#d0d0d0" stroke-width="2"/></pattern></defs>
<text x="${left + 12 * cw}" y="12" text-anchor="middle" font-size="12.5" fill="${COLORS.axis}">hour of the day (local time)</text>
${cols}${rows}${cells.join('')}${legend}
</svg>`;
  const table =
    `<table><tr><th></th>${Array.from({ length: 24 }, (_, hr) => `<th>${hr}</th>`).join('')}</tr>` +
    WEEKDAYS.map((d, wd) => `<tr><td>${d}</td>${Array.from({ length: 24 }, (_, hr) => `<td>${value(wd, hr) === null ? '' : Math.round(value(wd, hr)!)}</td>`).join('')}</tr>`).join('') +
    '</table>';
  return `<h2>When is the library full?</h2>
<p class="how"><b>How to read this:</b> each square is one hour of one weekday, averaged over the ${num(Math.ceil(weeks.size / 7))} weeks of the range. The number (and the shade: darker is fuller) is the percentage of the seats whose sensors were reporting that were occupied. Hatched squares are closing hours.</p>
${svg}
<details><summary>The numbers (% occupied)</summary>${table}</details>`;
}

// --- 2. booked, used and ghost per day -----------------------------------------------------------

function daysSection(r: UtilizationReportWire): string {
  const days = r.buckets as Array<UtilizationBucket & { day: string }>;
  const data = days.map((b) => ({
    day: b.day,
    used: h(b.attendedMinutes),
    ghost: h(b.ghostMinutes),
    unseen: h(b.unobservedBookedMinutes),
    unbooked: b.unbookedOccupiedMinutes === null ? null : h(b.unbookedOccupiedMinutes),
    noShows: b.noShows,
  }));
  const max = Math.max(1, ...data.map((d) => d.used + d.ghost + d.unseen), ...data.map((d) => d.unbooked ?? 0));
  const ticks = niceTicks(max);
  const yMax = ticks[ticks.length - 1]!;
  const left = 70;
  const right = 16;
  const top = 40;
  const plotH = 300;
  const width = 960;
  const plotW = width - left - right;
  const slot = plotW / Math.max(1, data.length);
  const bar = Math.max(2, slot * 0.72);
  const y = (v: number) => top + plotH - (v / yMax) * plotH;
  const parts: string[] = [];
  // Weekends lightly shaded: the weekly rhythm at a glance.
  data.forEach((d, i) => {
    if (weekdayOf(d.day) >= 5) parts.push(`<rect x="${left + i * slot}" y="${top}" width="${slot}" height="${plotH}" fill="#f4f4f4"/>`);
  });
  for (const tv of ticks) {
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(tv)}" y2="${y(tv)}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${left - 8}" y="${y(tv) + 4}" text-anchor="end" font-size="12" fill="${COLORS.axis}">${num(tv, tv % 1 === 0 ? 0 : 1)}</text>`);
  }
  data.forEach((d, i) => {
    const x = left + i * slot + (slot - bar) / 2;
    let base = 0;
    const tip = `${dayLabel(d.day)}: booked ${num(d.used + d.ghost + d.unseen, 1)} h — used ${num(d.used, 1)} h, ghost ${num(d.ghost, 1)} h, no sensor ${num(d.unseen, 1)} h; used without booking ${d.unbooked === null ? 'not known' : `${num(d.unbooked, 1)} h`}; ${d.noShows} no-shows`;
    const seg = (v: number, fill: string) => {
      if (v <= 0) return '';
      const s = `<rect x="${x}" y="${y(base + v)}" width="${bar}" height="${y(base) - y(base + v)}" fill="${fill}"/>`;
      base += v;
      return s;
    };
    parts.push(`<g><title>${esc(tip)}</title>${seg(d.used, COLORS.used)}${seg(d.ghost, COLORS.ghost)}${seg(d.unseen, 'url(#unseen)')}<rect x="${left + i * slot}" y="${top}" width="${slot}" height="${plotH}" fill="transparent"/></g>`);
  });
  const line = data
    .map((d, i) => (d.unbooked === null ? null : `${(left + i * slot + slot / 2).toFixed(1)},${y(d.unbooked).toFixed(1)}`))
    .filter((v): v is string => v !== null);
  if (line.length > 1) parts.push(`<polyline points="${line.join(' ')}" fill="none" stroke="${COLORS.unbooked}" stroke-width="1.6" stroke-dasharray="5 3"/>`);
  for (const pt of line) {
    const [cx, cy] = pt.split(',');
    parts.push(`<circle cx="${cx}" cy="${cy}" r="2.2" fill="${COLORS.unbooked}"/>`);
  }
  // Day labels: Mondays (or every day in a short range).
  const every = data.length <= 14;
  data.forEach((d, i) => {
    if (!every && weekdayOf(d.day) !== 0) return;
    const cx = left + i * slot + slot / 2;
    parts.push(`<line x1="${cx}" x2="${cx}" y1="${top + plotH}" y2="${top + plotH + 5}" stroke="${COLORS.axis}"/>`);
    parts.push(`<text x="${cx}" y="${top + plotH + 19}" text-anchor="middle" font-size="12" fill="${COLORS.axis}">${esc(dayLabel(d.day, every))}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="${COLORS.axis}"/>`);
  parts.push(`<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12.5" fill="${COLORS.axis}">seat-hours per day</text>`);
  const legend = [
    [COLORS.used, 'used (booked, someone there)', 0],
    [COLORS.ghost, 'ghost (booked, seat empty)', 250],
    ['url(#unseen)', 'booked, no sensor data', 480],
  ]
    .map(([fill, label, dx]) => `<rect x="${left + Number(dx)}" y="8" width="14" height="14" fill="${fill}"/><text x="${left + Number(dx) + 20}" y="19" font-size="12.5">${esc(String(label))}</text>`)
    .join('');
  const legend2 = `<line x1="${left}" x2="${left + 22}" y1="${top + plotH + 42}" y2="${top + plotH + 42}" stroke="${COLORS.unbooked}" stroke-width="1.6" stroke-dasharray="5 3"/><circle cx="${left + 11}" cy="${top + plotH + 42}" r="2.2"/><text x="${left + 30}" y="${top + plotH + 46}" font-size="12.5">occupied without a booking (walk-ins, staying on after a booking)</text>` +
    `<rect x="${left + 470}" y="${top + plotH + 35}" width="14" height="14" fill="#f4f4f4" stroke="#ddd"/><text x="${left + 490}" y="${top + plotH + 46}" font-size="12.5">Saturday and Sunday</text>`;
  const height = top + plotH + 60;
  const svg = `<svg viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="day-title day-desc" ${FONT}>
<title id="day-title">Booked seat-hours per day: used, ghost and without sensor data</title>
<desc id="day-desc">One stacked bar per day; the bar's height is the seat-hours booked, split into used, ghost and not seen; a dashed line gives the seat-hours occupied without a booking.</desc>
<defs><pattern id="unseen" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#d9d9d9"/><line x1="0" y1="0" x2="0" y2="6" stroke="${COLORS.unseen}" stroke-width="2"/></pattern></defs>
${legend}${parts.join('')}${legend2}
</svg>`;
  return `<h2>Booked, used and ghost hours per day</h2>
<p class="how"><b>How to read this:</b> each bar is one day; its height is all the seat-hours booked that day. <b>Blue</b> is booked time when the sensor saw someone in the seat, <b>orange</b> is ghost time — booked, but the seat was empty (not yet arrived, a no-show, a long break, gone early) — and <b>hatched grey</b> is booked time on seats without sensor data. The dashed line is time seats were used without a booking.</p>
${svg}`;
}

// --- 3. the seats most often booked and empty --------------------------------------------------------

function seatsSection(r: UtilizationReportWire): string {
  const seats = (r.buckets as Array<UtilizationBucket & { seatId: number; label: string; area: string; sensor: boolean }>)
    .filter((b) => b.sensor && (b.ghostMinutes ?? 0) > 0)
    .sort((a, b) => (b.ghostMinutes ?? 0) - (a.ghostMinutes ?? 0) || a.label.localeCompare(b.label))
    .slice(0, 15);
  if (seats.length === 0) return '<h2>Seats most often booked and left empty</h2><p class="how">No seat with sensor data was booked and left empty in this range.</p>';
  const left = 190;
  const right = 190;
  const top = 34;
  const rowH = 26;
  const width = 960;
  const plotW = width - left - right;
  const max = Math.max(...seats.map((s) => h(s.bookedMinutes)));
  const ticks = niceTicks(max, 5);
  const xMax = ticks[ticks.length - 1]!;
  const x = (v: number) => left + (v / xMax) * plotW;
  const height = top + rowH * seats.length + 40;
  const parts: string[] = [];
  for (const tv of ticks) {
    parts.push(`<line x1="${x(tv)}" x2="${x(tv)}" y1="${top - 4}" y2="${top + rowH * seats.length}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${x(tv)}" y="${top + rowH * seats.length + 16}" text-anchor="middle" font-size="12" fill="${COLORS.axis}">${num(tv, tv % 1 === 0 ? 0 : 1)}</text>`);
  }
  parts.push(`<text x="${left + plotW / 2}" y="${top + rowH * seats.length + 34}" text-anchor="middle" font-size="12.5" fill="${COLORS.axis}">hours</text>`);
  seats.forEach((s, i) => {
    const y = top + i * rowH;
    const bookedH = h(s.bookedMinutes);
    const ghostH = h(s.ghostMinutes);
    const emptyPct = s.bookedMinutes > 0 ? ((s.ghostMinutes ?? 0) / s.bookedMinutes) * 100 : 0;
    const tip = `${s.label} (${s.area}): booked ${num(bookedH, 1)} h in ${s.bookings} bookings; empty while booked ${num(ghostH, 1)} h (${num(emptyPct)}%); ${s.noShows} no-shows`;
    parts.push(
      `<g><title>${esc(tip)}</title>` +
        `<text x="${left - 10}" y="${y + rowH / 2 + 4}" text-anchor="end" font-size="13"><tspan font-weight="600">${esc(s.label)}</tspan><tspan fill="${COLORS.axis}"> · ${esc(s.area)}</tspan></text>` +
        `<rect x="${left}" y="${y + 5}" width="${x(bookedH) - left}" height="${rowH - 10}" fill="${COLORS.ghostLight}"/>` +
        `<rect x="${left}" y="${y + 5}" width="${x(ghostH) - left}" height="${rowH - 10}" fill="${COLORS.ghost}"/>` +
        `<text x="${x(xMax) + 10}" y="${y + rowH / 2 + 4}" font-size="12.5"><tspan font-weight="600">${num(emptyPct)}%</tspan> empty · ${s.noShows} no-show${s.noShows === 1 ? '' : 's'}</text></g>`,
    );
  });
  const legend =
    `<rect x="${left}" y="6" width="14" height="14" fill="${COLORS.ghost}"/><text x="${left + 20}" y="17" font-size="12.5">empty while booked (ghost hours)</text>` +
    `<rect x="${left + 250}" y="6" width="14" height="14" fill="${COLORS.ghostLight}"/><text x="${left + 270}" y="17" font-size="12.5">all booked hours</text>`;
  const svg = `<svg viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="seat-title seat-desc" ${FONT}>
<title id="seat-title">The ${seats.length} seats with the most ghost hours</title>
<desc id="seat-desc">One row per seat: a pale bar for all its booked hours and, over it, a darker bar for the booked hours it stood empty; at the right the empty share and the no-shows.</desc>
${legend}${parts.join('')}
</svg>`;
  return `<h2>Seats most often booked and left empty</h2>
<p class="how"><b>How to read this:</b> the ${seats.length} seats with the most ghost hours. The pale bar is all the hours the seat was booked; the orange part is the booked hours it stood empty; at the right, that part as a share of its booked time, and its no-shows. A seat near the top with a high share is one students book and do not use.</p>
${svg}`;
}
