// branches.list (docs/protocol.md, "`branches.list`"): every branch with its opening hours and live
// seat counts.
import type { SeatService } from '../../core/seats.js';
import { deadlineOf, defineMethod, type MethodDef } from '../registry.js';
import { methodArgs } from '../../wire/args.js';

export function branchMethods({ seats }: { seats: SeatService }): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'branches.list',
      access: 'public',
      args: methodArgs['branches.list'],
      summary: 'branches with hours and live counts {total, free, reserved, occupied, unavailable}',
      handler: (_a, ctx) => seats.listBranches(undefined, deadlineOf(ctx)),
    }),
  ];
}
