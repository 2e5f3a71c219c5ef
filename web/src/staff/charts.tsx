// The utilization report's charts: hand-drawn SVG bars (no chart library: a few dozen lines draw
// what the report needs, and nothing is fetched), each with the same figures as a table for
// screen readers and for copying.
import type { JSX } from 'preact';
import type { ReportRow } from './report.js';

export interface Series {
  key: keyof ReportRow['values'];
  label: string;
  className: string;
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function BarChart(props: { title: string; rows: ReportRow[]; series: Series[]; unit: string; max?: number }): JSX.Element {
  const { rows, series } = props;
  const shown = series.filter((s) => rows.some((r) => r.values[s.key] !== undefined));
  const top = props.max ?? niceMax(Math.max(0, ...rows.flatMap((r) => shown.map((s) => r.values[s.key] ?? 0))));
  const W = 720;
  const H = 240;
  const left = 48;
  const bottom = 40;
  const plotW = W - left - 8;
  const plotH = H - bottom - 10;
  const group = plotW / Math.max(1, rows.length);
  const bar = Math.max(1, Math.min(28, (group * 0.8) / Math.max(1, shown.length)));
  const labelEvery = Math.ceil(rows.length / 16);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * top);
  const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      {shown.length > 1 && (
        <ul class="chart-legend" aria-hidden="true">
          {shown.map((s) => (
            <li key={s.key}>
              <span class={`key ${s.className}`} />
              {s.label}
            </li>
          ))}
        </ul>
      )}
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${props.title}; the table below has the figures`}>
        {ticks.map((t) => {
          const y = 10 + plotH - (t / top) * plotH;
          return (
            <g key={t} class="tick">
              <line x1={left} x2={W - 8} y1={y} y2={y} />
              <text x={left - 6} y={y + 4} text-anchor="end">
                {fmt(t)}
              </text>
            </g>
          );
        })}
        {rows.map((r, i) => {
          const x0 = left + i * group + (group - bar * shown.length) / 2;
          return (
            <g key={r.label + i}>
              {shown.map((s, j) => {
                const v = r.values[s.key] ?? 0;
                const h = (Math.min(v, top) / top) * plotH;
                return (
                  <rect key={s.key} class={`bar ${s.className}`} x={x0 + j * bar} y={10 + plotH - h} width={Math.max(1, bar - 1)} height={h}>
                    <title>{`${r.label}: ${s.label} ${fmt(v)} ${props.unit}`}</title>
                  </rect>
                );
              })}
              {i % labelEvery === 0 && (
                <text class="xlabel" x={left + i * group + group / 2} y={H - bottom + 16} text-anchor="middle">
                  {r.label.length > 10 ? r.label.slice(5) : r.label}
                </text>
              )}
            </g>
          );
        })}
        <line class="axis" x1={left} x2={W - 8} y1={10 + plotH} y2={10 + plotH} />
      </svg>
      <details>
        <summary>Show as a table</summary>
        <table>
          <thead>
            <tr>
              <th scope="col">bucket</th>
              {shown.map((s) => (
                <th key={s.key} scope="col">
                  {s.label} ({props.unit})
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={r.label + i}>
                <th scope="row">{r.label}</th>
                {shown.map((s) => (
                  <td key={s.key}>{r.values[s.key] === undefined ? '—' : fmt(r.values[s.key]!)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
