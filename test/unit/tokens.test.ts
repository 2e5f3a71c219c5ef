// Tokens: HS256 only, expiry honoured, and the verified-token cache never changes an answer —
// an expired token is refused even when it was verified before, and a token that differs in
// one byte is verified afresh (and refused).
import { describe, expect, it } from 'vitest';
import jwt from 'jsonwebtoken';
import { TokenService } from '../../src/auth/tokens.js';
import { CarrelError } from '../../src/errors.js';

const user = { id: 7, studentId: 's7', name: 'Seven', role: 'student' as const };

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof CarrelError ? err.code : 'OTHER';
  }
}

describe('TokenService', () => {
  it('verifies its own tokens, again and again, to the same user', () => {
    const t = new TokenService({ secret: 'sekret', ttlSec: 60 });
    const { token } = t.issue(user);
    const first = t.verify(token);
    expect(first).toMatchObject(user);
    expect(t.verify(token)).toEqual(first);
  });

  it('refuses a cached token once it has expired, by the injected clock', () => {
    let now = Date.parse('2026-12-01T10:00:00Z');
    const t = new TokenService({ secret: 'sekret', ttlSec: 60, now: () => now });
    const { token } = t.issue(user);
    expect(t.verify(token).id).toBe(7);
    now += 59_999;
    expect(t.verify(token).id).toBe(7);
    now += 1;
    expect(code(() => t.verify(token))).toBe('UNAUTHENTICATED');
    expect(code(() => t.verify(token))).toBe('UNAUTHENTICATED');
  });

  it('does not let a tampered copy of a cached token through', () => {
    const t = new TokenService({ secret: 'sekret', ttlSec: 60 });
    const { token } = t.issue(user);
    t.verify(token);
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, role: 'admin' })).toString('base64url')}.${s}`;
    expect(code(() => t.verify(forged))).toBe('UNAUTHENTICATED');
    expect(code(() => t.verify(`${token}x`))).toBe('UNAUTHENTICATED');
  });

  it('refuses other secrets and other algorithms', () => {
    const t = new TokenService({ secret: 'sekret', ttlSec: 60 });
    const claims = { sub: '7', sid: 's7', name: 'x', role: 'admin', exp: Math.floor(Date.now() / 1000) + 60 };
    expect(code(() => t.verify(jwt.sign(claims, 'other', { algorithm: 'HS256' })))).toBe('UNAUTHENTICATED');
    expect(code(() => t.verify(jwt.sign(claims, 'sekret', { algorithm: 'HS512' })))).toBe('UNAUTHENTICATED');
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    expect(code(() => t.verify(none))).toBe('UNAUTHENTICATED');
    // Signed with the secret but never expiring: not a token carrel issues.
    const { exp: _exp, ...forever } = claims;
    expect(code(() => t.verify(jwt.sign({ ...forever, role: 'student' }, 'sekret', { algorithm: 'HS256' })))).toBe('UNAUTHENTICATED');
  });

  it('keeps at most 10,000 verified tokens', () => {
    const t = new TokenService({ secret: 'sekret', ttlSec: 600 });
    const tokens = Array.from({ length: 10_050 }, (_, i) => t.issue({ ...user, id: i + 1 }).token);
    for (const tok of tokens) t.verify(tok);
    const cache = (t as unknown as { verified: Map<string, unknown> }).verified;
    expect(cache.size).toBe(10_000);
    expect(cache.has(tokens[0]!)).toBe(false);
    expect(t.verify(tokens[0]!).id).toBe(1);
  });
});
