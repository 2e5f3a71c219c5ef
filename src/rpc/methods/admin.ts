// admin.* (DESIGN §2): staff changes to seats and branches. The registry confirms the caller is
// still an admin in the users table before any of these runs (src/rpc/registry.ts).
import { z } from 'zod';
import { DAY_KEYS, validateHours, type BranchHours } from '../../core/rules.js';
import type { SeatService } from '../../core/seats.js';
import { defineMethod, type MethodDef } from '../registry.js';
import { branchRef, serialId } from './args.js';

const dayHours = z.strictObject({ open: z.string().max(5), close: z.string().max(5) }).nullable();
const hours = z
  .strictObject(Object.fromEntries(DAY_KEYS.map((d) => [d, dayHours.optional()])) as Record<(typeof DAY_KEYS)[number], z.ZodOptional<typeof dayHours>>)
  .superRefine((value, ctx) => {
    const problem = validateHours(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export function adminMethods({ seats }: { seats: SeatService }): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'admin.seats.setStatus',
      access: 'admin',
      args: z.strictObject({ seatId: serialId, status: z.enum(['IN_SERVICE', 'OUT_OF_SERVICE']) }),
      summary: 'take a seat in or out of service: {seatId, status} → the seat',
      handler: ({ seatId, status }) => seats.setSeatStatus(seatId, status),
    }),
    defineMethod({
      name: 'admin.branches.setHours',
      access: 'admin',
      args: z.strictObject({ branch: branchRef, hours }),
      summary: 'set a branch\'s opening hours: {branch, hours: {mon: {open: "08:00", close: "22:00"}, …}} → the branch',
      handler: ({ branch, hours: h }) => seats.setBranchHours(branch, h as BranchHours),
    }),
  ];
}
