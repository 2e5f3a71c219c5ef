// seats.* (docs/protocol.md, "RPC methods"): public reads. seats.list answers with the listing's
// cached JSON text (RawJson), so a hot listing is neither re-queried nor re-serialised.
import { CarrelError, ErrorCode } from '../../errors.js';
import type { SeatListing } from '../../core/seatListing.js';
import { MAX_AVAILABILITY_WINDOW_MS, type SeatService } from '../../core/seats.js';
import { deadlineOf, defineMethod, type MethodDef } from '../registry.js';
import { methodArgs } from '../../wire/args.js';

export interface SeatDeps {
  seats: SeatService;
  listing: SeatListing;
}

export function seatMethods({ seats, listing }: SeatDeps): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'seats.list',
      access: 'public',
      args: methodArgs['seats.list'],
      summary: 'seats with filters {branch, area, hasPower, hasMonitor, availableOnly, start, end}; window widened to slots, defaults to now → +1 h',
      // Not async: a cached listing is answered in the same turn (SeatListing.list).
      handler: (input, ctx) => {
        const a = input ?? {};
        const window = listing.window({ startMs: a.start, endMs: a.end });
        if (window.endMs - window.startMs > MAX_AVAILABILITY_WINDOW_MS) {
          throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'the window may span at most 31 days');
        }
        // One object shape for every call: a conditional spread here made V8 build a
        // dictionary-mode object, and every property read of it in list() slow (~15 µs a call).
        const branch = a.branch;
        return listing.list({
          branchId: branch && 'id' in branch ? branch.id : undefined,
          branchName: branch && 'name' in branch ? branch.name : undefined,
          area: a.area,
          hasPower: a.hasPower,
          hasMonitor: a.hasMonitor,
          availableOnly: a.availableOnly,
          startMs: window.startMs,
          endMs: window.endMs,
        }, deadlineOf(ctx));
      },
    }),
    defineMethod({
      name: 'seats.get',
      access: 'public',
      args: methodArgs['seats.get'],
      summary: 'one seat as seats.list shows it: {id}',
      handler: ({ id }, ctx) => seats.getSeat(id, deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'seats.availability',
      access: 'public',
      args: methodArgs['seats.availability'],
      summary: "a seat's booked intervals: {seatId, date?} (the branch's local day, default today) or {seatId, start, end}",
      handler: ({ seatId, date, start, end }, ctx) => {
        if (start !== undefined || end !== undefined) {
          if (start === undefined || end === undefined || date !== undefined) {
            throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'give either date, or both start and end');
          }
          return seats.availability(seatId, { startMs: start, endMs: end }, deadlineOf(ctx));
        }
        return seats.availability(seatId, { date }, deadlineOf(ctx));
      },
    }),
  ];
}
