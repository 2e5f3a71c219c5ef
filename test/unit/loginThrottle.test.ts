import { describe, expect, it } from 'vitest';
import { LoginThrottle, addressKey } from '../../src/auth/loginThrottle.js';
import { CarrelError } from '../../src/errors.js';
import { FakeClock } from '../../src/core/clock.js';

function throttle(clock: FakeClock, maxEntries = 1000) {
  return new LoginThrottle({
    account: { freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 8000 },
    address: { freeFailures: 10, baseDelayMs: 1000, maxDelayMs: 60_000 },
    forgetAfterMs: 15 * 60_000,
    maxEntries,
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

const fail = (t: LoginThrottle, studentId: string, address: string) => t.begin(studentId, address).failed();

describe('login throttle', () => {
  it('lets the free failures through, then locks the account for doubling delays up to the cap', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const wait = retryAfter(t, 's1001', '10.0.0.1');
      waits.push(wait);
      clock.advance(wait);
      fail(t, 's1001', '10.0.0.1');
    }
    expect(waits).toEqual([0, 0, 0, 0, 1000, 2000, 4000, 8000]);
    expect(retryAfter(t, 's1001', '10.0.0.2')).toBe(8000); // the account, from anywhere
    expect(retryAfter(t, 'S1001 ', '10.0.0.1')).toBe(8000); // same account, other spelling
    expect(retryAfter(t, 's1002', '10.0.0.1')).toBe(0); // the address is under its limit
    expect(t.throttled).toBe(6); // four in the loop, two above
  });

  it('a success clears the account but not the address', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    for (let i = 0; i < 10; i++) fail(t, `victim${i}`, '192.0.2.9');
    fail(t, 'mine', '192.0.2.9'); // the address's eleventh failure locks it for 1 s
    expect(retryAfter(t, 'anyone', '192.0.2.9')).toBe(1000);
    clock.advance(1000);
    t.begin('mine', '192.0.2.9').succeeded();
    expect(retryAfter(t, 'mine', '192.0.2.7')).toBe(0);
    fail(t, 'anyone', '192.0.2.9'); // the twelfth: the success did not reset the address
    expect(retryAfter(t, 'anyone-else', '192.0.2.9')).toBe(2000);
    expect(t.tracked).toEqual({ accounts: 11, addresses: 1 }); // the victims and anyone; mine was cleared
  });

  it('forgets failures after forgetAfterMs', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    for (let i = 0; i < 4; i++) fail(t, 's1', '10.0.0.1');
    expect(retryAfter(t, 's1', '10.0.0.1')).toBe(1000);
    clock.advance(15 * 60_000 + 1);
    expect(retryAfter(t, 's1', '10.0.0.1')).toBe(0);
    expect(t.tracked.accounts).toBe(0);
    fail(t, 's1', '10.0.0.1'); // counting starts again from one
    expect(retryAfter(t, 's1', '10.0.0.1')).toBe(0);
  });

  it('keeps memory bounded under a spray of random accounts and addresses', () => {
    const clock = new FakeClock();
    const t = throttle(clock, 500);
    for (let i = 0; i < 50_000; i++) fail(t, `random-${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(t.tracked).toEqual({ accounts: 500, addresses: 500 });
    expect(t.inFlight).toEqual({ accounts: 0, addresses: 0 });
  });

  it('admits concurrent attempts on one account no more often than sequential ones: in-flight ones count as failures', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    // Sequentially 3 free failures + the one that starts the lock get through; so do 4 at once.
    const running = [];
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      try {
        running.push(t.begin('s1001', `10.0.0.${i}`));
      } catch (err) {
        expect((err as CarrelError).code).toBe('RESOURCE_EXHAUSTED');
        expect((err as CarrelError).details!.retryAfterMs).toBe(1000); // the lock they would start
        refused++;
      }
    }
    expect([running.length, refused]).toEqual([4, 16]);
    for (const a of running) a.failed();
    expect(retryAfter(t, 's1001', '10.0.0.99')).toBe(1000);
    expect(t.inFlight).toEqual({ accounts: 0, addresses: 0 });
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
    held[0]!.failed(); // already settled: not counted
    held[1]!.succeeded();
    expect(retryAfter(t, 's1', '10.0.0.1')).toBe(0);
    held[2]!.failed();
    held[3]!.failed();
    expect(t.tracked.accounts).toBe(1);
    expect(t.inFlight).toEqual({ accounts: 0, addresses: 0 });
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
