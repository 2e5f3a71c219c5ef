// Plain-text tables for people: left-aligned columns separated by two spaces, no trailing blanks.

export function table(headers: string[], rows: Array<Array<string | number | boolean>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
