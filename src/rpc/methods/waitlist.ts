// waitlist.join / .mine / .leave / .claim (docs/protocol.md, "RPC methods"): the wire side of the
// waitlist. Schemas bound every field; core decides the rules (window, limit, ownership).
import { z } from 'zod';
import { CarrelError, ErrorCode } from '../../errors.js';
import type { AuthUser } from '../../auth/tokens.js';
import type { Waitlist } from '../../core/waitlist.js';
import { deadlineOf, defineMethod, type MethodContext, type MethodDef } from '../registry.js';
import { noArgs } from './system.js';

const isoTime = z.iso
  .datetime({ offset: true, message: 'must be an ISO-8601 time with an offset, e.g. 2026-01-05T14:00:00+01:00' })
  .max(40);
const positiveId = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const seatId = z.number().int().min(1).max(2_147_483_647);

const joinArgs = z
  .strictObject({
    seatId: seatId.optional(),
    branch: z.union([z.string().trim().min(1).max(200), seatId]).optional(),
    start: isoTime,
    end: isoTime,
  })
  .refine((a) => (a.seatId === undefined) !== (a.branch === undefined), {
    message: 'give exactly one of seatId or branch',
  });

const idArgs = z.strictObject({ id: positiveId });

function caller(ctx: MethodContext): AuthUser {
  if (!ctx.user) throw new CarrelError(ErrorCode.UNAUTHENTICATED, 'this method needs a token (auth.login)');
  return ctx.user;
}

export function waitlistMethods(waitlist: Waitlist): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'waitlist.join',
      access: 'user',
      args: joinArgs,
      summary: 'wait for a seat ({seatId}) or any seat of a branch ({branch}) for {start, end}',
      handler: (a, ctx) =>
        waitlist.join(caller(ctx), {
          target: a.seatId !== undefined ? { seatId: a.seatId } : { branch: a.branch! },
          start: new Date(a.start),
          end: new Date(a.end),
        }, deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'waitlist.mine',
      access: 'user',
      args: noArgs,
      summary: 'your waitlist entries, with position and any offer',
      handler: (_a, ctx) => waitlist.mine(caller(ctx), deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'waitlist.leave',
      access: 'user',
      args: idArgs,
      summary: 'leave a waitlist entry ({id}); declines its offer if there is one',
      handler: (a, ctx) => waitlist.leave(caller(ctx), a.id, deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'waitlist.claim',
      access: 'user',
      args: idArgs,
      summary: 'turn the offer on a waitlist entry ({id}) into a reservation',
      handler: (a, ctx) => waitlist.claim(caller(ctx), a.id, deadlineOf(ctx)),
    }),
  ];
}
