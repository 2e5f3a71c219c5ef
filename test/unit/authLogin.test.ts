// auth.login's handler on its own: a login whose deadline has passed by the time the password
// check returns neither adopts nor returns a token, whatever the check said — even when the
// session has not yet answered DEADLINE_EXCEEDED itself.
import type { StrikeService } from '../../src/core/strikes.js';
import { describe, expect, it, vi } from 'vitest';
import { authMethods } from '../../src/rpc/methods/auth.js';
import { TokenService } from '../../src/auth/tokens.js';
import { LoginThrottle } from '../../src/auth/loginThrottle.js';
import type { AccountService, PasswordCheck } from '../../src/core/accounts.js';
import type { MethodContext } from '../../src/rpc/registry.js';
import { CarrelError, ErrorCode } from '../../src/errors.js';
import { silentLogger } from '../../src/obs/log.js';
import { codeOf } from '../support/codeOf.js';

const user = { id: 7, studentId: 's7', name: 'Seven', role: 'student' as const };

function setUp(check: () => Promise<PasswordCheck>) {
  const accounts = { checkPassword: vi.fn(check) } as unknown as AccountService;
  const tokens = new TokenService({ secret: 'unit-test-secret-0123456789', ttlSec: 60 });
  const throttle = new LoginThrottle({
    accountFromAddress: { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 60_000 },
    account: { freeFailures: 20, baseDelayMs: 1000, maxDelayMs: 60_000 },
    address: { freeFailures: 50, baseDelayMs: 1000, maxDelayMs: 60_000 },
    forgetAfterMs: 60_000,
    maxEntries: 100,
    knownAddressesPerAccount: 4,
    knownAddressForgetAfterMs: 60_000,
  });
  const strikes = {} as unknown as StrikeService; // auth.login never reads strikes
  const login = authMethods({ accounts, tokens, throttle, strikes }).find((m) => m.name === 'auth.login')!;
  const adoptToken = vi.fn((token: string) => tokens.verify(token));
  const call = (deadlineMs: number) => {
    const ctx: MethodContext = { user: null, remoteAddress: '10.0.0.1', deadlineMs, adoptToken, holdReading: () => undefined, log: silentLogger };
    return Promise.resolve(login.handler({ studentId: 's7', password: 'whatever-it-is' }, ctx));
  };
  return { call, adoptToken, throttle };
}

describe('auth.login and the request deadline', () => {
  it('adopts the token when the check returns in time', async () => {
    const { call, adoptToken } = setUp(async () => ({ ok: true, user }));
    expect(await call(Date.now() + 60_000)).toMatchObject({ user, token: expect.any(String) });
    expect(adoptToken).toHaveBeenCalledTimes(1);
  });

  it('a right password checked after the deadline: DEADLINE_EXCEEDED, no token adopted or returned', async () => {
    const { call, adoptToken, throttle } = setUp(async () => ({ ok: true, user }));
    expect(await codeOf(call(Date.now() - 1))).toBe('DEADLINE_EXCEEDED');
    expect(adoptToken).not.toHaveBeenCalled();
    expect(throttle.inFlight).toEqual({ accounts: 0, pairs: 0, addresses: 0 });
  });

  it('a wrong password checked after the deadline answers the same, and counts as a failure', async () => {
    const { call, throttle } = setUp(async () => ({ ok: false, accountExists: true }));
    expect(await codeOf(call(Date.now() - 1))).toBe('DEADLINE_EXCEEDED');
    expect(throttle.tracked).toEqual({ accounts: 1, pairs: 1, addresses: 1, knownAccounts: 0 });
  });
});

describe('auth.login and the login throttle', () => {
  it('a wrong password answers UNAUTHENTICATED and counts against the account; an unknown id only against the address and pair', async () => {
    const wrong = setUp(async () => ({ ok: false, accountExists: true }));
    expect(await codeOf(wrong.call(Date.now() + 60_000))).toBe('UNAUTHENTICATED');
    expect(wrong.throttle.tracked).toEqual({ accounts: 1, pairs: 1, addresses: 1, knownAccounts: 0 });
    const unknown = setUp(async () => ({ ok: false, accountExists: false }));
    expect(await codeOf(unknown.call(Date.now() + 60_000))).toBe('UNAUTHENTICATED');
    expect(unknown.throttle.tracked).toEqual({ accounts: 0, pairs: 1, addresses: 1, knownAccounts: 0 });
  });

  it('a check that could not run (database down) is not counted as a failure', async () => {
    const { call, throttle } = setUp(async () => {
      throw new CarrelError(ErrorCode.UNAVAILABLE, 'database unavailable');
    });
    expect(await codeOf(call(Date.now() + 60_000))).toBe('UNAVAILABLE');
    expect(throttle.tracked).toEqual({ accounts: 0, pairs: 0, addresses: 0, knownAccounts: 0 });
    expect(throttle.inFlight).toEqual({ accounts: 0, pairs: 0, addresses: 0 });
  });
});
