// Accounts (DESIGN §2 auth.*): registration and password checks. Passwords are bcrypt hashes,
// computed on the password hasher's worker threads so a hash never blocks the event loop
// (src/auth/passwordHasher.ts). A wrong password and an unknown student id fail alike and after
// the same work — the unknown one is compared against a dummy hash of the same cost, through
// the same queue — so neither the answer nor its timing tells whether an account exists.
import { randomInt } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type pg from 'pg';
import { CarrelError, ErrorCode } from '../errors.js';
import type { AuthUser, Role } from '../auth/tokens.js';
import type { JobOptions, PasswordHasher } from '../auth/passwordHasher.js';
import { query } from '../db/pool.js';

export interface AccountServiceOptions {
  db: pg.Pool;
  bcryptCost: number;
  hasher: PasswordHasher;
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

interface UserRow {
  id: number;
  student_id: string;
  name: string;
  role: Role;
  password_hash: string;
}

export const WRONG_CREDENTIALS = 'wrong student id or password';

export function userToWire(row: { id: number; student_id: string; name: string; role: Role }): AuthUser {
  return { id: row.id, studentId: row.student_id, name: row.name, role: row.role };
}

export class AccountService {
  /**
   * What an unknown student id's password is compared with: a well-formed hash of the configured
   * cost (a real salt, a random digest), so the compare does all the work of a real one. Made
   * without hashing anything, so there is no first-login job that only unknown ids pay for.
   */
  private readonly dummyHash: string;

  constructor(private readonly opts: AccountServiceOptions) {
    let digest = '';
    for (let i = 0; i < 31; i++) digest += BCRYPT_ALPHABET[randomInt(BCRYPT_ALPHABET.length)];
    this.dummyHash = bcrypt.genSaltSync(opts.bcryptCost) + digest;
  }

  /** RESOURCE_EXHAUSTED (with retryAfterMs) when the hash queue is full. */
  async register(input: { studentId: string; name: string; password: string }, job: JobOptions = {}): Promise<AuthUser> {
    const hash = await this.opts.hasher.hash(input.password, this.opts.bcryptCost, job);
    const res = await query<UserRow>(
      this.opts.db,
      `INSERT INTO users (student_id, name, password_hash) VALUES ($1, $2, $3)
       ON CONFLICT (student_id) DO NOTHING
       RETURNING id, student_id, name, role, password_hash`,
      [input.studentId, input.name, hash],
    );
    const row = res.rows[0];
    if (!row) throw new CarrelError(ErrorCode.CONFLICT, `student id ${input.studentId} is already registered`);
    return userToWire(row);
  }

  /**
   * The user when the password matches; UNAUTHENTICATED (same message, same work) otherwise.
   * RESOURCE_EXHAUSTED when the hash queue is full — its place is taken before the lookup, so a
   * flood of logins past the bound costs no database work — and DEADLINE_EXCEEDED when job.deadlineMs passed while
   * the compare waited for a worker.
   */
  async verifyPassword(studentId: string, password: string, job: JobOptions = {}): Promise<AuthUser> {
    const ticket = this.opts.hasher.reserve();
    let row: UserRow | undefined;
    let ok: boolean;
    try {
      const res = await query<UserRow>(
        this.opts.db,
        'SELECT id, student_id, name, role, password_hash FROM users WHERE student_id = $1',
        [studentId],
      );
      row = res.rows[0];
      ok = await ticket.compare(password, row?.password_hash ?? this.dummyHash, job);
    } finally {
      ticket.release();
    }
    if (!row || !ok) throw new CarrelError(ErrorCode.UNAUTHENTICATED, WRONG_CREDENTIALS);
    return userToWire(row);
  }

  async getUser(id: number): Promise<AuthUser | null> {
    const res = await query<UserRow>(this.opts.db, 'SELECT id, student_id, name, role FROM users WHERE id = $1', [id]);
    return res.rows[0] ? userToWire(res.rows[0]) : null;
  }
}
