import { describe, expect, it } from 'vitest';
import { LoginThrottle, addressKey } from '../../src/auth/loginThrottle.js';
import { CarrelError } from '../../src/errors.js';
import { FakeClock } from '../../src/core/clock.js';

const DAY_MS = 24 * 3600_000;

function throttle(clock: FakeClock, maxEntries = 1000) {
  return new LoginThrottle({
    accountFromAddress: { freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 8000 },
    account: { freeFailures: 8, baseDelayMs: 1000, maxDelayMs: 60_000 },
    address: { freeFailures: 10, baseDelayMs: 1000, maxDelayMs: 60_000 },
    forgetAfterMs: 15 * 60_000,
    maxEntries,
    knownAddressesPerAccount: 2,
    knownAddressForgetAfterMs: DAY_MS,
    now: () => clock.now(),
  });
}

/** 0 when a login would be admitted now (the probe is released, so it leaves no trace), else the retry hint. */
function retryAfter(t: LoginThrottle, studentId: string, address: string): number {
  try {
    t.begin(studentId, address).abandoned();
  } catch (err) {
    if (err instanceof CarrelError && err.code === 'RESOURCE_EXHAUSTED') return err.details!.retryAfterMs as number;
    throw err;
  }
  return 0;
}

/** A wrong password for an existing account. */
const fail = (t: LoginThrottle, studentId: string, address: string) => t.begin(studentId, address).failed({ accountExists: true });
/** A login of an id that has no account. */
const failUnknown = (t: LoginThrottle, studentId: string, address: string) => t.begin(studentId, address).failed({ accountExists: false });
const succeed = (t: LoginThrottle, studentId: string, address: string) => t.begin(studentId, address).succeeded();

describe('login throttle: one account from one address', () => {
  it('lets the free failures through, then locks that address for doubling delays up to the cap; other addresses are untouched', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      const wait = retryAfter(t, 's1001', '10.0.0.1');
      waits.push(wait);
      clock.advance(wait);
      fail(t, 's1001', '10.0.0.1');
    }
    expect(waits).toEqual([0, 0, 0, 0, 1000, 2000, 4000]);
    expect(retryAfter(t, 's1001', '10.0.0.1')).toBe(8000);
    expect(retryAfter(t, 'S1001 ', '10.0.0.1')).toBe(8000); // same account, other spelling
    expect(retryAfter(t, 'ｓ１００１', '10.0.0.1')).toBe(8000); // and in full-width letters
    expect(retryAfter(t, 's1001', '10.0.0.2')).toBe(0); // the owner, elsewhere
    expect(retryAfter(t, 's1002', '10.0.0.1')).toBe(0); // the address is under its own limit
    expect(t.throttled).toBe(6); // three in the loop, three above
  });

  it('failed logins as "ADMIN" and "admin " from one address never stop the right password from another', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    // The attacker keeps going for two hours, waiting out every lock, with every spelling.
    const spellings = ['ADMIN', 'admin ', ' Admin', 'ａｄｍｉｎ'];
    let tried = 0;
    for (let i = 0; clock.now() < Date.parse('2026-01-05T17:00:00Z'); i++) {
      const wait = retryAfter(t, spellings[i % spellings.length]!, '203.0.113.66');
      if (wait > 0) {
        clock.advance(wait);
        continue;
      }
      fail(t, spellings[i % spellings.length]!, '203.0.113.66');
      tried++;
      // From an address admin has never used, at every moment of the attack.
      expect(retryAfter(t, 'admin', '198.51.100.7')).toBe(0);
    }
    expect(tried).toBeGreaterThan(10);
    succeed(t, 'admin', '198.51.100.7');
    // The owner's success cleared nothing of the guesser's: its next failure locks it again.
    clock.advance(retryAfter(t, 'admin', '203.0.113.66'));
    fail(t, 'ADMIN', '203.0.113.66');
    expect(retryAfter(t, 'admin', '203.0.113.66')).toBeGreaterThan(0);
  });
});

describe('login throttle: a success clears only its own count', () => {
  it('logging into one\'s own account between guesses resets neither the victim\'s count nor the address\'s', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    // The twin-account bypass: guess, log into a second account one owns, guess again.
    const admitted: string[] = [];
    for (let i = 0; i < 18; i++) {
      if (retryAfter(t, 'vid1234', '192.0.2.9') === 0) {
        fail(t, 'vid1234', '192.0.2.9');
        admitted.push('guess');
      }
      succeed(t, 'VID1234-twin', '192.0.2.9');
    }
    expect(admitted).toHaveLength(4); // the free failures plus the one that starts the lock
    expect(retryAfter(t, 'vid1234', '192.0.2.9')).toBe(1000);
  });

  it('the address\'s own count survives a success, so spraying accounts stays slowed', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    for (let i = 0; i < 10; i++) failUnknown(t, `victim${i}`, '192.0.2.9');
    fail(t, 'mine', '192.0.2.9'); // the address's eleventh failure locks it for 1 s
    expect(retryAfter(t, 'anyone', '192.0.2.9')).toBe(1000);
    clock.advance(1000);
    succeed(t, 'mine', '192.0.2.9');
    failUnknown(t, 'anyone', '192.0.2.9'); // the twelfth: the success did not reset the address
    expect(retryAfter(t, 'anyone-else', '192.0.2.9')).toBe(2000);
    expect(t.tracked).toMatchObject({ addresses: 1, pairs: 11 }); // the victims and anyone; (mine, address) was cleared
  });
});

describe('login throttle: one account from many addresses', () => {
  it('past its free failures the account is locked for addresses it has not logged in from, never for one it has', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    succeed(t, 's1001', '10.1.1.1'); // the owner's usual address
    // Three addresses, three failures each (each pair's free ones): 9 > 8 account-wide.
    for (const a of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) for (let i = 0; i < 3; i++) fail(t, 's1001', a);
    expect(retryAfter(t, 's1001', '203.0.113.4')).toBe(1000); // a fourth guesser waits
    expect(retryAfter(t, 's1001', '10.1.1.1')).toBe(0); // the owner does not
    // Past knownAddressForgetAfterMs the owner's address is just another address.
    clock.advance(DAY_MS + 1);
    for (const a of ['203.0.113.5', '203.0.113.6', '203.0.113.7']) for (let i = 0; i < 3; i++) fail(t, 's1001', a);
    expect(retryAfter(t, 's1001', '10.1.1.1')).toBe(1000);
  });

  it('each address adds at most its free failures to the account-wide count', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    // Two addresses that keep guessing past their own locks: 2 × 3 counted, under 8.
    for (let round = 0; round < 6; round++) {
      for (const a of ['203.0.113.1', '203.0.113.2']) {
        clock.advance(retryAfter(t, 's1001', a));
        fail(t, 's1001', a);
      }
    }
    expect(retryAfter(t, 's1001', '198.51.100.1')).toBe(0);
  });

  it('failures of an id with no account never count against the account-wide limit', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    for (let a = 0; a < 10; a++) for (let i = 0; i < 3; i++) failUnknown(t, 'ghost', `203.0.113.${a}`);
    expect(retryAfter(t, 'ghost', '198.51.100.1')).toBe(0);
    expect(t.tracked.accounts).toBe(0);
    expect(t.inFlight).toEqual({ accounts: 0, pairs: 0, addresses: 0 });
  });

  it('remembers at most knownAddressesPerAccount addresses per account, the most recent', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) succeed(t, 's1', a);
    for (const a of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) for (let i = 0; i < 3; i++) fail(t, 's1', a);
    expect([retryAfter(t, 's1', '10.0.0.1'), retryAfter(t, 's1', '10.0.0.2'), retryAfter(t, 's1', '10.0.0.3')]).toEqual([1000, 0, 0]);
  });
});

describe('login throttle: bounds', () => {
  it('forgets failures after forgetAfterMs', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    for (let i = 0; i < 4; i++) fail(t, 's1', '10.0.0.1');
    expect(retryAfter(t, 's1', '10.0.0.1')).toBe(1000);
    clock.advance(15 * 60_000 + 1);
    expect(retryAfter(t, 's1', '10.0.0.1')).toBe(0);
    expect(t.tracked).toMatchObject({ accounts: 0, pairs: 0, addresses: 0 });
    fail(t, 's1', '10.0.0.1'); // counting starts again from one
    expect(retryAfter(t, 's1', '10.0.0.1')).toBe(0);
  });

  it('keeps memory bounded under a spray of random accounts and addresses, failing and succeeding', () => {
    const clock = new FakeClock();
    const t = throttle(clock, 500);
    for (let i = 0; i < 50_000; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      fail(t, `random-${i}`, address);
      succeed(t, `random-${i % 7919}`, address);
    }
    expect(t.tracked).toEqual({ accounts: 500, pairs: 500, addresses: 500, knownAccounts: 500 });
    expect(t.inFlight).toEqual({ accounts: 0, pairs: 0, addresses: 0 });
  });

  it('admits concurrent attempts on one account from one address no more often than sequential ones', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    // Sequentially 3 free failures + the one that starts the lock get through; so do 4 at once.
    const running = [];
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      try {
        running.push(t.begin('s1001', '10.0.0.1'));
      } catch (err) {
        expect((err as CarrelError).code).toBe('RESOURCE_EXHAUSTED');
        expect((err as CarrelError).details!.retryAfterMs).toBe(1000); // the lock they would start
        refused++;
      }
    }
    expect([running.length, refused]).toEqual([4, 16]);
    for (const a of running) a.failed({ accountExists: true });
    expect(retryAfter(t, 's1001', '10.0.0.1')).toBe(1000);
    expect(retryAfter(t, 's1001', '10.0.0.2')).toBe(0);
    expect(t.inFlight).toEqual({ accounts: 0, pairs: 0, addresses: 0 });
  });

  it('admits concurrent attempts on one account from many addresses up to its account-wide free failures plus one', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    succeed(t, 's1001', '10.9.9.9');
    const running = [];
    for (let i = 0; i < 30; i++) {
      try {
        running.push(t.begin('s1001', `203.0.113.${i}`));
      } catch {
        // refused: counted below
      }
    }
    expect(running).toHaveLength(9);
    expect(retryAfter(t, 's1001', '10.9.9.9')).toBe(0); // the known address is let through meanwhile
    for (const a of running) a.failed({ accountExists: true });
    expect(t.inFlight).toEqual({ accounts: 0, pairs: 0, addresses: 0 });
  });

  it('admits concurrent attempts from one address up to its free failures plus one, across accounts', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    const running = [];
    for (let i = 0; i < 30; i++) {
      try {
        running.push(t.begin(`victim${i}`, '192.0.2.9'));
      } catch {
        // refused: counted below
      }
    }
    expect(running).toHaveLength(11);
    expect(retryAfter(t, 'someone-else', '192.0.2.10')).toBe(0); // another address is untouched
  });

  it('gives the reservation back on success or abandonment, and settles each attempt once', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    const held = [t.begin('s1', '10.0.0.1'), t.begin('s1', '10.0.0.1'), t.begin('s1', '10.0.0.1'), t.begin('s1', '10.0.0.1')];
    expect(retryAfter(t, 's1', '10.0.0.1')).toBe(1000); // four in flight: a fifth would be past the free ones
    held[0]!.abandoned();
    held[0]!.failed({ accountExists: true }); // already settled: not counted
    held[1]!.succeeded();
    expect(retryAfter(t, 's1', '10.0.0.1')).toBe(0);
    held[2]!.failed({ accountExists: true });
    held[3]!.failed({ accountExists: true });
    expect(t.tracked).toMatchObject({ pairs: 1, accounts: 1 });
    expect(t.inFlight).toEqual({ accounts: 0, pairs: 0, addresses: 0 });
    expect(retryAfter(t, 's1', '10.0.0.1')).toBe(0); // two failures, three free
  });

  it('keys IPv4-mapped addresses as IPv4 and IPv6 by /64', () => {
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('local')).toBe('local');
  });
});
