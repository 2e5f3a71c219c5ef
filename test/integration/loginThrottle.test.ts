// Failed logins are slowed per account (issue 7), wired into auth.login: past the free
// failures the account is locked before any bcrypt work, with a retry hint, and a correct
// password after the lock has passed logs in and clears the count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { FakeClock } from '../../src/core/clock.js';
import { startTestServer, type TestServer } from '../support/server.js';

const clock = new FakeClock(Date.parse('2030-01-07T15:00:00Z'));
let t: TestServer;
let c: RpcClient;

beforeAll(async () => {
  t = await startTestServer({}, { clock });
  c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
  await c.call('auth.register', { studentId: 'locky', name: 'Locky', password: 'right-password' });
});
afterAll(async () => {
  c.close();
  await t.close();
});

describe('auth.login under repeated failures', () => {
  it('locks the account after the free failures, then lets the right password in once the lock passes', async () => {
    const free = t.config.loginThrottle.account.freeFailures;
    const login = (password: string) => c.request('auth.login', [{ studentId: 'locky', password }]);
    for (let i = 0; i < free; i++) expect((await login('wrong-password')).error?.code).toBe('UNAUTHENTICATED');
    expect((await login('wrong-password')).error?.code).toBe('UNAUTHENTICATED'); // this one starts the lock
    const locked = await login('right-password');
    expect(locked.error?.code).toBe('RESOURCE_EXHAUSTED');
    expect(Number(locked.error?.details?.retryAfterMs)).toBeGreaterThan(0);
    clock.advance(Number(locked.error?.details?.retryAfterMs) + 1);
    expect((await login('right-password')).result).toMatchObject({ user: { studentId: 'locky' } });
    // Success cleared the account's count: the next mistake is a plain wrong password again.
    expect((await login('wrong-password')).error?.code).toBe('UNAUTHENTICATED');
  });
});
