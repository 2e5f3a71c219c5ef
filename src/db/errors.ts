// The one place where database failures become wire errors. A constraint or contention that
// refuses a write is CONFLICT, as a DbConflict that says which one (callers that answer the cases
// differently look at its reason, never at a SQLSTATE); what a clash means for the user — a double
// booking, or only a branch's cleaning buffer in the way — is core's to say (core/bufferClash.ts).
// A database that cannot be reached is UNAVAILABLE (safe to retry); anything else is left for the
// dispatcher to log and turn into INTERNAL, so SQL text never reaches a peer. A row written for a
// user the users table no longer holds (23503 on a user_id foreign key) means the caller's token
// outlived its account: UNAUTHENTICATED, as every other method answers such a token
// (docs/rules.md). Deadlocks and serialisation failures are retried before they get here (Db).
import { CarrelError, ErrorCode } from '../errors.js';

interface PgError extends Error {
  code?: string;
  detail?: string;
  constraint?: string;
}

const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']);

/** A deadlock (40P01) or a serialisation failure (40001): PostgreSQL undid the work; running it again may pass. */
export function isRetryable(err: unknown): boolean {
  const code = (err as PgError | undefined)?.code;
  return code === '40P01' || code === '40001';
}

export function isUnavailable(err: unknown): boolean {
  const e = err as PgError | undefined;
  if (!e) return false;
  const code = e.code ?? '';
  if (CONNECTION_ERRNOS.has(code)) return true;
  // 08: connection exception; 57P01-03: admin shutdown, crash shutdown, cannot connect now; 53300: too many connections.
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
  const msg = e.message ?? '';
  return (
    msg.includes('Connection terminated') ||
    msg.includes('timeout exceeded when trying to connect') ||
    msg.includes('Client has encountered a connection error') ||
    msg.includes('connect ECONNREFUSED')
  );
}

/**
 * The answer for a token whose account is gone (deleted, or never in this database): the
 * token is still signed, but it names nobody, so the caller must log in again.
 */
export function accountGone(): CarrelError {
  return new CarrelError(ErrorCode.UNAUTHENTICATED, 'the account no longer exists; log in again');
}

/** Foreign keys naming the acting user: reservations_user_id_fkey, waitlist_user_id_fkey. */
const USER_FOREIGN_KEY = /_user_id_fkey$/;

/** A range the database named, as ISO instants: [start, end). */
export interface Clash {
  start: string;
  end: string;
}

/**
 * Why a write was refused as CONFLICT:
 * - overlap: the exclusion constraint on reservations (23P01); `clash` is the other booking's
 *   hold (its time and its cleaning buffer), when PostgreSQL's detail named it;
 * - duplicate: a unique constraint (23505);
 * - contention: a deadlock or serialisation failure that the retries did not clear.
 */
export type ConflictReason = 'overlap' | 'duplicate' | 'contention';

export class DbConflict extends CarrelError {
  constructor(
    readonly reason: ConflictReason,
    message: string,
    readonly clash?: Clash,
  ) {
    super(ErrorCode.CONFLICT, message, clash ? { conflict: clash } : undefined);
  }
}

/** Maps a database error to a CarrelError where the mapping is known; otherwise returns it. */
export function mapDbError(err: unknown): unknown {
  if (err instanceof CarrelError) return err;
  const e = err as PgError;
  switch (e?.code) {
    case '23P01':
      return overlapConflict(e.detail);
    case '40P01':
    case '40001':
      return new DbConflict('contention', 'a concurrent change won; try again');
    case '23505':
      return new DbConflict('duplicate', 'that already exists');
    // A row for a user the users table no longer holds. Any other foreign key is carrel's own
    // reference (a seat, a waitlist entry): its failure is ours, left to become INTERNAL.
    case '23503':
      if (USER_FOREIGN_KEY.test(e.constraint ?? '')) return accountGone();
      break;
    case '57014':
      return new CarrelError(ErrorCode.DEADLINE_EXCEEDED, 'the database did not answer in time');
    // lock_timeout, which carrel sets only to a request's remaining time (db/deadline.ts): the
    // statement waited for a lock until the deadline and was rolled back.
    case '55P03':
      return new CarrelError(ErrorCode.DEADLINE_EXCEEDED, "the request's deadline passed while it waited for a lock; nothing was changed");
    case '22007':
    case '22008':
      return new CarrelError(ErrorCode.INVALID_ARGUMENT, 'a time value is out of range');
    // Caller text PostgreSQL cannot store (a NUL character): the caller's input, not our fault.
    case '22021':
    case '22P05':
      return new CarrelError(ErrorCode.INVALID_ARGUMENT, 'a text value contains a character that cannot be stored (such as NUL)');
  }
  if (isUnavailable(err)) return new CarrelError(ErrorCode.UNAVAILABLE, 'the database is unavailable; retry shortly');
  return err;
}

/**
 * The exclusion constraint's refusal as a statement that caught it reports it (carrel_book_batch
 * returns PostgreSQL's detail with its 'clash' outcome): the same DbConflict mapDbError makes of 23P01.
 */
export function overlapConflict(detail: string | undefined): DbConflict {
  return new DbConflict('overlap', 'the seat is already booked for part of that time', clashOf(detail));
}

/**
 * Parses `... conflicts with existing key (seat_id, hold)=(12, ["2026-01-01 10:00:00+00","2026-01-01 11:00:00+00"))`.
 * The clashing interval is the other booking's hold, which is public availability data.
 */
function clashOf(detail: string | undefined): Clash | undefined {
  if (!detail) return undefined;
  const m = /conflicts with existing key \([^)]*\)=\(\d+, \["?([^",]+)"?,"?([^")\]]+)"?\)\)/.exec(detail);
  if (!m) return undefined;
  // PostgreSQL prints whole-hour offsets as "+00" / "-05", which Date does not parse.
  const iso = (text: string): Date => new Date(text.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00'));
  const start = iso(m[1]!);
  const end = iso(m[2]!);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) return undefined;
  return { start: start.toISOString(), end: end.toISOString() };
}
