// JWT issue/verify (docs/protocol.md, "Tokens and access"): HS256 only, expiry from config.
// Verification pins the algorithm so `alg: none` and RS/HS confusion tokens are refused.
//
// Verifying is on every authenticated request's path, so two costs are taken out of it: the
// secret is turned into a KeyObject once (handed a string, jsonwebtoken first tries to parse
// it as a PEM public key and builds an exception each time — a fifth of a booking's CPU in a
// profile), and a token already verified — or issued here — is remembered until it expires. The cache is keyed
// by the whole token text, so only a byte-identical, correctly signed token can hit it; its
// expiry is checked against the clock on every hit. Bounded: the oldest entries go first.
import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { CarrelError, ErrorCode } from '../errors.js';

export type Role = 'student' | 'admin';

export interface AuthUser {
  id: number;
  studentId: string;
  name: string;
  role: Role;
}

export interface IssuedToken {
  token: string;
  expiresAt: string;
}

const CACHE_MAX = 10_000;

type Verified = AuthUser & { expMs: number };

export class TokenService {
  private readonly key: KeyObject;
  private readonly verified = new Map<string, Verified>();

  constructor(private readonly opts: { secret: string; ttlSec: number; now?: () => number }) {
    this.key = createSecretKey(Buffer.from(opts.secret, 'utf8'));
  }

  issue(user: AuthUser): IssuedToken {
    const nowSec = Math.floor((this.opts.now?.() ?? Date.now()) / 1000);
    const exp = nowSec + this.opts.ttlSec;
    const token = jwt.sign(
      { sid: user.studentId, name: user.name, role: user.role, iat: nowSec, exp },
      this.key,
      { algorithm: 'HS256', subject: String(user.id), noTimestamp: true },
    );
    // Made here, so known good: the first request that carries it (logged in, then straight to
    // the opening rush) does not verify it again.
    this.remember(token, { id: user.id, studentId: user.studentId, name: user.name, role: user.role, expMs: exp * 1000 });
    return { token, expiresAt: new Date(exp * 1000).toISOString() };
  }

  verify(token: string): Verified {
    const nowMs = this.opts.now?.() ?? Date.now();
    const hit = this.verified.get(token);
    if (hit) {
      // jsonwebtoken's own rule: expired once the clock's whole second reaches exp.
      if (Math.floor(nowMs / 1000) * 1000 < hit.expMs) return hit;
      this.verified.delete(token);
      throw new CarrelError(ErrorCode.UNAUTHENTICATED, 'token has expired');
    }
    const user = this.verifyUncached(token, nowMs);
    this.remember(token, user);
    return user;
  }

  private remember(token: string, user: Verified): void {
    if (this.verified.size >= CACHE_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, user);
  }

  private verifyUncached(token: string, nowMs: number): Verified {
    let payload: jwt.JwtPayload;
    try {
      const decoded = jwt.verify(token, this.key, {
        algorithms: ['HS256'],
        clockTimestamp: Math.floor(nowMs / 1000),
      });
      if (typeof decoded === 'string') throw new Error('string payload');
      payload = decoded;
    } catch (err) {
      const expired = err instanceof jwt.TokenExpiredError;
      throw new CarrelError(ErrorCode.UNAUTHENTICATED, expired ? 'token has expired' : 'token is invalid');
    }
    const id = Number(payload.sub);
    const role = payload.role;
    // Every token carrel issues expires; one without exp was not made here (and would never expire).
    if (!Number.isSafeInteger(id) || (role !== 'student' && role !== 'admin') || typeof payload.sid !== 'string' || typeof payload.exp !== 'number') {
      throw new CarrelError(ErrorCode.UNAUTHENTICATED, 'token is invalid');
    }
    return {
      id,
      studentId: payload.sid,
      name: typeof payload.name === 'string' ? payload.name : '',
      role,
      expMs: payload.exp * 1000,
    };
  }
}
