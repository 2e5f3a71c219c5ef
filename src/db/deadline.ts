// A request's deadline, as the database work done for it honours it (docs/protocol.md, "Deadlines":
// a request not answered in time gets DEADLINE_EXCEEDED). The RPC session tells the client at the
// deadline; this module makes the database stop at about the same moment instead of carrying on:
//
// - waiting for a pooled connection: at most the time left (connectWithin). pg-pool cannot
//   withdraw a queued waiter, so one that gives up releases the connection the moment it
//   arrives, having done nothing with it.
// - waiting for a lock inside a statement (the per-user booking lock, a concurrent insert on the
//   same seat): a LockingStatement run by Db (db/db.ts) is built with what is left (lockBudgetMs)
//   and sets it as lock_timeout for its own transaction (set_config(..., true)), so no extra
//   round trip is spent on it.
//   PostgreSQL cancels the wait (55P03) and rolls the statement back: the work did not happen.
//   statement_timeout cannot be set that way (its timer is armed when the statement starts), so
//   CPU time stays bounded by the session's db.statementTimeoutMs.
//
// A margin is kept back so that the answer from PostgreSQL reaches the client before the
// session gives up on the request: a booking either comes back, or is refused as
// DEADLINE_EXCEEDED and rolled back. Only a commit in the last few milliseconds can still be
// answered DEADLINE_EXCEEDED by the session; a retry with the same idempotencyKey finds it.
//
// A request's deadline also carries its place at the fair gate in front of the pool
// (db/admission.ts): a pooled connection is taken only once the request's client has its turn.
// The Deadline and its ticket are declared in src/deadline.ts, where the RPC layer that makes
// them can reach them without importing the database layer. Db (db/db.ts) is the only caller.
import type pg from 'pg';
import type { Deadline, ReleaseSlot } from '../deadline.js';
import { CarrelError, ErrorCode } from '../errors.js';

/** Kept back from every wait for the reply to travel back before the session's deadline. */
export const DEADLINE_MARGIN_MS = 20;

export function deadlineExceeded(what: string): CarrelError {
  return new CarrelError(ErrorCode.DEADLINE_EXCEEDED, `the request's deadline passed ${what}; nothing was changed`);
}

/**
 * How long a statement may wait for locks, in whole milliseconds (≥ 1: lock_timeout 0 would
 * mean "forever"), or null without a deadline. Throws DEADLINE_EXCEEDED when nothing is left.
 */
export function lockBudgetMs(deadline: Deadline | undefined): number | null {
  if (!deadline) return null;
  const left = Math.floor(deadline.remainingMs()) - DEADLINE_MARGIN_MS;
  if (left < 1) throw deadlineExceeded('before the database was asked');
  return left;
}

/**
 * A pooled connection, waiting at most until the deadline (less the margin): first for the
 * request's turn at the gate, then for the pool. The gate's slot goes back with the connection.
 */
export async function connectWithin(pool: pg.Pool, deadline: Deadline | undefined): Promise<pg.PoolClient> {
  if (!deadline) return pool.connect();
  let left = deadline.remainingMs() - DEADLINE_MARGIN_MS;
  if (left <= 0) throw deadlineExceeded('before a database connection was free');
  const ticket = deadline.admission;
  if (!ticket) return connectOrGiveUp(pool, left);
  const slot = await ticket.gate.acquire(ticket.client, left, ticket.share);
  left = deadline.remainingMs() - DEADLINE_MARGIN_MS;
  let client: pg.PoolClient;
  try {
    if (left <= 0) throw deadlineExceeded('while waiting for a database connection');
    client = await connectOrGiveUp(pool, left);
  } catch (err) {
    slot();
    throw err;
  }
  return returningSlot(client, slot);
}

/** pool.connect(), or DEADLINE_EXCEEDED after leftMs (the connection, when it comes, goes straight back). */
function connectOrGiveUp(pool: pg.Pool, leftMs: number): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(deadlineExceeded('while waiting for a database connection'));
    }, leftMs);
    pool.connect().then(
      (client) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          resolve(client);
        } else {
          client.release();
        }
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * The gate's slot is given back when the connection is. pg-pool gives a client a fresh
 * `release` at every checkout, so wrapping this checkout's leaves later ones alone.
 */
function returningSlot(client: pg.PoolClient, slot: ReleaseSlot): pg.PoolClient {
  const release = client.release;
  client.release = (err?: Error | boolean) => {
    slot();
    return release.call(client, err);
  };
  return client;
}
