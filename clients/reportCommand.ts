// `carrel report` (docs/reports.md): the utilization report of a branch between two dates, as a
// table in the terminal, the server's JSON with --json, and with --html a page of charts a
// librarian can open anywhere (reportHtml.ts). Needs an admin login, like admin.reports.utilization.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import { processIo, runCommand, UsageError, type CliIo, type Session } from './cliIo.js';
import { renderReportHtml } from './reportHtml.js';
import { table } from './table.js';
import { localParts } from '../src/core/zonedTime.js';
import type { ReportBy, UtilizationBucket, UtilizationFigures, UtilizationReportWire } from '../src/wire/types.js';

/** What one request may cover by hour (REPORT_LIMITS.maxHourDays): the page asks for the hours in pieces. */
const HOUR_CHUNK_DAYS = 31;

interface ReportOpts {
  server?: string;
  json?: boolean;
  branch: string;
  from: string;
  to: string;
  by: ReportBy;
  html?: string;
}

export function registerReportCommand(program: Command, io: CliIo = processIo): void {
  program
    .command('report')
    .description('utilization of a branch: booked, attended and ghost hours, no-shows, peak and utilization (needs an admin login)')
    .requiredOption('-b, --branch <branch>', 'the branch (name or id)')
    .requiredOption('--from <date>', 'first day, YYYY-MM-DD in the branch\'s zone (or today, yesterday, or N days ago as -N)')
    .option('--to <date>', 'last day, counted (default: today, up to now)', 'today')
    .addOption(new Option('--by <bucket>', 'one row per').choices(['hour', 'day', 'seat', 'area']).default('day'))
    .option('--html <file>', 'also write a page of charts to this file (self-contained: open it in any browser)')
    .option('-s, --server <host:port>', 'server address (default: $CARREL_SERVER, else 127.0.0.1:9000)')
    .option('--json', 'print the server\'s JSON instead of the table (errors too, on stderr)')
    .action((opts: ReportOpts) =>
      runCommand(io, opts, async (s) => {
        const branch = /^\d{1,9}$/.test(opts.branch) ? Number(opts.branch) : opts.branch;
        const zone = (await s.zones.ofBranch(branch).catch(() => undefined)) ?? 'UTC';
        const from = dateArg(opts.from, zone, s, '--from');
        const to = dateArg(opts.to, zone, s, '--to');
        const ask = (by: ReportBy, f = from, t = to) => s.call('admin.reports.utilization', { branch, from: f, to: t, by });
        const report = await ask(opts.by);
        let wrote = '';
        if (opts.html) {
          const [days, seats] = await Promise.all([opts.by === 'day' ? report : ask('day'), opts.by === 'seat' ? report : ask('seat')]);
          const hours: UtilizationReportWire[] = [];
          for (const [f, t] of chunks(from, to, HOUR_CHUNK_DAYS)) hours.push(await ask('hour', f, t));
          writeFileSync(opts.html, renderReportHtml({ days, seats, hours }));
          wrote = `\n\nwrote ${opts.html}: charts of the same range (open it in a browser)`;
        }
        return { value: report, text: () => reportText(report) + wrote };
      }),
    );
}

/** YYYY-MM-DD, `today`, `yesterday` or `-N` (N days before today), in the branch's zone. */
function dateArg(text: string, zone: string, s: Session, flag: string): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return text;
  const back = text === 'today' ? 0 : text === 'yesterday' ? 1 : /^-\d{1,4}$/.test(text) ? -Number(text) : null;
  if (back === null) throw new UsageError(`${flag} takes a date (YYYY-MM-DD), today, yesterday or -N (N days ago), not ${JSON.stringify(text)}`);
  const p = localParts(s.now().getTime(), zone);
  const d = new Date(Date.UTC(p.year, p.month - 1, p.day - back));
  return d.toISOString().slice(0, 10);
}

/** [from, to] in pieces of at most `size` days. */
function chunks(from: string, to: string, size: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const day = 86_400_000;
  const end = Date.parse(`${to}T00:00:00Z`);
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= end; t += size * day) {
    out.push([new Date(t).toISOString().slice(0, 10), new Date(Math.min(end, t + (size - 1) * day)).toISOString().slice(0, 10)]);
  }
  return out;
}

const hours = (minutes: number | null): string => (minutes === null ? '–' : (minutes / 60).toLocaleString('en', { minimumFractionDigits: 1, maximumFractionDigits: 1 }));
const pct = (v: number | null): string => (v === null ? '–' : `${v.toFixed(1)}%`);
const count = (v: number | null): string => (v === null ? '–' : v.toLocaleString('en'));

function bucketName(b: UtilizationBucket): string {
  if ('day' in b) return b.day;
  if ('hour' in b) return b.hour.replace('T', ' ');
  if ('seatId' in b) return `${b.label}${b.sensor ? '' : ' (no sensor)'}`;
  return `${b.area} (${b.seats} seats${b.seatsWithSensor < b.seats ? `, ${b.seatsWithSensor} with sensors` : ''})`;
}

function row(name: string, f: UtilizationFigures): string[] {
  return [
    name,
    hours(f.bookedMinutes),
    hours(f.attendedMinutes),
    hours(f.ghostMinutes),
    hours(f.awayMinutes),
    hours(f.unobservedBookedMinutes),
    count(f.noShows),
    hours(f.unbookedOccupiedMinutes),
    count(f.peakOccupancy),
    pct(f.utilizationPct),
  ];
}

/** The table for a terminal: one row per bucket, then the total, hours with one decimal. */
export function reportText(r: UtilizationReportWire): string {
  const head = ['', 'BOOKED h', 'ATTENDED h', 'GHOST h', 'OF IT AWAY h', 'NO SENSOR h', 'NO-SHOWS', 'UNBOOKED h', 'PEAK', 'UTILIZATION'];
  head[0] = { day: 'DAY', hour: 'HOUR', seat: 'SEAT', area: 'AREA' }[r.by];
  const lines = [
    `${r.branch.name}, ${r.from} to ${r.to} (${r.branch.timezone}), by ${r.by}: ${r.seats} seats` +
      (r.seatsWithoutSensor.count > 0
        ? `, ${r.seatsWithoutSensor.count} without sensor data (${r.seatsWithoutSensor.labels.slice(0, 8).join(', ')}${r.seatsWithoutSensor.count > 8 ? ', …' : ''})`
        : ''),
    '',
    table(head, [...r.buckets.map((b) => row(bucketName(b), b)), row('TOTAL', r.total)]),
    '',
    'GHOST: booked, and the sensor saw the seat empty (OF IT AWAY: after check-in). NO SENSOR: booked time no sensor could see.',
    'UNBOOKED: occupied without a booking. PEAK: most seats occupied at once. UTILIZATION: occupied share of the observed seat time in opening hours.',
    '– : no sensor reported, so not known. Every figure is defined in docs/reports.md.',
  ];
  return lines.join('\n');
}
