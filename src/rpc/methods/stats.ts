// server.stats (docs/protocol.md, "`server.stats`"): the figures /metrics exposes, as JSON over
// RPC. It needs a token: request rates and pool use tell an outsider how hard the service can be
// pushed — and so does a token whose account has been deleted, which `refuseGone` answers
// UNAUTHENTICATED.
import { deadlineOf, defineMethod, type MethodDef } from '../registry.js';
import type { Deadline } from '../../deadline.js';
import { methodArgs } from '../../wire/args.js';

/** Throws UNAUTHENTICATED when the account no longer exists (core/accountCheck.ts). */
export type RefuseGoneAccount = (userId: number, deadline: Deadline) => Promise<void>;

export function statsMethods(stats: () => unknown, refuseGone?: RefuseGoneAccount): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'server.stats',
      access: 'user',
      args: methodArgs['server.stats'],
      summary: 'per-method counts and latency percentiles, errors by code, connections, in-flight, pool',
      handler: async (_a, ctx) => {
        // The figures are read first, in the turn the request arrived, so they describe the
        // server as this request found it (not counting itself in flight).
        const figures = stats();
        await refuseGone?.(ctx.user!.id, deadlineOf(ctx));
        return figures;
      },
    }),
  ];
}
