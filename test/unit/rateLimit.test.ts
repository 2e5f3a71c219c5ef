import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RateLimiter, type RateLimitRule } from '../../src/rpc/rateLimit.js';
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
    const rl = new RateLimiter({ rules, maxTrackedUsers: 10 });
    const login = method('auth.login', 'public');
    const conn = {};
    for (let i = 0; i < 3; i++) rl.admit(login, null, conn, 1000);
    const err = refusal(() => rl.admit(login, null, conn, 1000));
    expect(err.code).toBe('RESOURCE_EXHAUSTED');
    expect(err.details).toEqual({ retryAfterMs: 500, limit: 'auth' });
    // Just before the promised time: still refused; at it: admitted.
    expect(() => rl.admit(login, null, conn, 1499)).toThrow(CarrelError);
    rl.admit(login, null, conn, 1500);
    expect(rl.limited.get('auth')).toBe(2);
  });

  it('keeps separate buckets per connection and per user', () => {
    const rl = new RateLimiter({ rules, maxTrackedUsers: 10 });
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

  it('never limits methods no rule names: PING and public reads pass at any rate', () => {
    const rl = new RateLimiter({ rules: configSchema.parse({}).rateLimit.rules, maxTrackedUsers: 10 });
    const ping = method('PING', 'public');
    const seats = method('seats.list', 'public');
    const conn = {};
    for (let i = 0; i < 200_000; i++) {
      rl.admit(ping, alice, conn, 0);
      rl.admit(seats, alice, conn, 0);
    }
    expect(rl.limited.size).toBe(0);
  });

  it('`*` covers every method that needs a token, and a refused request takes no token', () => {
    const rl = new RateLimiter({
      rules: [
        { name: 'all', per: 'user', methods: ['*'], ratePerSec: 1, burst: 2 },
        { name: 'writes', per: 'user', methods: ['reservations.create'], ratePerSec: 1, burst: 1 },
      ],
      maxTrackedUsers: 10,
    });
    const create = method('reservations.create');
    const mine = method('reservations.mine');
    rl.admit(create, alice, {}, 0); // all: 1 left, writes: 0 left
    expect(() => rl.admit(create, alice, {}, 0)).toThrow(/writes/);
    rl.admit(mine, alice, {}, 0); // "all" still had its token: the refusal took none
    expect(() => rl.admit(mine, alice, {}, 0)).toThrow(/"all"/);
    rl.admit(method('server.info', 'public'), alice, {}, 0);
  });

  it('tracks at most maxTrackedUsers users per rule', () => {
    const rl = new RateLimiter({ rules, maxTrackedUsers: 100 });
    const create = method('reservations.create');
    for (let id = 0; id < 10_000; id++) rl.admit(create, { ...alice, id }, {}, 0);
    expect(rl.trackedUsers()).toEqual([{ rule: 'writes', users: 100 }]);
  });

  it('the shipped defaults admit the load generator: 5,000 bookings/s over 50 users for 10 s', () => {
    const rl = new RateLimiter({ rules: configSchema.parse({}).rateLimit.rules, maxTrackedUsers: 50_000 });
    const create = method('reservations.create');
    const conns = Array.from({ length: 50 }, () => ({}));
    for (let i = 0; i < 50_000; i++) {
      const nowMs = Math.floor(i / 5); // 5 per ms
      rl.admit(create, { ...alice, id: i % 50 }, conns[i % 50]!, nowMs);
    }
    expect(rl.limited.size).toBe(0);
  });
});
