// admin.* (docs/protocol.md, "RPC methods"): staff changes to seats and branches, and the sensor
// keys (docs/sensors.md). The registry confirms the caller is still an admin in the users table
// before any of these runs (src/rpc/registry.ts).
import { z } from 'zod';
import { DAY_KEYS, validateHours, type BranchHours } from '../../core/rules.js';
import type { SeatService } from '../../core/seats.js';
import type { SensorKeyStore } from '../../sensors/keyStore.js';
import { defineMethod, type MethodDef } from '../registry.js';
import { branchRef, serialId } from './args.js';

const dayHours = z.strictObject({ open: z.string().max(5), close: z.string().max(5) }).nullable();
const hours = z
  .strictObject(Object.fromEntries(DAY_KEYS.map((d) => [d, dayHours.optional()])) as Record<(typeof DAY_KEYS)[number], z.ZodOptional<typeof dayHours>>)
  .superRefine((value, ctx) => {
    const problem = validateHours(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** A key's name: what the CLI revokes it by, so never all digits (those read as an id). */
const keyName = z
  .string()
  .max(64)
  .regex(/^[\w.:@/-]{1,64}$/, 'must be 1-64 characters of letters, digits and ._:@/-')
  .refine((v) => !/^\d+$/.test(v), 'must not be all digits (a number names a key by id)');

export interface AdminDeps {
  seats: SeatService;
  sensorKeys: SensorKeyStore;
  /** Closes this instance's sensor connections whose key was just revoked. */
  onSensorKeyRevoked: () => Promise<unknown>;
}

export function adminMethods({ seats, sensorKeys, onSensorKeyRevoked }: AdminDeps): MethodDef<any>[] {
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
    defineMethod({
      name: 'admin.sensors.addKey',
      access: 'admin',
      args: z.strictObject({ name: keyName, branch: branchRef }),
      summary: 'make a sensor key that may write only this branch\'s seats: {name, branch} → the key record and `key`, shown only this once',
      handler: ({ name, branch }) => sensorKeys.add(name, branch),
    }),
    defineMethod({
      name: 'admin.sensors.listKeys',
      access: 'admin',
      args: z.strictObject({ branch: branchRef.optional(), includeRevoked: z.boolean().optional() }).optional(),
      summary: 'sensor keys (never the keys themselves): {branch?, includeRevoked?} → [{id, name, branchId, branch, fingerprint, createdAt, revokedAt}]',
      handler: (a) => sensorKeys.list(a ?? {}),
    }),
    defineMethod({
      name: 'admin.sensors.revokeKey',
      access: 'admin',
      args: z.union([z.strictObject({ id: serialId, branch: branchRef.optional() }), z.strictObject({ name: keyName, branch: branchRef.optional() })]),
      summary: 'revoke a sensor key by {id} or {name} (and {branch} as a check): refused at its next hello, its open connections closed → the key record',
      handler: async (a) => {
        const key = await sensorKeys.revoke('id' in a ? { id: a.id } : { name: a.name }, a.branch);
        await onSensorKeyRevoked();
        return key;
      },
    }),
  ];
}
