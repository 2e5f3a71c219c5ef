// Failed logins are slowed per account (issue 7), wired into auth.login: past the free
// failures the account is locked before any bcrypt work, with a retry hint, and a correct
// password after the lock has passed logs in and clears the count. Pipelined or concurrent
// guesses get no more tries than sequential ones (audit: 20 pipelined wrong logins for one
// account were all checked before the first bcrypt finished, so all 20 were tried).
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

type Reply = Awaited<ReturnType<RpcClient['request']>>;

function codes(replies: Reply[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of replies) {
    const code = r.error?.code ?? 'OK';
    out[code] = (out[code] ?? 0) + 1;
  }
  return out;
}

async function connections(n: number): Promise<RpcClient[]> {
  return Promise.all(Array.from({ length: n }, () => RpcClient.connect('127.0.0.1', t.server.ports.rpc)));
}

/** Starts from a clean slate: every earlier failure is past loginThrottle.forgetAfterMs. */
function forgetEverything(): void {
  clock.advance(t.config.loginThrottle.forgetAfterMs + 1);
}

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

  it('20 pipelined wrong logins for one account on one connection: only the free failures plus one are tried', async () => {
    forgetEverything();
    const free = t.config.loginThrottle.account.freeFailures;
    await c.call('auth.register', { studentId: 'piped', name: 'Piped', password: 'right-password' });
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => c.request('auth.login', [{ studentId: 'piped', password: 'wrong-password' }])),
    );
    expect(codes(replies)).toEqual({ UNAUTHENTICATED: free + 1, RESOURCE_EXHAUSTED: 20 - free - 1 });
    for (const r of replies.filter((x) => x.error?.code === 'RESOURCE_EXHAUSTED')) {
      expect(Number(r.error?.details?.retryAfterMs)).toBeGreaterThan(0);
    }
    expect(t.server.loginThrottle.inFlight).toEqual({ accounts: 0, addresses: 0 });
  });

  it('the same holds when the guesses for one account come over several connections at once', async () => {
    forgetEverything();
    const free = t.config.loginThrottle.account.freeFailures;
    await c.call('auth.register', { studentId: 'spread', name: 'Spread', password: 'right-password' });
    const conns = await connections(4);
    try {
      const replies = await Promise.all(
        conns.flatMap((conn) =>
          Array.from({ length: 5 }, () => conn.request('auth.login', [{ studentId: 'spread', password: 'wrong-password' }])),
        ),
      );
      expect(codes(replies)).toEqual({ UNAUTHENTICATED: free + 1, RESOURCE_EXHAUSTED: 20 - free - 1 });
      // The lock is the one the last admitted failure started; once it passes, the owner gets in.
      clock.advance(t.config.loginThrottle.account.baseDelayMs);
      expect((await conns[0]!.request('auth.login', [{ studentId: 'spread', password: 'right-password' }])).result).toMatchObject({
        user: { studentId: 'spread' },
      });
    } finally {
      for (const conn of conns) conn.close();
    }
  });

  it('one address guessing many accounts over several connections is held to its free failures plus one', async () => {
    forgetEverything();
    const free = t.config.loginThrottle.address.freeFailures;
    const conns = await connections(4);
    try {
      // 4 × 20 distinct (unknown) accounts: no account reaches its own limit, the address does.
      const replies = await Promise.all(
        conns.flatMap((conn, ci) =>
          Array.from({ length: 20 }, (_, i) => conn.request('auth.login', [{ studentId: `guess-${ci}-${i}`, password: 'wrong-password' }])),
        ),
      );
      expect(codes(replies)).toEqual({ UNAUTHENTICATED: free + 1, RESOURCE_EXHAUSTED: 80 - free - 1 });
      expect(t.server.loginThrottle.inFlight).toEqual({ accounts: 0, addresses: 0 });
    } finally {
      for (const conn of conns) conn.close();
    }
  });
});
