// Results of a bench invocation: JSON (everything, histograms included), CSV (one row a run),
// an SVG chart of throughput and p99 against connections, and a Markdown table of the runs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunRecord } from './record.js';
import type { RushFigures } from './rush.js';

export interface Report {
  startedAt: string;
  machine: { cpus: number; cpuModel: string; memGb: number; node: string; platform: string };
  runs: RunRecord[];
  /** Targets compared against their baselines, when the run made any. */
  comparisons: Comparison[];
}

/** One target of the performance issue, with its baseline where it is a ratio. */
export interface Comparison {
  what: string;
  value: number;
  unit: string;
  baseline: string | null;
  baselineValue: number | null;
  ratio: number | null;
  target: string;
  met: boolean | null;
}

const CSV_COLUMNS = [
  'scenario', 'label', 'connections', 'depth', 'rate', 'windowS', 'throughput', 'unit',
  'p50Ms', 'p90Ms', 'p99Ms', 'p999Ms', 'maxMs', 'count', 'errors', 'connectFailures',
  'neverAnswered', 'unanswered', 'serverRssMb', 'serverCpuPct', 'clientCpuPct',
] as const;

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(runs: RunRecord[]): string {
  const rows = runs.map((r) => {
    const errors = Object.entries(r.errors).map(([k, v]) => `${k}:${v}`).join(' ');
    const values: Record<(typeof CSV_COLUMNS)[number], unknown> = {
      scenario: r.scenario, label: r.label, connections: r.connections, depth: r.depth, rate: r.rate,
      windowS: r.windowS, throughput: r.throughput, unit: r.unit, p50Ms: r.latency.p50Ms, p90Ms: r.latency.p90Ms,
      p99Ms: r.latency.p99Ms, p999Ms: r.latency.p999Ms, maxMs: r.latency.maxMs, count: r.latency.count, errors,
      connectFailures: r.connectFailures, neverAnswered: r.neverAnswered, unanswered: r.unanswered,
      serverRssMb: r.serverRssMb, serverCpuPct: r.serverCpuPct, clientCpuPct: r.clientCpuPct,
    };
    return CSV_COLUMNS.map((c) => csvCell(values[c])).join(',');
  });
  return [CSV_COLUMNS.join(','), ...rows].join('\n') + '\n';
}

function fmt(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function toMarkdown(report: Report): string {
  const lines: string[] = [];
  if (report.comparisons.length) {
    lines.push('| figure | carrel | baseline | ratio | target | met |', '|---|---:|---:|---:|---|:-:|');
    for (const c of report.comparisons) {
      const base = c.baseline === null ? '–' : `${c.baseline}: ${fmt(c.baselineValue, (c.baselineValue ?? 0) < 100 ? 2 : 0)}`;
      lines.push(`| ${c.what} | ${fmt(c.value, c.value < 100 ? 2 : 0)} ${c.unit} | ${base} | ${c.ratio === null ? '–' : fmt(c.ratio, 2)} | ${c.target} | ${c.met === null ? '–' : c.met ? 'yes' : '**no**'} |`);
    }
    lines.push('');
  }
  lines.push('| run | throughput | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | server RSS MB | server CPU % | client CPU % |', '|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|');
  for (const r of report.runs) {
    const errors = Object.entries(r.errors).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') || '0';
    const never = r.neverAnswered ? `; ${r.neverAnswered} never answered` : '';
    lines.push(`| ${r.label} | ${fmt(r.throughput)} ${r.unit} | ${fmt(r.latency.p50Ms, 2)} | ${fmt(r.latency.p90Ms, 2)} | ${fmt(r.latency.p99Ms, 2)} | ${fmt(r.latency.p999Ms, 2)} | ${fmt(r.latency.maxMs, 1)} | ${errors}${never} | ${fmt(r.serverRssMb)} | ${fmt(r.serverCpuPct)} | ${fmt(r.clientCpuPct)} |`);
  }
  const rushes = report.runs.filter((r) => r.scenario === 'rush');
  if (rushes.length) lines.push('', rushMarkdown(rushes));
  return lines.join('\n') + '\n';
}

const counts = (m: Record<string, number>): string =>
  Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') || '–';

/** The opening rush's own table: what each run booked, how fast, how fairly, and what SQL found. */
export function rushMarkdown(runs: RunRecord[]): string {
  const pct = (x: number | null): string => (x === null ? '–' : `${fmt(x * 100, 1)}%`);
  const lines = [
    '| rush | successes (expected) | last booking, ms (half of expected) | p50 / p99 / max ms | p99 users / scripts ms | overlaps in SQL (seats) | most seats one user holds | got a seat: scripts / users (ratio) | final answers | refusals sent again |',
    '|---|---:|---:|---:|---:|---:|---:|---|---|---|',
  ];
  for (const r of runs) {
    const f = r.extra as unknown as RushFigures;
    lines.push(
      `| ${r.label} | ${fmt(f.successes)} (${fmt(f.expectedSuccesses)}; SQL ${fmt(f.sql.bookings)}) | ${fmt(f.lastSuccessMs, 1)} (${fmt(f.halfTakenMs, 1)}) | ` +
        `${fmt(r.latency.p50Ms, 1)} / ${fmt(r.latency.p99Ms, 1)} / ${fmt(r.latency.maxMs, 1)} | ${fmt(f.userLatency.p99Ms, 1)} / ${f.scripts ? fmt(f.scriptLatency.p99Ms, 1) : '–'} | ${fmt(f.sql.overlappingPairs)} (${fmt(f.sql.seatsDoubleBooked)}) | ${fmt(f.sql.maxSeatsPerUser)} | ` +
        `${pct(f.successRate.scripts)} / ${pct(f.successRate.users)} (${fmt(f.successRate.ratio, 2)}) | ${counts(f.outcomes)}${r.unanswered ? `; ${fmt(r.unanswered)} unanswered` : ''} | ${counts(f.retried)} |`,
    );
  }
  return lines.join('\n');
}

/** One series of a chart: points (connections, value), drawn as a line. */
interface Series {
  name: string;
  points: Array<[number, number]>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/** A log-x line panel: connections on x, `yLabel` on y. */
function panel(series: Series[], x0: number, y0: number, w: number, h: number, title: string, yLabel: string): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  if (xs.length === 0) return '';
  const minX = Math.min(...xs);
  const maxX = Math.max(...xs);
  const maxY = Math.max(...ys) * 1.1 || 1;
  const lx = (x: number): number => (maxX === minX ? x0 + w / 2 : x0 + ((Math.log(x) - Math.log(minX)) / (Math.log(maxX) - Math.log(minX))) * w);
  const ly = (y: number): number => y0 + h - (y / maxY) * h;
  const out: string[] = [];
  out.push(`<text x="${x0 + w / 2}" y="${y0 - 12}" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);
  out.push(`<line x1="${x0}" y1="${y0 + h}" x2="${x0 + w}" y2="${y0 + h}" stroke="#333"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y0 + h}" stroke="#333"/>`);
  for (let i = 0; i <= 4; i++) {
    const y = (maxY / 4) * i;
    out.push(`<line x1="${x0}" y1="${ly(y)}" x2="${x0 + w}" y2="${ly(y)}" stroke="#eee"/>`);
    out.push(`<text x="${x0 - 6}" y="${ly(y) + 4}" text-anchor="end" font-size="11">${escapeXml(fmt(y, y < 10 ? 1 : 0))}</text>`);
  }
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    out.push(`<text x="${lx(x)}" y="${y0 + h + 16}" text-anchor="middle" font-size="11">${x}</text>`);
  }
  out.push(`<text x="${x0 + w / 2}" y="${y0 + h + 34}" text-anchor="middle" font-size="12">connections</text>`);
  out.push(`<text x="${x0 - 52}" y="${y0 + h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${x0 - 52} ${y0 + h / 2})">${escapeXml(yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${lx(x).toFixed(1)},${ly(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${lx(x).toFixed(1)}" cy="${ly(y).toFixed(1)}" r="3" fill="${color}"/>`);
    out.push(`<rect x="${x0 + w - 190}" y="${y0 + 6 + i * 16}" width="10" height="10" fill="${color}"/><text x="${x0 + w - 175}" y="${y0 + 15 + i * 16}" font-size="11">${escapeXml(s.name)}</text>`);
  });
  return out.join('\n');
}

/**
 * Throughput and p99 against connections, one line per (scenario, depth) that was swept over
 * more than one connection count. Returns null when nothing was swept.
 */
export function toSvg(runs: RunRecord[]): string | null {
  const groups = new Map<string, RunRecord[]>();
  // A suite marks its sweep; only those runs make the chart there.
  const pool = runs.some((r) => r.extra.sweep) ? runs.filter((r) => r.extra.sweep) : runs;
  for (const r of pool) {
    if (r.scenario === 'storm' || r.scenario === 'rush' || r.scenario === 'connections' || r.scenario === 'stalled' || r.scenario === 'abuse') continue;
    const key = `${r.scenario}${r.target.startsWith('echo') ? ' (echo)' : ''}, depth ${r.depth}${r.rate ? `, ${r.rate}/s` : ''}`;
    const g = groups.get(key) ?? [];
    g.push(r);
    groups.set(key, g);
  }
  const swept = [...groups].filter(([, g]) => new Set(g.map((r) => r.connections)).size > 1);
  if (swept.length === 0) return null;
  const tput: Series[] = swept.map(([name, g]) => ({ name, points: g.map((r) => [r.connections, r.throughput]) }));
  const p99: Series[] = swept.map(([name, g]) => ({ name, points: g.map((r) => [r.connections, r.latency.p99Ms]) }));
  const W = 980;
  const H = 420;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    panel(tput, 80, 50, 360, 300, 'throughput', 'per second'),
    panel(p99, 580, 50, 360, 300, 'p99 latency', 'ms'),
    '</svg>',
  ].join('\n');
}

export function writeReport(dir: string, report: Report): { json: string; csv: string; md: string; svg: string | null } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'results.json');
  const csv = join(dir, 'results.csv');
  const md = join(dir, 'results.md');
  writeFileSync(json, JSON.stringify(report, null, 2));
  writeFileSync(csv, toCsv(report.runs));
  writeFileSync(md, toMarkdown(report));
  const chart = toSvg(report.runs);
  let svg: string | null = null;
  if (chart) {
    svg = join(dir, 'chart.svg');
    writeFileSync(svg, chart);
  }
  return { json, csv, md, svg };
}
