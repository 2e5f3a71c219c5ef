// JWT issue/verify (DESIGN §2): HS256 only, expiry from config. Verification pins the
// algorithm so `alg: none` and RS/HS confusion tokens are refused.
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

export class TokenService {
  constructor(private readonly opts: { secret: string; ttlSec: number; now?: () => number }) {}

  issue(user: AuthUser): IssuedToken {
    const nowSec = Math.floor((this.opts.now?.() ?? Date.now()) / 1000);
    const exp = nowSec + this.opts.ttlSec;
    const token = jwt.sign(
      { sid: user.studentId, name: user.name, role: user.role, iat: nowSec, exp },
      this.opts.secret,
      { algorithm: 'HS256', subject: String(user.id), noTimestamp: true },
    );
    return { token, expiresAt: new Date(exp * 1000).toISOString() };
  }

  verify(token: string): AuthUser & { expMs: number } {
    let payload: jwt.JwtPayload;
    try {
      const decoded = jwt.verify(token, this.opts.secret, {
        algorithms: ['HS256'],
        clockTimestamp: Math.floor((this.opts.now?.() ?? Date.now()) / 1000),
      });
      if (typeof decoded === 'string') throw new Error('string payload');
      payload = decoded;
    } catch (err) {
      const expired = err instanceof jwt.TokenExpiredError;
      throw new CarrelError(ErrorCode.UNAUTHENTICATED, expired ? 'token has expired' : 'token is invalid');
    }
    const id = Number(payload.sub);
    const role = payload.role;
    if (!Number.isSafeInteger(id) || (role !== 'student' && role !== 'admin') || typeof payload.sid !== 'string') {
      throw new CarrelError(ErrorCode.UNAUTHENTICATED, 'token is invalid');
    }
    return {
      id,
      studentId: payload.sid,
      name: typeof payload.name === 'string' ? payload.name : '',
      role,
      expMs: (payload.exp ?? 0) * 1000,
    };
  }
}
