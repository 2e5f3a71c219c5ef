// The one place where database failures become wire errors (STYLE §4). 23P01 is a booking
// conflict, with the clashing interval parsed from the detail; deadlocks and serialisation
// failures are retried by withRetry and then reported as CONFLICT; a database that cannot be
// reached is UNAVAILABLE (safe to retry); anything else is left for the dispatcher to log and
// turn into INTERNAL, so SQL text never reaches a peer.
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

/** Maps a database error to a CarrelError where the mapping is known; otherwise returns it. */
export function mapDbError(err: unknown): unknown {
  if (err instanceof CarrelError) return err;
  const e = err as PgError;
  switch (e?.code) {
    case '23P01':
      return new CarrelError(ErrorCode.CONFLICT, 'the seat is already booked for part of that time', conflictDetails(e.detail));
    case '40P01':
    case '40001':
      return new CarrelError(ErrorCode.CONFLICT, 'a concurrent change won; try again');
    case '23505':
      return new CarrelError(ErrorCode.CONFLICT, 'that already exists');
    case '57014':
      return new CarrelError(ErrorCode.DEADLINE_EXCEEDED, 'the database did not answer in time');
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
export async function withRetry<T>(fn: () => Promise<T>, attempts = 4): Promise<T> {
  try {
    return await retryingRaw(fn, attempts);
  } catch (err) {
    throw mapDbError(err);
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
