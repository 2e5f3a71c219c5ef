// Admin rights are confirmed from the users table on every admin call (audit: they came only
// from the token's role claim, so a demoted admin kept them until the token expired, 12 h).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeUsers, seatIdOf, type TestUser } from '../support/core.js';
import { insertBooking } from '../support/fixtures.js';

let t: TestServer;
let seatId: number;
beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false } });
  seatId = await seatIdOf(t, 'Q-01');
});
afterAll(async () => {
  await t.close();
});

const setRole = (u: TestUser, role: 'student' | 'admin') => t.db.pool.query('UPDATE users SET role = $2 WHERE id = $1', [u.id, role]);
const seatStatus = async () => (await t.db.pool.query<{ status: string }>('SELECT status FROM seats WHERE id = $1', [seatId])).rows[0]!.status;

let keys = 0;
/** Valid arguments for every admin method, so a refusal can only be about who calls. */
const calls = (): Record<string, unknown> => ({
  'admin.seats.setStatus': { seatId, status: 'IN_SERVICE' },
  'admin.branches.setHours': { branch: 'Main Library', hours: { sun: { open: '10:00', close: '18:00' } } },
  'admin.sensors.addKey': { name: `demoted-gw-${++keys}`, branch: 'Main Library' },
  'admin.sensors.listKeys': {},
  'admin.sensors.revokeKey': { name: 'development' },
  'admin.reports.utilization': { branch: 'Main Library', from: '2030-01-07', to: '2030-01-07' },
  'admin.users.strikes': { userId: 1 },
  'admin.users.clearStrikes': { userId: 1 },
});

describe('admin methods and a demoted admin', () => {
  it('covers every admin method the registry holds', () => {
    const admin = t.registry.names().filter((n) => t.registry.get(n)!.access === 'admin');
    expect(admin).toEqual(Object.keys(calls()).sort());
  });

  it('a token minted while admin stops working for admin methods the moment the role is taken away', async () => {
    const [boss] = await makeUsers(t, 1, 'demoted', 'admin');
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    try {
      // The connection adopts the admin token, as a long-lived staff dashboard would.
      await c.call('auth.use', { token: boss!.token });
      expect(await c.call('admin.seats.setStatus', { seatId, status: 'OUT_OF_SERVICE' })).toMatchObject({ status: 'OUT_OF_SERVICE' });

      await setRole(boss!, 'student');
      for (const [method, args] of Object.entries(calls())) {
        expect((await c.request(method, [args])).error?.code, method).toBe('PERMISSION_DENIED');
      }
      // Per request too, not only for the adopted token.
      expect((await c.request('admin.seats.setStatus', [{ seatId, status: 'IN_SERVICE' }], boss!.token)).error?.code).toBe('PERMISSION_DENIED');
      expect(await seatStatus()).toBe('OUT_OF_SERVICE'); // the refused calls changed nothing
      expect(await c.call('auth.me')).toMatchObject({ user: { role: 'student' } }); // still a user

      await setRole(boss!, 'admin'); // promoted again: the same token works again
      expect(await c.call('admin.seats.setStatus', { seatId, status: 'IN_SERVICE' })).toMatchObject({ status: 'IN_SERVICE' });
    } finally {
      c.close();
    }
  });

  it("a demoted admin's token no longer reads other users' reservations", async () => {
    const [boss, student] = [(await makeUsers(t, 1, 'demoted-reader', 'admin'))[0]!, (await makeUsers(t, 1, 'reader-victim'))[0]!];
    const start = Math.ceil((Date.now() + 2 * 86_400_000) / 3_600_000) * 3_600_000;
    // Written directly: the branch's opening hours are not what this is about.
    const id = await insertBooking(t.db.pool, { seatId, userId: student.id, start: new Date(start).toISOString(), end: new Date(start + 3_600_000).toISOString() });
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    try {
      expect((await c.request('reservations.get', [{ id }], boss.token)).result).toMatchObject({ id });
      await setRole(boss, 'student');
      expect((await c.request('reservations.get', [{ id }], boss.token)).error?.code).toBe('NOT_FOUND');
      expect((await c.request('reservations.get', [{ id }], student.token)).result).toMatchObject({ id });
    } finally {
      c.close();
    }
  });

  it('a deleted admin account is refused too, as UNAUTHENTICATED: its token names nobody (docs/rules.md)', async () => {
    const [gone] = await makeUsers(t, 1, 'deleted-admin', 'admin');
    await t.db.pool.query('DELETE FROM users WHERE id = $1', [gone!.id]);
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    try {
      expect((await c.request('admin.seats.setStatus', [{ seatId, status: 'OUT_OF_SERVICE' }], gone!.token)).error?.code).toBe('UNAUTHENTICATED');
      expect(await seatStatus()).toBe('IN_SERVICE');
    } finally {
      c.close();
    }
  });
});
