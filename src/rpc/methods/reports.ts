// admin.reports.* (docs/protocol.md; what each figure means: docs/reports.md): how a branch's seats
// were booked and used. The registry confirms the caller is still an admin before it runs; the
// report's work waits its turn at the fair database gate like any request's, and its arguments are
// bounded (REPORT_LIMITS), so one admin's reports cannot take the database from everyone else.
import { REPORT_LIMITS, type UtilizationReport } from '../../reports/utilization.js';
import { deadlineOf, defineMethod, type MethodDef } from '../registry.js';
import { methodArgs } from '../../wire/args.js';

export function reportMethods({ utilization }: { utilization: UtilizationReport }): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'admin.reports.utilization',
      access: 'admin',
      args: methodArgs['admin.reports.utilization'],
      summary:
        `booked, attended, ghost and unbooked-occupied minutes, no-shows, peak and utilization of a branch: {branch, from, to, by?: "hour"|"day"|"seat"|"area"} ` +
        `(dates in the branch's zone, both counted; at most ${REPORT_LIMITS.maxDays} days, ${REPORT_LIMITS.maxHourDays} by hour) → {buckets, total, seatsWithoutSensor, …}`,
      handler: (a, ctx) => utilization.run(a, deadlineOf(ctx)),
    }),
  ];
}
