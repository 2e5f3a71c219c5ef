// Accounts (docs/accounts.md): registration and password checks. Passwords are bcrypt hashes,
// computed on the password hasher's worker threads so a hash never blocks the event loop
// (src/auth/passwordHasher.ts): logins in its login lane, registrations in theirs, so
// registrations cannot starve logins of workers.
//
// Student ids are stored and looked up in their canonical form only (src/auth/studentId.ts,
// docs/accounts.md): "VID1234", " vid1234" and "vid1234" are one account, and a registration
// whose canonical form is taken is a CONFLICT — answered before any hashing, so registering a
// taken id costs a lookup, not a bcrypt hash.
//
// A wrong password and an unknown student id fail alike and after the same work — the unknown
// one is compared against a dummy hash of the same cost, through the same lane — so neither
// the answer nor its timing tells whether an account exists. (auth.register's CONFLICT does
// tell, as any sign-up form must; per-address rate limits bound how fast.)
//
// Ids seen taken are remembered for a minute (at most TAKEN_IDS_MAX, the oldest dropped), so a
// flood of registrations of one taken id is answered from memory: no lookup, and no place in
// the registrations' lane that an honest new registration could have had.
import { randomInt } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { CarrelError, ErrorCode } from '../errors.js';
import type { AuthUser, Role } from '../auth/tokens.js';
import { canonicalStudentId, isCanonicalStudentId } from '../auth/studentId.js';
import type { JobOptions, PasswordHasher } from '../auth/passwordHasher.js';
import type { Db } from '../db/db.js';
import type { Deadline } from '../deadline.js';

export interface AccountServiceOptions {
  /**
   * register and checkPassword pass no deadline: their place in a hash lane is taken before the
   * lookup, and the lanes bound their database work (docs/fairness.md), so a per-address queue
   * at the database gate would only hold back a campus behind one NAT address.
   */
  db: Db;
  bcryptCost: number;
  hasher: PasswordHasher;
  /** Milliseconds since the epoch; how long a taken id is remembered is measured with it. */
  now: () => number;
}

const TAKEN_IDS_MAX = 10_000;
const TAKEN_ID_MEMORY_MS = 60_000;

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

interface UserRow {
  id: number;
  student_id: string;
  name: string;
  role: Role;
  password_hash: string;
}

export const WRONG_CREDENTIALS = 'wrong student id or password';

export type PasswordCheck = { ok: true; user: AuthUser } | { ok: false; accountExists: boolean };

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
  /** Canonical id → when it was last seen taken (oldest first). */
  private readonly taken = new Map<string, number>();

  constructor(private readonly opts: AccountServiceOptions) {
    let digest = '';
    for (let i = 0; i < 31; i++) digest += BCRYPT_ALPHABET[randomInt(BCRYPT_ALPHABET.length)];
    this.dummyHash = bcrypt.genSaltSync(opts.bcryptCost) + digest;
  }

  /**
   * Creates a student account under the canonical form of input.studentId. CONFLICT when that
   * form is taken — checked before hashing, so a taken id costs no bcrypt work; a race between
   * two new registrations of one id is still settled by the unique index. RESOURCE_EXHAUSTED
   * (with retryAfterMs) when the registration lane is full or too slow for job.deadlineMs; its
   * place is taken before the lookup, so a flood past the bound costs no database work either.
   */
  async register(input: { studentId: string; name: string; password: string }, job: JobOptions = {}): Promise<AuthUser> {
    const studentId = canonicalStudentId(input.studentId);
    if (!isCanonicalStudentId(studentId)) {
      throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'studentId: must be 1-64 letters, digits, . _ @ or -');
    }
    const taken = () => {
      this.rememberTaken(studentId);
      return new CarrelError(ErrorCode.CONFLICT, `student id ${studentId} is already registered`);
    };
    const seen = this.taken.get(studentId);
    if (seen !== undefined && this.opts.now() - seen < TAKEN_ID_MEMORY_MS) throw taken();
    const ticket = this.opts.hasher.reserve('register', job);
    let hash: string;
    try {
      const existing = await this.opts.db.query('SELECT 1 FROM users WHERE student_id = $1', [studentId]);
      if (existing.rowCount) throw taken();
      hash = await ticket.hash(input.password, this.opts.bcryptCost, job);
    } finally {
      ticket.release();
    }
    const res = await this.opts.db.query<UserRow>(
      `INSERT INTO users (student_id, name, password_hash) VALUES ($1, $2, $3)
       ON CONFLICT (student_id) DO NOTHING
       RETURNING id, student_id, name, role, password_hash`,
      [studentId, input.name, hash],
    );
    const row = res.rows[0];
    if (!row) throw taken();
    this.rememberTaken(studentId);
    return userToWire(row);
  }

  /**
   * Checks a password: { ok: true, user } when it matches the account of studentId's canonical
   * form, else { ok: false, accountExists } — the caller answers both failures alike, and only
   * the login throttle learns which it was. An id that cannot be canonical has no account and
   * is answered without a lookup or a compare (the form is public, so that reveals nothing).
   * RESOURCE_EXHAUSTED when the login lane is full — its place is taken before the lookup, so a
   * flood of logins past the bound costs no database work — and DEADLINE_EXCEEDED when
   * job.deadlineMs passed while the compare waited for a worker.
   */
  async checkPassword(rawStudentId: string, password: string, job: JobOptions = {}): Promise<PasswordCheck> {
    const studentId = canonicalStudentId(rawStudentId);
    if (!isCanonicalStudentId(studentId)) return { ok: false, accountExists: false };
    const ticket = this.opts.hasher.reserve('login');
    let row: UserRow | undefined;
    let ok: boolean;
    try {
      const res = await this.opts.db.query<UserRow>(
        'SELECT id, student_id, name, role, password_hash FROM users WHERE student_id = $1',
        [studentId],
      );
      row = res.rows[0];
      ok = await ticket.compare(password, row?.password_hash ?? this.dummyHash, job);
    } finally {
      ticket.release();
    }
    if (!row) return { ok: false, accountExists: false };
    return ok ? { ok: true, user: userToWire(row) } : { ok: false, accountExists: true };
  }

  private rememberTaken(studentId: string): void {
    this.taken.delete(studentId); // re-inserted below: most recent last
    if (this.taken.size >= TAKEN_IDS_MAX) this.taken.delete(this.taken.keys().next().value!);
    this.taken.set(studentId, this.opts.now());
  }

  /** The account, or null. With a request's deadline, it waits its client's turn for the database. */
  async getUser(id: number, deadline?: Deadline): Promise<AuthUser | null> {
    const res = await this.opts.db.query<UserRow>('SELECT id, student_id, name, role FROM users WHERE id = $1', [id], deadline);
    return res.rows[0] ? userToWire(res.rows[0]) : null;
  }
}
