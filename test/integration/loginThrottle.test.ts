// Failed logins, wired into auth.login over real sockets from several source addresses
// (127.0.0.2, 127.0.0.3, … all reach the loopback listener): guessing is slowed per (account,
// address), per address, and per account across addresses — and none of it lets one address
// keep the owner's right password out from another (docs/accounts.md, "Failed logins").
// Pipelined or concurrent guesses get no more tries than sequential ones (audit: 20 pipelined
// wrong logins for one account were all checked before the first bcrypt finished).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { FakeClock } from '../../src/core/clock.js';
import { startTestServer, type TestServer } from '../support/server.js';

const clock = new FakeClock(Date.parse('2030-01-07T15:00:00Z'));
let t: TestServer;
let c: RpcClient;

beforeAll(async () => {
  // The attacker here waits out each lock on the fake clock; a refused connection's quiet time
  // (docs/fairness.md) runs on the real one, so it is off in this file.
  t = await startTestServer({ admission: { quietOnRefusalMaxMs: 0 } }, { clock });
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

async function connections(n: number, from = '127.0.0.1'): Promise<RpcClient[]> {
  return Promise.all(Array.from({ length: n }, () => RpcClient.connect('127.0.0.1', t.server.ports.rpc, { localAddress: from })));
}

/** One login from one source address, on its own connection. */
async function loginFrom(from: string, studentId: string, password: string): Promise<Reply> {
  const [conn] = await connections(1, from);
  try {
    return await conn!.request('auth.login', [{ studentId, password }]);
  } finally {
    conn!.close();
  }
}

/** Starts from a clean slate: every earlier failure is past loginThrottle.forgetAfterMs. */
function forgetEverything(): void {
  clock.advance(t.config.loginThrottle.forgetAfterMs + 1);
}

describe('auth.login under repeated failures from one address', () => {
  it('locks the account for that address after its free failures; the owner elsewhere logs in meanwhile; the lock passes', async () => {
    const free = t.config.loginThrottle.accountFromAddress.freeFailures;
    const login = (password: string) => c.request('auth.login', [{ studentId: 'locky', password }]);
    for (let i = 0; i < free; i++) expect((await login('wrong-password')).error?.code).toBe('UNAUTHENTICATED');
    expect((await login('wrong-password')).error?.code).toBe('UNAUTHENTICATED'); // this one starts the lock
    const locked = await login('right-password');
    expect(locked.error?.code).toBe('RESOURCE_EXHAUSTED');
    expect(Number(locked.error?.details?.retryAfterMs)).toBeGreaterThan(0);
    // Another address is not held back by this one's guessing.
    expect((await loginFrom('127.0.0.2', 'locky', 'right-password')).result).toMatchObject({ user: { studentId: 'locky' } });
    clock.advance(Number(locked.error?.details?.retryAfterMs) + 1);
    expect((await login('right-password')).result).toMatchObject({ user: { studentId: 'locky' } });
    // Success cleared this address's count for the account: the next mistake is a plain wrong password again.
    expect((await login('wrong-password')).error?.code).toBe('UNAUTHENTICATED');
  });

  it('20 pipelined wrong logins for one account on one connection: only the free failures plus one are tried', async () => {
    forgetEverything();
    const free = t.config.loginThrottle.accountFromAddress.freeFailures;
    await c.call('auth.register', { studentId: 'piped', name: 'Piped', password: 'right-password' });
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => c.request('auth.login', [{ studentId: 'piped', password: 'wrong-password' }])),
    );
    expect(codes(replies)).toEqual({ UNAUTHENTICATED: free + 1, RESOURCE_EXHAUSTED: 20 - free - 1 });
    for (const r of replies.filter((x) => x.error?.code === 'RESOURCE_EXHAUSTED')) {
      expect(Number(r.error?.details?.retryAfterMs)).toBeGreaterThan(0);
    }
    expect(t.loginThrottle.inFlight).toEqual({ accounts: 0, pairs: 0, addresses: 0 });
  });

  it('the same holds when the guesses come over several connections at once, in every spelling of the id', async () => {
    forgetEverything();
    const free = t.config.loginThrottle.accountFromAddress.freeFailures;
    await c.call('auth.register', { studentId: 'spread', name: 'Spread', password: 'right-password' });
    const spellings = ['spread', 'SPREAD', ' Spread', 'ｓｐｒｅａｄ'];
    const conns = await connections(4);
    try {
      const replies = await Promise.all(
        conns.flatMap((conn, ci) =>
          Array.from({ length: 5 }, () => conn.request('auth.login', [{ studentId: spellings[ci], password: 'wrong-password' }])),
        ),
      );
      expect(codes(replies)).toEqual({ UNAUTHENTICATED: free + 1, RESOURCE_EXHAUSTED: 20 - free - 1 });
      // The lock is the one the last admitted failure started; once it passes, the owner gets in.
      clock.advance(t.config.loginThrottle.accountFromAddress.baseDelayMs);
      expect((await conns[0]!.request('auth.login', [{ studentId: 'Spread', password: 'right-password' }])).result).toMatchObject({
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
      // 4 × 20 distinct (unknown) accounts: no pair reaches its own limit, the address does.
      const replies = await Promise.all(
        conns.flatMap((conn, ci) =>
          Array.from({ length: 20 }, (_, i) => conn.request('auth.login', [{ studentId: `guess-${ci}-${i}`, password: 'wrong-password' }])),
        ),
      );
      expect(codes(replies)).toEqual({ UNAUTHENTICATED: free + 1, RESOURCE_EXHAUSTED: 80 - free - 1 });
      expect(t.loginThrottle.inFlight).toEqual({ accounts: 0, pairs: 0, addresses: 0 });
      // Only that address: the owner of one of those ids, elsewhere, is not slowed.
      expect((await loginFrom('127.0.0.2', 'locky', 'right-password')).error).toBeNull();
    } finally {
      for (const conn of conns) conn.close();
    }
  });
});

describe('the lock-out and bypass attacks of the audit', () => {
  it('failed logins as "ADMIN", "admin " and friends from one address never keep the real admin out of another', async () => {
    forgetEverything();
    const attacker = (await connections(1, '127.0.0.5'))[0]!;
    try {
      let refused = 0;
      // Far past every free failure, in every spelling, waiting out each lock as an attacker would.
      for (let i = 0; i < 40; i++) {
        const studentId = ['ADMIN', 'admin ', ' Admin', 'ａｄｍｉｎ', 'admin'][i % 5]!;
        const r = await attacker.request('auth.login', [{ studentId, password: `guess-${i}` }]);
        if (r.error?.code === 'RESOURCE_EXHAUSTED') {
          refused++;
          clock.advance(Number(r.error.details?.retryAfterMs));
        } else {
          expect(r.error?.code).toBe('UNAUTHENTICATED');
        }
      }
      expect(refused).toBeGreaterThan(0); // the guesser was slowed
      // The admin, from an address it never used before, with the right password: in at once.
      const admin = await loginFrom('127.0.0.6', 'admin', 'admin-pass-2026');
      expect(admin.result).toMatchObject({ user: { studentId: 'admin', role: 'admin' } });
    } finally {
      attacker.close();
    }
  });

  it('a twin of an existing id cannot be registered, and logging into one\'s own account between guesses resets nothing', async () => {
    forgetEverything();
    const free = t.config.loginThrottle.accountFromAddress.freeFailures;
    await c.call('auth.register', { studentId: 'vid4242', name: 'Victim', password: 'victims-password' });
    const attacker = (await connections(1, '127.0.0.7'))[0]!;
    try {
      for (const twin of ['VID4242', 'Vid4242']) {
        expect((await attacker.request('auth.register', [{ studentId: twin, name: 'Twin', password: 'attackers-password' }])).error?.code).toBe('CONFLICT');
      }
      await attacker.call('auth.register', { studentId: 'vid4242-mine', name: 'Mine', password: 'attackers-password' });
      const guesses: Reply[] = [];
      for (let i = 0; i < 18; i++) {
        guesses.push(await attacker.request('auth.login', [{ studentId: 'VID4242', password: `guess-${i}` }]));
        expect((await attacker.request('auth.login', [{ studentId: 'vid4242-mine', password: 'attackers-password' }])).error).toBeNull();
      }
      expect(codes(guesses)).toEqual({ UNAUTHENTICATED: free + 1, RESOURCE_EXHAUSTED: 18 - free - 1 });
    } finally {
      attacker.close();
    }
  });

  it('many addresses guessing one account lock it for new addresses only: the owner\'s usual address still logs in', async () => {
    forgetEverything();
    await c.call('auth.register', { studentId: 'popular', name: 'Popular', password: 'popular-password' });
    expect((await loginFrom('127.0.1.1', 'popular', 'popular-password')).error).toBeNull(); // the owner's usual address
    // The account's free failures plus the one that starts its lock, each address within its own free ones.
    const perAddress = t.config.loginThrottle.accountFromAddress.freeFailures;
    const failures = t.config.loginThrottle.account.freeFailures + 1;
    for (let n = 0; n < failures; n++) {
      const from = `127.0.2.${Math.floor(n / perAddress) + 1}`;
      expect((await loginFrom(from, 'popular', `guess-${n}`)).error?.code).toBe('UNAUTHENTICATED');
    }
    const stranger = await loginFrom('127.0.3.1', 'popular', 'popular-password');
    expect(stranger.error?.code).toBe('RESOURCE_EXHAUSTED');
    expect((await loginFrom('127.0.1.1', 'popular', 'popular-password')).result).toMatchObject({ user: { studentId: 'popular' } });
    // An id with no account is never locked that way: its failures are not an account's.
    for (let n = 0; n < 2 * failures; n++) {
      const from = `127.0.4.${Math.floor(n / perAddress) + 1}`;
      expect((await loginFrom(from, 'nobody-home', 'guess')).error?.code).toBe('UNAUTHENTICATED');
    }
    expect((await loginFrom('127.0.3.2', 'nobody-home', 'guess')).error?.code).toBe('UNAUTHENTICATED');
  });
});
