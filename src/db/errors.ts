// The one place where database failures become wire errors (STYLE §4). 23P01 is a booking
// conflict, with the clashing interval parsed from the detail — or, when the caller says which
// booking it tried and the clash is only with a cleaning buffer, the padding rule; deadlocks and serialisation
// failures are retried by withRetry and then reported as CONFLICT; a database that cannot be
// reached is UNAVAILABLE (safe to retry); anything else is left for the dispatcher to log and
// turn into INTERNAL, so SQL text never reaches a peer. A row written for a user the users
// table no longer holds (23503 on a user_id foreign key) means the caller's token outlived its
// account: UNAUTHENTICATED, as every other method answers such a token (docs/rules.md).
import { CarrelError, ErrorCode } from '../errors.js';

interface PgError extends Error {
  code?: string;
  detail?: string;
  constraint?: string;
}

const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']);

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

/**
 * What the caller was writing when the statement failed, so a clash can be explained: the
 * booking's own time [startMs, endMs) and the branch's cleaning buffer in minutes.
 */
export interface BookingAttempt {
  startMs: number;
  endMs: number;
  paddingMinutes: number;
}

/** Maps a database error to a CarrelError where the mapping is known; otherwise returns it. */
export function mapDbError(err: unknown, attempt?: BookingAttempt): unknown {
  if (err instanceof CarrelError) return err;
  const e = err as PgError;
  switch (e?.code) {
    case '23P01':
      return exclusionError(e.detail, attempt);
    case '40P01':
    case '40001':
      return new CarrelError(ErrorCode.CONFLICT, 'a concurrent change won; try again');
    case '23505':
      return new CarrelError(ErrorCode.CONFLICT, 'that already exists');
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
 * 23P01 on reservations_no_overlap: the holds (time + buffer) of two bookings overlap. When the
 * times themselves overlap, that is a double booking: CONFLICT. When only a buffer is in the way
 * — the other booking's cleaning time after it, or ours running into its start — the seat is
 * free for the time asked, and what stops the booking is a branch rule (docs/protocol.md, "Rule
 * names": a rule violation is FAILED_PRECONDITION naming it), so the answer is rule 'padding' with
 * the same clashing interval. The other booking's time is its hold minus the branch's padding now:
 * the constraint's detail names only holds, and padding is per branch, changed rarely (a booking
 * made before a change keeps the buffer it was made with, so for it this is an estimate).
 */
function exclusionError(detail: string | undefined, attempt: BookingAttempt | undefined): CarrelError {
  const details = conflictDetails(detail);
  const clash = details?.conflict as { start: string; end: string } | undefined;
  if (clash && attempt && attempt.paddingMinutes > 0) {
    const otherStart = Date.parse(clash.start);
    const otherEnd = Math.max(otherStart, Date.parse(clash.end) - attempt.paddingMinutes * 60_000);
    const timesOverlap = attempt.startMs < otherEnd && otherStart < attempt.endMs;
    if (!timesOverlap) {
      return new CarrelError(
        ErrorCode.FAILED_PRECONDITION,
        `the seat needs its ${attempt.paddingMinutes}-minute cleaning buffer between bookings, ` +
          `and that clashes with another booking (held ${clash.start} → ${clash.end}, buffer included)`,
        { rule: 'padding', paddingMinutes: attempt.paddingMinutes, conflict: clash },
      );
    }
  }
  return new CarrelError(ErrorCode.CONFLICT, 'the seat is already booked for part of that time', details);
}

/**
 * Parses `... conflicts with existing key (seat_id, hold)=(12, ["2026-01-01 10:00:00+00","2026-01-01 11:00:00+00"))`.
 * The clashing interval is the other booking's hold, which is public availability data.
 */
function conflictDetails(detail: string | undefined): Record<string, unknown> | undefined {
  if (!detail) return undefined;
  const m = /conflicts with existing key \([^)]*\)=\(\d+, \["?([^",]+)"?,"?([^")\]]+)"?\)\)/.exec(detail);
  if (!m) return undefined;
  // PostgreSQL prints whole-hour offsets as "+00" / "-05", which Date does not parse.
  const iso = (text: string): Date => new Date(text.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00'));
  const start = iso(m[1]!);
  const end = iso(m[2]!);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) return undefined;
  return { conflict: { start: start.toISOString(), end: end.toISOString() } };
}

/** Runs fn, retrying deadlocks and serialisation failures a few times before mapping them. */
export async function withRetry<T>(fn: () => Promise<T>, attempts = 4, attempt?: BookingAttempt): Promise<T> {
  try {
    return await retryingRaw(fn, attempts);
  } catch (err) {
    throw mapDbError(err, attempt);
  }
}

/** Runs fn, retrying deadlocks and serialisation failures; the last error comes out as pg gave it. */
export async function retryingRaw<T>(fn: () => Promise<T>, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i < attempts && isRetryable(err)) {
        await new Promise((r) => setTimeout(r, 2 ** i + Math.random() * 5));
        continue;
      }
      throw err;
    }
  }
}
