// reservations.* (docs/protocol.md, "RPC methods"): book, read, cancel, check in and out — always
// as the caller; someone else's reservation is NOT_FOUND, never visible.
import type { ReservationService } from '../../core/reservations.js';
import { deadlineOf, defineMethod, type MethodContext, type MethodDef } from '../registry.js';
import { methodArgs } from '../../wire/args.js';

const caller = (ctx: MethodContext) => ({ id: ctx.user!.id, role: ctx.user!.role });

export function reservationMethods({ reservations }: { reservations: ReservationService }): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'reservations.create',
      access: 'user',
      args: methodArgs['reservations.create'],
      summary: 'book a seat: {seatId | branch, area?, hasPower?, hasMonitor?, near?; start, end, idempotencyKey?} → the reservation',
      handler: ({ seatId, branch, area, hasPower, hasMonitor, near, start, end, idempotencyKey }, ctx) =>
        reservations.create(
          caller(ctx),
          branch === undefined
            ? { seatId, startMs: start, endMs: end, idempotencyKey }
            : { choose: { branch, area, hasPower, hasMonitor, near }, startMs: start, endMs: end, idempotencyKey },
          deadlineOf(ctx),
          (ahead) => ctx.holdReading(ahead),
        ),
    }),
    defineMethod({
      name: 'reservations.walkIn',
      access: 'user',
      args: methodArgs['reservations.walkIn'],
      summary: 'sit at a free seat: {seatId} → a reservation from the slot under way, checked in (docs/rules.md, "Walk-ins")',
      handler: ({ seatId }, ctx) => reservations.walkIn(caller(ctx), seatId, deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'reservations.get',
      access: 'user',
      args: methodArgs['reservations.get'],
      summary: 'one of your reservations: {id}',
      handler: ({ id }, ctx) => reservations.get(caller(ctx), id, deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'reservations.mine',
      access: 'user',
      args: methodArgs['reservations.mine'],
      summary: 'your reservations: {scope?: upcoming|history, limit?, cursor?} → {reservations, nextCursor}',
      handler: ({ scope, limit, cursor }, ctx) => reservations.mine(ctx.user!.id, { scope, limit, cursor }, deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'reservations.cancel',
      access: 'user',
      args: methodArgs['reservations.cancel'],
      summary: 'cancel a confirmed reservation before it ends: {id}; once started, the part passed stays, as NO_SHOW',
      handler: ({ id }, ctx) => reservations.cancel(caller(ctx), id, deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'reservations.checkIn',
      access: 'user',
      args: methodArgs['reservations.checkIn'],
      summary: 'check in inside the check-in window: {id}',
      handler: ({ id }, ctx) => reservations.checkIn(caller(ctx), id, deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'reservations.checkOut',
      access: 'user',
      args: methodArgs['reservations.checkOut'],
      summary: 'leave early: {id}; the rest of the booking becomes free',
      handler: ({ id }, ctx) => reservations.checkOut(caller(ctx), id, deadlineOf(ctx)),
    }),
  ];
}

