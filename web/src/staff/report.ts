// The rows of the utilization report (admin.reports.utilization), as the staff page charts them.

export interface ReportRow {
  label: string;
  values: Partial<Record<'booked' | 'attended' | 'ghost' | 'unbooked' | 'utilization' | 'peak' | 'noShows', number>>;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function pick(row: Record<string, unknown>, names: string[]): number | undefined {
  for (const n of names) {
    const v = num(row[n]);
    if (v !== undefined) return v;
  }
  return undefined;
}

function labelOf(row: Record<string, unknown>): string {
  for (const k of ['label', 'bucket', 'day', 'date', 'hour', 'area', 'seat', 'seatLabel', 'key', 'start']) {
    const v = row[k];
    if (typeof v === 'string' || typeof v === 'number') {
      const s = String(v);
      // An ISO instant as a bucket: its date (a day) or its hour.
      return /^\d{4}-\d\d-\d\dT/.test(s) ? (s.endsWith('T00:00:00.000Z') ? s.slice(0, 10) : s.slice(0, 16).replace('T', ' ')) : s;
    }
  }
  return '?';
}

/**
 * The rows of an admin.reports.utilization result: its `buckets` (or `rows`, or the result itself
 * when it is a list), each with booked, attended, ghost and unbooked-occupied minutes,
 * utilization (a fraction is shown as a percentage) and peak occupancy.
 */
export function reportRows(result: unknown): ReportRow[] {
  const r = result as Record<string, unknown> | unknown[] | null;
  const list = Array.isArray(r) ? r : r && (Array.isArray(r.buckets) ? r.buckets : Array.isArray(r.rows) ? r.rows : []);
  if (!Array.isArray(list)) return [];
  return list
    .filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null)
    .map((row) => {
      let utilization = pick(row, ['utilizationPercent', 'utilizationPct', 'utilization']);
      if (utilization !== undefined && utilization <= 1 && row.utilizationPercent === undefined && row.utilizationPct === undefined) utilization *= 100;
      return {
        label: labelOf(row),
        values: {
          booked: pick(row, ['bookedMinutes', 'booked']),
          attended: pick(row, ['attendedMinutes', 'attended']),
          ghost: pick(row, ['ghostMinutes', 'ghost']),
          unbooked: pick(row, ['unbookedOccupiedMinutes', 'unbookedMinutes', 'unbookedOccupancyMinutes', 'unbooked']),
          utilization,
          peak: pick(row, ['peakOccupancy', 'peak']),
          noShows: pick(row, ['noShows', 'noShowCount', 'noShow']),
        },
      };
    });
}


/** Seats no sensor reported on in the report's range (their attended and empty minutes are not guessed), if the report says. */
export function seatsWithoutSensor(result: unknown): { count: number; labels: string[] } | null {
  const v = (result as { seatsWithoutSensor?: { count?: unknown; labels?: unknown } } | null)?.seatsWithoutSensor;
  if (!v || typeof v.count !== 'number' || v.count <= 0) return null;
  return { count: v.count, labels: Array.isArray(v.labels) ? v.labels.filter((x): x is string => typeof x === 'string') : [] };
}
