import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RateLimiter, clientAddress, type RateLimitRule } from '../../src/rpc/rateLimit.js';
import { defineMethod, type MethodDef } from '../../src/rpc/registry.js';
import { CarrelError } from '../../src/errors.js';
import { configSchema } from '../../src/config/schema.js';

const method = (name: string, access: 'public' | 'user' | 'admin' = 'user'): MethodDef =>
  defineMethod({ name, access, args: z.unknown(), summary: 't', handler: () => null }) as MethodDef;
const alice = { id: 1, studentId: 's1', name: 'A', role: 'student' as const };
const bob = { id: 2, studentId: 's2', name: 'B', role: 'student' as const };

function refusal(fn: () => void): CarrelError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CarrelError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('rate limiter', () => {
  const rules: RateLimitRule[] = [
    { name: 'auth', per: 'connection', methods: ['auth.login'], ratePerSec: 2, burst: 3 },
    { name: 'writes', per: 'user', methods: ['reservations.*'], ratePerSec: 1, burst: 2 },
  ];

  it('allows a burst, then refuses with RESOURCE_EXHAUSTED and a retryAfterMs that is honest', () => {
    const rl = new RateLimiter({ rules, maxTrackedKeys: 10 });
    const login = method('auth.login', 'public');
    const conn = {};
    for (let i = 0; i < 3; i++) rl.admit(login, null, conn, 1000);
    const err = refusal(() => rl.admit(login, null, conn, 1000));
    expect(err.code).toBe('RESOURCE_EXHAUSTED');
    expect(err.details).toEqual({ retryAfterMs: 500, limit: 'auth', per: 'connection' });
    // Just before the promised time: still refused; at it: admitted.
    expect(() => rl.admit(login, null, conn, 1499)).toThrow(CarrelError);
    rl.admit(login, null, conn, 1500);
    expect(rl.limited.get('auth')).toBe(2);
  });

  it('keeps separate buckets per connection and per user', () => {
    const rl = new RateLimiter({ rules, maxTrackedKeys: 10 });
    const login = method('auth.login', 'public');
    const [a, b] = [{}, {}];
    for (let i = 0; i < 3; i++) rl.admit(login, null, a, 0);
    rl.admit(login, null, b, 0);
    const create = method('reservations.create');
    rl.admit(create, alice, a, 0);
    rl.admit(create, alice, b, 0); // same user, another connection: same bucket
    expect(() => rl.admit(create, alice, a, 0)).toThrow(/writes/);
    rl.admit(create, bob, a, 0);
  });

  it('never limits methods no rule names: PING passes at any rate, with or without a token', () => {
    const rl = new RateLimiter({ rules: configSchema.parse({}).rateLimit.rules, maxTrackedKeys: 10 });
    const ping = method('PING', 'public');
    const conn = { remoteAddress: '10.0.0.1' };
    for (let i = 0; i < 200_000; i++) {
      rl.admit(ping, null, conn, 0);
    }
    expect(rl.limited.size).toBe(0);
  });

  it('the shipped anonymous-read limits hold a connection, and the address whatever its connections; a logged-in user is not counted there', () => {
    const rl = new RateLimiter({ rules: configSchema.parse({}).rateLimit.rules, maxTrackedKeys: 100 });
    const seats = method('seats.list', 'public');
    const one = { remoteAddress: '10.0.0.1' };
    let admitted = 0;
    for (let i = 0; i < 1000; i++) {
      try {
        rl.admit(seats, null, one, 0);
        admitted++;
      } catch (err) {
        expect((err as CarrelError).details).toMatchObject({ limit: 'anonymousReads' });
      }
    }
    expect(admitted).toBe(40); // the connection's burst
    // 100 more connections from the same address: together no more than the address's burst.
    admitted = 0;
    for (let c = 0; c < 100; c++) {
      const conn = { remoteAddress: '10.0.0.1' };
      for (let i = 0; i < 10; i++) {
        try {
          rl.admit(seats, null, conn, 0);
          admitted++;
        } catch {
          // refused
        }
      }
    }
    expect(admitted).toBe(200 - 40);
    // Another address is its own client; a token takes the request out of the anonymous rules.
    rl.admit(seats, null, { remoteAddress: '10.0.0.2' }, 0);
    for (let i = 0; i < 1000; i++) rl.admit(seats, alice, one, 0);
  });

  it('counts IPv6 clients by their /64 and IPv4-mapped addresses as IPv4', () => {
    expect(clientAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientAddress('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientAddress('2001:0db8:0001:0002:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(clientAddress('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientAddress('::1')).toBe('0:0:0:0::/64');
    expect(clientAddress(undefined)).toBe('local');
    const rl = new RateLimiter({ rules: [{ name: 'reg', per: 'address', methods: ['auth.register'], ratePerSec: 1, burst: 2 }], maxTrackedKeys: 10 });
    const reg = method('auth.register', 'public');
    rl.admit(reg, null, { remoteAddress: '2001:db8:1:2::10' }, 0);
    rl.admit(reg, null, { remoteAddress: '2001:db8:1:2:ffff::99' }, 0);
    expect(() => rl.admit(reg, null, { remoteAddress: '2001:db8:1:2:1234::5' }, 0)).toThrow(/"reg"/);
    rl.admit(reg, null, { remoteAddress: '2001:db8:1:3::10' }, 0);
  });

  it('`*` covers every method, and a refused request takes no token', () => {
    const rl = new RateLimiter({
      rules: [
        { name: 'all', per: 'user', methods: ['*'], ratePerSec: 1, burst: 2 },
        { name: 'writes', per: 'user', methods: ['reservations.create'], ratePerSec: 1, burst: 1 },
      ],
      maxTrackedKeys: 10,
    });
    const create = method('reservations.create');
    const mine = method('reservations.mine');
    rl.admit(create, alice, {}, 0); // all: 1 left, writes: 0 left
    expect(() => rl.admit(create, alice, {}, 0)).toThrow(/writes/);
    rl.admit(mine, alice, {}, 0); // "all" still had its token: the refusal took none
    expect(() => rl.admit(mine, alice, {}, 0)).toThrow(/"all"/);
    expect(() => rl.admit(method('server.info', 'public'), alice, {}, 0)).toThrow(/"all"/);
  });

  it('tracks at most maxTrackedKeys users or addresses per rule', () => {
    const rl = new RateLimiter({ rules, maxTrackedKeys: 100 });
    const create = method('reservations.create');
    for (let id = 0; id < 10_000; id++) rl.admit(create, { ...alice, id }, {}, 0);
    expect(rl.trackedKeys()).toEqual([{ rule: 'writes', keys: 100 }]);
  });

  it('the shipped defaults admit the load generator: 5,000 bookings/s over 50 users for 10 s', () => {
    const rl = new RateLimiter({ rules: configSchema.parse({}).rateLimit.rules, maxTrackedKeys: 50_000 });
    const create = method('reservations.create');
    const conns = Array.from({ length: 50 }, () => ({}));
    for (let i = 0; i < 50_000; i++) {
      const nowMs = Math.floor(i / 5); // 5 per ms
      rl.admit(create, { ...alice, id: i % 50 }, conns[i % 50]!, nowMs);
    }
    expect(rl.limited.size).toBe(0);
  });
});
