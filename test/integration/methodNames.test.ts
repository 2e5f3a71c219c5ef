import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => t.close());

describe('the method table', () => {
  // Names are API (DESIGN §2): renaming or dropping one breaks clients, so it must be deliberate.
  it('registers exactly these methods', () => {
    expect(t.server.registry.names()).toEqual([
      'PING',
      'admin.branches.setHours',
      'admin.seats.setStatus',
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
      'seats.availability',
      'seats.get',
      'seats.list',
      'server.info',
    ]);
  });

  it('gives public access only to the reads and the ways in (DESIGN §2)', () => {
    const open = t.server.registry.names().filter((n) => t.server.registry.get(n)!.access === 'public');
    expect(open).toEqual(['PING', 'auth.login', 'auth.register', 'auth.use', 'branches.list', 'seats.availability', 'seats.get', 'seats.list', 'server.info']);
    const admin = t.server.registry.names().filter((n) => t.server.registry.get(n)!.access === 'admin');
    expect(admin).toEqual(['admin.branches.setHours', 'admin.seats.setStatus']);
  });
});
