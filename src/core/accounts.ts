// Accounts (DESIGN §2 auth.*): registration and password checks. Passwords are bcrypt hashes
// (bcryptjs, async so a hash never blocks the event loop). A wrong password and an unknown
// student id fail alike and after the same work — the unknown one is compared against a
// dummy hash of the same cost — so neither the answer nor its timing tells whether an account
// exists.
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type pg from 'pg';
import { CarrelError, ErrorCode } from '../errors.js';
import type { AuthUser, Role } from '../auth/tokens.js';
import { query } from '../db/pool.js';

export interface AccountServiceOptions {
  db: pg.Pool;
  bcryptCost: number;
}

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
  private dummyHash: Promise<string> | undefined;

  constructor(private readonly opts: AccountServiceOptions) {}

  async register(input: { studentId: string; name: string; password: string }): Promise<AuthUser> {
    const hash = await bcrypt.hash(input.password, this.opts.bcryptCost);
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

  /** The user when the password matches; UNAUTHENTICATED (same message, same work) otherwise. */
  async verifyPassword(studentId: string, password: string): Promise<AuthUser> {
    const res = await query<UserRow>(
      this.opts.db,
      'SELECT id, student_id, name, role, password_hash FROM users WHERE student_id = $1',
      [studentId],
    );
    const row = res.rows[0];
    const hash = row?.password_hash ?? (await this.dummy());
    const ok = await bcrypt.compare(password, hash);
    if (!row || !ok) throw new CarrelError(ErrorCode.UNAUTHENTICATED, WRONG_CREDENTIALS);
    return userToWire(row);
  }

  async getUser(id: number): Promise<AuthUser | null> {
    const res = await query<UserRow>(this.opts.db, 'SELECT id, student_id, name, role FROM users WHERE id = $1', [id]);
    return res.rows[0] ? userToWire(res.rows[0]) : null;
  }

  private dummy(): Promise<string> {
    this.dummyHash ??= bcrypt.hash(randomBytes(18).toString('base64'), this.opts.bcryptCost);
    return this.dummyHash;
  }
}
