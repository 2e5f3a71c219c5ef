// admin.* (docs/protocol.md, "RPC methods"): staff changes to seats and branches, and the sensor
// keys (docs/sensors.md). The registry confirms the caller is still an admin in the users table
// before any of these runs (src/rpc/registry.ts).
import type { SeatService } from '../../core/seats.js';
import type { StrikeService } from '../../core/strikes.js';
import type { SensorKeyStore } from '../../sensors/keyStore.js';
import { methodArgs } from '../../wire/args.js';
import type { BranchHours } from '../../wire/hours.js';
import { deadlineOf, defineMethod, type MethodDef } from '../registry.js';

export interface AdminDeps {
  seats: SeatService;
  sensorKeys: SensorKeyStore;
  strikes: StrikeService;
  /** Closes this instance's sensor connections whose key was just revoked. */
  onSensorKeyRevoked: () => Promise<unknown>;
}

export function adminMethods({ seats, sensorKeys, strikes, onSensorKeyRevoked }: AdminDeps): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'admin.seats.setStatus',
      access: 'admin',
      args: methodArgs['admin.seats.setStatus'],
      summary: 'take a seat in or out of service: {seatId, status} → the seat',
      handler: ({ seatId, status }) => seats.setSeatStatus(seatId, status),
    }),
    defineMethod({
      name: 'admin.branches.setHours',
      access: 'admin',
      args: methodArgs['admin.branches.setHours'],
      summary: 'set a branch\'s opening hours: {branch, hours: {mon: {open: "08:00", close: "22:00"}, …}} → the branch',
      handler: ({ branch, hours: h }) => seats.setBranchHours(branch, h as BranchHours),
    }),
    defineMethod({
      name: 'admin.sensors.addKey',
      access: 'admin',
      args: methodArgs['admin.sensors.addKey'],
      summary: 'make a sensor key that may write only this branch\'s seats: {name, branch} → the key record and `key`, shown only this once',
      handler: ({ name, branch }) => sensorKeys.add(name, branch),
    }),
    defineMethod({
      name: 'admin.sensors.listKeys',
      access: 'admin',
      args: methodArgs['admin.sensors.listKeys'],
      summary: 'sensor keys (never the keys themselves): {branch?, includeRevoked?} → [{id, name, branchId, branch, fingerprint, createdAt, revokedAt}]',
      handler: (a) => sensorKeys.list(a ?? {}),
    }),
    defineMethod({
      name: 'admin.sensors.revokeKey',
      access: 'admin',
      args: methodArgs['admin.sensors.revokeKey'],
      summary: 'revoke a sensor key by {id} or {name} (and {branch} as a check): refused at its next hello, its open connections closed → the key record',
      handler: async (a) => {
        const key = await sensorKeys.revoke('id' in a ? { id: a.id } : { name: a.name }, a.branch);
        await onSensorKeyRevoked();
        return key;
      },
    }),
    defineMethod({
      name: 'admin.users.strikes',
      access: 'admin',
      args: methodArgs['admin.users.strikes'],
      summary: 'a user\'s strikes as they count now: {userId} → {strikes: [{id, reservationId, reason, at}], limit, windowDays, suspendedUntil}',
      handler: ({ userId }, ctx) => strikes.of(userId, deadlineOf(ctx)),
    }),
    defineMethod({
      name: 'admin.users.clearStrikes',
      access: 'admin',
      args: methodArgs['admin.users.clearStrikes'],
      summary: 'clear a user\'s strikes and lift their suspension: {userId} → {cleared}',
      handler: ({ userId }, ctx) => strikes.clear(userId, ctx.user!.id, deadlineOf(ctx)),
    }),
  ];
}
