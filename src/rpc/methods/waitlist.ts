// waitlist.join / .mine / .leave / .claim (docs/protocol.md, "RPC methods"): the wire side of the
// waitlist. Schemas bound every field; core decides the rules (window, limit, ownership).
import { CarrelError, ErrorCode } from '../../errors.js';
import type { AuthUser } from '../../auth/tokens.js';
import type { Waitlist } from '../../core/waitlist.js';
import { deadlineOf, defineMethod, type MethodContext, type MethodDef } from '../registry.js';
import { methodArgs } from '../../wire/args.js';

function caller(ctx: MethodContext): AuthUser {
  if (!ctx.user) throw new CarrelError(ErrorCode.UNAUTHENTICATED, 'this method needs a token (auth.login)');
  return ctx.user;
}

export function waitlistMethods(waitlist: Waitlist): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'waitlist.join',
      access: 'user',
      args: methodArgs['waitlist.join'],
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
      args: methodArgs['waitlist.mine'],
      summary: 'your waitlist entries, with position and any offer',
      handler: (_a, ctx) => waitlist.mine(caller(ctx), deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'waitlist.leave',
      access: 'user',
      args: methodArgs['waitlist.leave'],
      summary: 'leave a waitlist entry ({id}); declines its offer if there is one',
      handler: (a, ctx) => waitlist.leave(caller(ctx), a.id, deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'waitlist.claim',
      access: 'user',
      args: methodArgs['waitlist.claim'],
      summary: 'turn the offer on a waitlist entry ({id}) into a reservation',
      handler: (a, ctx) => waitlist.claim(caller(ctx), a.id, deadlineOf(ctx)),
    }),
  ];
}
