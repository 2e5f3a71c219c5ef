import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { connect, makeUsers } from '../support/core.js';
import { methodArgs } from '../../src/wire/args.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => t.close());

describe('the method table', () => {
  // Names are API (docs/protocol.md, "RPC methods"): renaming or dropping one breaks clients, so it
  // must be deliberate.
  it('registers exactly these methods', () => {
    expect(t.registry.names()).toEqual([
      'PING',
      'admin.branches.setHours',
      'admin.reports.utilization',
      'admin.seats.setStatus',
      'admin.sensors.addKey',
      'admin.sensors.listKeys',
      'admin.sensors.revokeKey',
      'admin.users.clearStrikes',
      'admin.users.strikes',
      'auth.login',
      'auth.me',
      'auth.register',
      'auth.use',
      'branches.list',
      'reservations.cancel',
      'reservations.checkIn',
      'reservations.checkOut',
      'reservations.create',
      'reservations.get',
      'reservations.mine',
      'reservations.walkIn',
      'seats.availability',
      'seats.get',
      'seats.list',
      'server.info',
      'server.stats',
      'waitlist.claim',
      'waitlist.join',
      'waitlist.leave',
      'waitlist.mine',
    ]);
  });

  it('parses every method\'s args[0] with the wire module\'s schema, the one clients are typed by (src/wire/args.ts)', () => {
    const names = t.registry.names();
    expect(Object.keys(methodArgs).sort()).toEqual(names);
    for (const name of names) expect(t.registry.get(name)!.args, name).toBe(methodArgs[name as keyof typeof methodArgs]);
  });

  it('gives public access only to the reads and the ways in (docs/protocol.md, "Tokens and access")', () => {
    const open = t.registry.names().filter((n) => t.registry.get(n)!.access === 'public');
    expect(open).toEqual(['PING', 'auth.login', 'auth.register', 'auth.use', 'branches.list', 'seats.availability', 'seats.get', 'seats.list', 'server.info']);
    const admin = t.registry.names().filter((n) => t.registry.get(n)!.access === 'admin');
    expect(admin).toEqual(['admin.branches.setHours', 'admin.reports.utilization', 'admin.seats.setStatus', 'admin.sensors.addKey', 'admin.sensors.listKeys', 'admin.sensors.revokeKey', 'admin.users.clearStrikes', 'admin.users.strikes']);
  });
});

describe('bad input', () => {
  it('never makes any method answer INTERNAL, with or without admin rights', async () => {
    const [admin] = await makeUsers(t, 1, 'fuzz', 'admin');
    const [student] = await makeUsers(t, 1, 'fuzz-student');
    const junk: unknown[] = [
      null, 0, -1, 'x', [], {}, [1, 2], { id: -1 }, { id: 1e300 }, { id: '1' }, { id: 2 ** 53 },
      { seatId: 2 ** 31 }, { seatId: 1, start: 'x', end: 'y' }, { seatId: 1, start: '9999-12-31T23:45:00Z', end: '9999-12-31T23:59:00Z' },
      { seatId: 1, start: '0001-01-01T00:00:00Z', end: '0001-01-01T01:00:00Z' }, { seatId: 1, date: '0000-01-01' },
      { branch: '0' }, { branch: 99999999 }, { branch: 'x'.repeat(5000) }, { cursor: '////' }, { cursor: 'dS45OTk5OTk5OTk5OTk5OTk5LjE' },
      { studentId: '', password: '' }, { token: 'a.b.c' }, { hours: { mon: null } }, { branch: 1, hours: { mon: { open: '24:00', close: '24:00' } } },
      { a: { b: { c: { d: { e: {} } } } } }, { start: '2030-02-30T10:00:00Z' }, { scope: 'history', limit: 0 },
    ];
    const clients = [await connect(t, admin), await connect(t, student), await connect(t)];
    const internal: string[] = [];
    for (const name of t.registry.names()) {
      for (const c of clients) {
        for (const args of junk) {
          const reply = await c.request(name, [args]);
          if (reply.error?.code === 'INTERNAL') internal.push(`${name} ${JSON.stringify(args)}`);
        }
      }
    }
    for (const c of clients) c.close();
    expect(internal).toEqual([]);
    // Every method × three callers × every junk argument, one after another: it grows with the
    // method table, and a shared machine makes each request slow.
  }, 90_000);
});
