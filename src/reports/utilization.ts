// admin.reports.utilization (docs/reports.md, docs/protocol.md): how a branch's seats were booked
// and used between two dates, by hour, day, seat or area, from the bookings and the occupancy
// history (db/migrations/013_occupancy_history.sql). Every figure is defined in docs/reports.md;
// this file is how they are computed.
//
// The figures of days already summed up come from the sums (rollup.ts), read in a few index
// lookups; the days not summed up yet (today, or days the maintenance has not reached) are
// computed from the bookings and the history by the same statement that makes the sums. All of it
// in one transaction through Db (src/db/db.ts), taken at the request's turn at the fair database
// gate (whose settings let the computing statement hash in memory). The arguments are bounded
// (REPORT_LIMITS): what one report may read is at most a year of one branch.
import type { Clock } from '../core/clock.js';
import { branchIdSql } from '../core/branchRef.js';
import type { Db, Tx } from '../db/db.js';
import type { BranchRef } from '../wire/branchRef.js';
import { parseLocalDate } from '../core/zonedTime.js';
import type { Deadline } from '../deadline.js';
import { CarrelError, ErrorCode } from '../errors.js';
import { addDays, daysBetween, formatDate, localOf, reportCalendar, type LocalDate, type ReportCalendar } from './reportTime.js';
import { COMPUTE_SETTINGS, SUM_KEYS, addInto, computeDays, zeroSums, type BranchInfo, type SeatInfo, type Sums } from './rollup.js';

import type { ReportBy, UtilizationBucket, UtilizationFigures, UtilizationReportWire } from '../wire/types.js';

export type { ReportBy };

/** What one report may ask for (docs/protocol.md, `admin.reports.utilization`). */
export const REPORT_LIMITS = {
  /** Days between from and to, both counted. */
  maxDays: 366,
  /** Days of a by=hour report: 744 buckets at most. */
  maxHourDays: 31,
  /** The calendar a report may ask about (time zones' rules, and two-digit years, end there). */
  firstYear: 1970,
  lastYear: 9999,
} as const;

export type { UtilizationBucket, UtilizationFigures, UtilizationReportWire };

const LIST_LABELS = 100;

export interface UtilizationOptions {
  db: Db;
  clock: Clock;
  /** An open interval of a writer silent this long ended at its last mark (writerStaleAfterMs). */
  staleAfterMs: number;
}

type PeakSums = Sums & { peak: number };

export class UtilizationReport {
  constructor(private readonly opts: UtilizationOptions) {}

  async run(args: { branch: BranchRef; from: string; to: string; by: ReportBy }, deadline?: Deadline): Promise<UtilizationReportWire> {
    const from = parseLocalDate(args.from);
    const to = parseLocalDate(args.to);
    if (!from || !to) throw invalid("from and to must be dates (YYYY-MM-DD) in the branch's time zone");
    if (from.year < REPORT_LIMITS.firstYear || to.year > REPORT_LIMITS.lastYear) {
      throw invalid(`dates run from ${REPORT_LIMITS.firstYear}-01-01 to ${REPORT_LIMITS.lastYear}-12-31`, { firstYear: REPORT_LIMITS.firstYear, lastYear: REPORT_LIMITS.lastYear });
    }
    const days = daysBetween(from, to);
    if (days < 1) throw invalid(`to (${args.to}) is before from (${args.from})`);
    const maxDays = args.by === 'hour' ? REPORT_LIMITS.maxHourDays : REPORT_LIMITS.maxDays;
    if (days > maxDays) {
      throw invalid(`a report by ${args.by} covers at most ${maxDays} days; ${args.from} to ${args.to} is ${days}`, { maxDays, days });
    }
    const nowMs = this.opts.clock.now();
    return this.opts.db.transaction(async (client) => {
      {
        const branch = await findBranch(client, args.branch);
        const seats = (await client.query<SeatInfo>('SELECT id, label, area FROM seats WHERE branch_id = $1 ORDER BY area, label', [branch.id])).rows;
        const cal = reportCalendar(from, days, branch.timezone, branch.hours);
        const startS = cal.dayStarts[0]!;
        const endS = Math.max(startS, Math.min(cal.dayStarts[days]!, nowMs / 1000));
        const sums = await this.sums(client, { branch, seats, from, days, cal, startS, endS, nowMs });
        return {
          branch: { id: branch.id, name: branch.name, timezone: branch.timezone },
          from: args.from,
          to: args.to,
          by: args.by,
          start: iso(startS),
          end: iso(endS),
          generatedAt: new Date(nowMs).toISOString(),
          ...shape(args.by, sums, { hourStarts: cal.hourStarts, from, endS, timeZone: branch.timezone, seats }),
        };
      }
    }, deadline);
  }

  /**
   * The sums of the range: per hour (index into the calendar's hours), per seat, and the area peaks;
   * from the rollups for the days summed up, computed for the others. In run()'s transaction, so
   * that its sorts and hashes may use more memory than a request's usual statement.
   */
  private async sums(
    client: Tx,
    r: { branch: BranchInfo; seats: SeatInfo[]; from: LocalDate; days: number; cal: ReportCalendar; startS: number; endS: number; nowMs: number },
  ): Promise<{ hours: Map<number, PeakSums>; seats: Map<number, Sums>; areaPeaks: Map<string, number> }> {
    const hours = new Map<number, PeakSums>();
    const seats = new Map<number, Sums>();
    const areaPeaks = new Map<string, number>();
    const cal = r.cal;
    const dayList = cal.days;
    const hourIndex = new Map(cal.hourStarts.map((s, k) => [s, k]));
    const addHour = (hourIso: string | Date, s: Partial<Sums> & { peak?: number | null }): void => {
      const k = hourIndex.get(new Date(hourIso).getTime() / 1000);
      if (k === undefined || cal.hourStarts[k]! >= r.endS) return;
      const h = hours.get(k) ?? { ...zeroSums(), peak: 0 };
      addInto(h, s);
      h.peak = Math.max(h.peak, Number(s.peak ?? 0));
      hours.set(k, h);
    };
    const addSeat = (seatId: number, s: Partial<Sums>): void => void seats.set(seatId, addInto(seats.get(seatId) ?? zeroSums(), s));
    const addAreaPeak = (area: string, peak: number): void => void areaPeaks.set(area, Math.max(areaPeaks.get(area) ?? 0, peak));

    {
      await client.query(COMPUTE_SETTINGS);
      const rolled = new Set(
        (
          await client.query<{ day: string }>(
            "SELECT to_char(day, 'YYYY-MM-DD') AS day FROM occupancy_rolled_days WHERE branch_id = $1 AND day = ANY($2::date[])",
            [r.branch.id, dayList],
          )
        ).rows.map((x) => x.day),
      );
      const summed = dayList.filter((d) => rolled.has(d));
      if (summed.length > 0) {
        const cols = SUM_KEYS.map((k) => `sum(${k}) AS ${k}`).join(', ');
        const hourRows = await client.query<Sums & { hour: Date; peak: number }>(
          `SELECT hour, peak, ${SUM_KEYS.join(', ')} FROM occupancy_branch_hours WHERE branch_id = $1 AND hour >= $2 AND hour < $3`,
          [r.branch.id, new Date(r.startS * 1000), new Date(r.endS * 1000)],
        );
        const summedDays = new Set(summed);
        for (const h of hourRows.rows) {
          const k = hourIndex.get(h.hour.getTime() / 1000);
          if (k !== undefined && summedDays.has(dayList[Math.floor(k / 24)]!)) addHour(h.hour, h);
        }
        const seatRows = await client.query<Sums & { seat_id: number }>(
          `SELECT seat_id, ${cols} FROM occupancy_seat_days WHERE seat_id = ANY($1::int[]) AND day = ANY($2::date[]) GROUP BY seat_id`,
          [r.seats.map((x) => x.id), summed],
        );
        for (const x of seatRows.rows) addSeat(x.seat_id, x);
        const areaRows = await client.query<{ area: string; peak: number }>(
          'SELECT area, max(peak) AS peak FROM occupancy_area_days WHERE branch_id = $1 AND day = ANY($2::date[]) GROUP BY area',
          [r.branch.id, summed],
        );
        for (const x of areaRows.rows) addAreaPeak(x.area, x.peak);
      }
      // The days not summed up that have begun, a run of consecutive days at a time.
      for (let i = 0; i < r.days; ) {
        if (rolled.has(dayList[i]!) || cal.dayStarts[i]! >= r.endS) {
          i++;
          continue;
        }
        let j = i;
        while (j < r.days && !rolled.has(dayList[j]!) && cal.dayStarts[j]! < r.endS) j++;
        const computed = await computeDays(client, {
          branch: r.branch,
          seats: r.seats,
          from: addDays(r.from, i),
          days: j - i,
          untilMs: r.endS * 1000,
          nowMs: r.nowMs,
          staleAfterMs: this.opts.staleAfterMs,
        });
        for (const h of computed.hours) addHour(h.hour, h);
        for (const x of computed.seatDays) addSeat(x.seatId, x);
        for (const x of computed.areaDays) addAreaPeak(x.area, x.peak);
        i = j;
      }
    }
    return { hours, seats, areaPeaks };
  }
}

function invalid(message: string, details?: Record<string, unknown>): CarrelError {
  return new CarrelError(ErrorCode.INVALID_ARGUMENT, message, details);
}

async function findBranch(client: Tx, ref: BranchRef): Promise<BranchInfo> {
  const named = branchIdSql(ref, '$1');
  const res = await client.query<BranchInfo>(`SELECT id, name, timezone, hours FROM branches WHERE id = ${named.sql}`, [named.value]);
  const row = res.rows[0];
  if (!row) throw new CarrelError(ErrorCode.NOT_FOUND, `no branch ${'id' in ref ? ref.id : JSON.stringify(ref.name)}`);
  return row;
}

const iso = (s: number): string => new Date(Math.round(s * 1000)).toISOString();
const minutes = (s: number): number => Math.round((s / 60) * 10) / 10;

/** The figures from sums of seconds; `sensed`: some sensor reported (else the sensor figures are null, not 0). */
function figures(r: Sums, peak: number, sensed: boolean): UtilizationFigures {
  const known = <T>(v: T): T | null => (sensed ? v : null);
  return {
    bookings: r.bookings,
    noShows: r.no_shows,
    bookedMinutes: minutes(r.booked),
    attendedMinutes: known(minutes(r.attended)),
    ghostMinutes: known(minutes(r.booked_observed - r.attended)),
    awayMinutes: known(minutes(r.booked_observed_in - r.attended_in)),
    unobservedBookedMinutes: minutes(r.booked - r.booked_observed),
    occupiedMinutes: known(minutes(r.occupied)),
    unbookedOccupiedMinutes: known(minutes(r.occupied - r.attended)),
    observedMinutes: minutes(r.observed),
    openObservedMinutes: minutes(r.open_observed),
    openOccupiedMinutes: known(minutes(r.open_occupied)),
    peakOccupancy: known(peak),
    utilizationPct: sensed && r.open_observed > 0 ? Math.round((r.open_occupied / r.open_observed) * 1000) / 10 : null,
  };
}

function shape(
  by: ReportBy,
  sums: { hours: Map<number, PeakSums>; seats: Map<number, Sums>; areaPeaks: Map<string, number> },
  c: { hourStarts: number[]; from: LocalDate; endS: number; timeZone: string; seats: SeatInfo[] },
): Pick<UtilizationReportWire, 'seats' | 'seatsWithoutSensor' | 'buckets' | 'total'> {
  const total = zeroSums();
  let peak = 0;
  for (const h of sums.hours.values()) {
    addInto(total, h);
    peak = Math.max(peak, h.peak);
  }
  const seatSums = (id: number): Sums => sums.seats.get(id) ?? zeroSums();
  const buckets: UtilizationBucket[] = [];
  const hourCount = c.hourStarts.findIndex((s) => s >= c.endS);
  const hours = hourCount < 0 ? c.hourStarts.length - 1 : hourCount;
  if (by === 'hour') {
    for (let k = 0; k < hours; k++) {
      // An hour the clocks skip is no hour at all.
      if (c.hourStarts[k + 1] === c.hourStarts[k]) continue;
      const h = sums.hours.get(k) ?? { ...zeroSums(), peak: 0 };
      const p = localOf(c.hourStarts[k]!, c.timeZone);
      buckets.push({
        hour: `${formatDate(p)}T${String(p.hour).padStart(2, '0')}:00`,
        start: iso(c.hourStarts[k]!),
        end: iso(Math.min(c.hourStarts[k + 1]!, c.endS)),
        ...figures(h, h.peak, h.observed > 0),
      });
    }
  } else if (by === 'day') {
    for (let i = 0; i * 24 < hours; i++) {
      const day = zeroSums();
      let dayPeak = 0;
      for (let k = i * 24; k < Math.min(hours, i * 24 + 24); k++) {
        const h = sums.hours.get(k);
        if (!h) continue;
        addInto(day, h);
        dayPeak = Math.max(dayPeak, h.peak);
      }
      buckets.push({
        day: formatDate(addDays(c.from, i)),
        start: iso(c.hourStarts[i * 24]!),
        end: iso(Math.min(c.hourStarts[i * 24 + 24]!, c.endS)),
        ...figures(day, dayPeak, day.observed > 0),
      });
    }
  } else if (by === 'seat') {
    for (const seat of c.seats) {
      const s = seatSums(seat.id);
      const sensed = s.observed > 0;
      // A seat's peak: whether it was occupied at all.
      buckets.push({ seatId: seat.id, label: seat.label, area: seat.area, sensor: sensed, ...figures(s, s.occupied > 0 ? 1 : 0, sensed) });
    }
  } else {
    const areas = new Map<string, { sums: Sums; seats: number; sensed: number }>();
    for (const seat of c.seats) {
      const a = areas.get(seat.area) ?? { sums: zeroSums(), seats: 0, sensed: 0 };
      const s = seatSums(seat.id);
      addInto(a.sums, s);
      a.seats++;
      if (s.observed > 0) a.sensed++;
      areas.set(seat.area, a);
    }
    for (const [area, a] of areas) {
      buckets.push({ area, seats: a.seats, seatsWithSensor: a.sensed, ...figures(a.sums, sums.areaPeaks.get(area) ?? 0, a.sensed > 0) });
    }
  }
  const unsensed = c.seats.filter((x) => !(seatSums(x.id).observed > 0)).map((x) => x.label);
  return {
    seats: c.seats.length,
    seatsWithoutSensor: { count: unsensed.length, labels: unsensed.slice(0, LIST_LABELS) },
    buckets,
    total: figures(total, peak, total.observed > 0),
  };
}
