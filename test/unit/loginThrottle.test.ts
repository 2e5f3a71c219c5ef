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

function retryAfter(fn: () => void): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof CarrelError && err.code === 'RESOURCE_EXHAUSTED') return err.details!.retryAfterMs as number;
    throw err;
  }
  return 0;
}

describe('login throttle', () => {
  it('lets the free failures through, then locks the account for doubling delays up to the cap', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const wait = retryAfter(() => t.check('s1001', '10.0.0.1'));
      waits.push(wait);
      clock.advance(wait);
      t.check('s1001', '10.0.0.1');
      t.recordFailure('s1001', '10.0.0.1');
    }
    expect(waits).toEqual([0, 0, 0, 0, 1000, 2000, 4000, 8000]);
    expect(retryAfter(() => t.check('s1001', '10.0.0.2'))).toBe(8000); // the account, from anywhere
    expect(retryAfter(() => t.check('S1001 ', '10.0.0.1'))).toBe(8000); // same account, other spelling
    expect(retryAfter(() => t.check('s1002', '10.0.0.1'))).toBe(0); // the address is under its limit
    expect(t.throttled).toBe(6); // four in the loop, two above
  });

  it('a success clears the account but not the address', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    for (let i = 0; i < 10; i++) t.recordFailure(`victim${i}`, '192.0.2.9');
    t.recordFailure('mine', '192.0.2.9');
    t.recordSuccess('mine', '192.0.2.9');
    expect(retryAfter(() => t.check('mine', '192.0.2.7'))).toBe(0);
    expect(retryAfter(() => t.check('anyone', '192.0.2.9'))).toBe(1000);
    expect(t.tracked).toEqual({ accounts: 10, addresses: 1 });
  });

  it('forgets failures after forgetAfterMs', () => {
    const clock = new FakeClock();
    const t = throttle(clock);
    for (let i = 0; i < 4; i++) t.recordFailure('s1', '10.0.0.1');
    expect(retryAfter(() => t.check('s1', '10.0.0.1'))).toBe(1000);
    clock.advance(15 * 60_000 + 1);
    expect(retryAfter(() => t.check('s1', '10.0.0.1'))).toBe(0);
    expect(t.tracked.accounts).toBe(0);
    t.recordFailure('s1', '10.0.0.1'); // counting starts again from one
    expect(retryAfter(() => t.check('s1', '10.0.0.1'))).toBe(0);
  });

  it('keeps memory bounded under a spray of random accounts and addresses', () => {
    const clock = new FakeClock();
    const t = throttle(clock, 500);
    for (let i = 0; i < 50_000; i++) t.recordFailure(`random-${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(t.tracked).toEqual({ accounts: 500, addresses: 500 });
  });

  it('keys IPv4-mapped addresses as IPv4 and IPv6 by /64', () => {
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('local')).toBe('local');
  });
});
