// The one way to the database (docs/architecture.md, "The path of a request"): a statement or a
// transaction, run within a request's deadline, run again when PostgreSQL undid it as a deadlock
// or a serialisation failure, and failing with a wire error (mapDbError). What a failure means
// for the user beyond that — a clash that is only a cleaning buffer — is the caller's to say.
//
// One attempt, for a request (a Deadline given):
//  1. its turn at the fair gate, by the ticket the Deadline carries (db/admission.ts,
//     docs/fairness.md), then a pooled connection, both waited for no longer than the deadline
//     (connectWithin, db/deadline.ts); the gate's slot goes back with the connection;
//  2. the statement — a LockingStatement is built only now, with the time left as its lock
//     budget (lockBudgetMs) — or BEGIN, the transaction's statements, COMMIT (ROLLBACK on any
//     failure);
//  3. the connection goes back to the pool, or is discarded when its state is unknown (a socket
//     error; a ROLLBACK that failed).
// A deadlock or serialisation failure (40P01, 40001) undid the attempt, so after a short pause the
// whole attempt runs again from step 1 — a retrying request queues at the gate again rather than
// hold a slot while it pauses — at most ATTEMPTS times in all; then the error is mapped.
//
// Work that is not a request passes no Deadline: no gate, and no bound on the waits. A Db made by
// session() runs everything on its one connection (the lifecycle's, which holds a session lock).
import pg from 'pg';
import type { Deadline } from '../deadline.js';
import { CarrelError } from '../errors.js';
import { connectWithin, lockBudgetMs } from './deadline.js';
import { isRetryable, mapDbError } from './errors.js';

/**
 * A statement that may wait for locks, built once it has its connection: lockTimeoutMs is what
 * is left of the deadline for lock waits (null without one), for the statement to set as its
 * own transaction's lock_timeout, so that the waits for the connection and for the locks
 * together end at the deadline.
 */
export type LockingStatement = (lockTimeoutMs: number | null) => pg.QueryConfig;

/** A transaction's statements. Errors come as PostgreSQL gave them; the transaction maps them once it is over. */
export interface Tx {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** Attempts at a statement or transaction that PostgreSQL keeps undoing as a deadlock. */
const ATTEMPTS = 4;

export class Db {
  /** The session's connection, in a Db made by session(). */
  private held: pg.PoolClient | undefined;

  constructor(private readonly pool: pg.Pool) {}

  /** One statement, as pg's query(text, values), within the request's deadline when given. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[], deadline?: Deadline): Promise<pg.QueryResult<R>>;
  /** One statement given as a pg QueryConfig (a named, prepared one), or built with its lock budget. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(statement: pg.QueryConfig | LockingStatement, deadline?: Deadline): Promise<pg.QueryResult<R>>;
  query<R extends pg.QueryResultRow>(
    statement: string | pg.QueryConfig | LockingStatement,
    valuesOrDeadline?: unknown[] | Deadline,
    deadline?: Deadline,
  ): Promise<pg.QueryResult<R>> {
    if (typeof statement === 'string') {
      const values = valuesOrDeadline as unknown[] | undefined;
      return this.statement(deadline, (client) => client.query<R>(statement, values));
    }
    const within = valuesOrDeadline as Deadline | undefined;
    if (typeof statement === 'function') return this.statement(within, (client) => client.query<R>(statement(lockBudgetMs(within))));
    return this.statement(within, (client) => client.query<R>(statement));
  }

  /**
   * fn's statements in one transaction, committed when fn resolves and rolled back when it
   * throws; what fn throws itself (a CarrelError, say) comes out as it is. fn may run more than
   * once (a deadlock undoes every attempt but the last), so it does nothing outside the database.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>, deadline?: Deadline): Promise<T> {
    return this.attempts(deadline, async (client, discard) => {
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(discard);
        throw err;
      }
    });
  }

  /**
   * fn with a Db that runs everything on one connection of its own, held until fn settles: for
   * work that keeps session state between statements (a session advisory lock). No gate: this
   * is never a request's work. After any failure the connection is discarded, which ends
   * whatever the session still held (a lock, an open transaction).
   */
  async session<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    if (this.held) return fn(this);
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw mapDbError(err);
    }
    const session = new Db(this.pool);
    session.held = client;
    let failed = false;
    try {
      return await fn(session);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      client.release(failed || undefined);
    }
  }

  private statement<R extends pg.QueryResultRow>(
    deadline: Deadline | undefined,
    send: (client: pg.PoolClient) => Promise<pg.QueryResult<R>>,
  ): Promise<pg.QueryResult<R>> {
    return this.attempts(deadline, async (client, discard) => {
      try {
        return await send(client);
      } catch (err) {
        if (!knownState(err)) discard();
        throw err;
      }
    });
  }

  /** Runs work, again on deadlock or serialisation failure, and maps what it finally throws. */
  private async attempts<T>(deadline: Deadline | undefined, work: (client: pg.PoolClient, discard: () => void) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.onConnection(deadline, work);
      } catch (err) {
        if (attempt < ATTEMPTS && isRetryable(err)) {
          await new Promise((r) => setTimeout(r, 2 ** attempt + Math.random() * 5));
          continue;
        }
        throw mapDbError(err);
      }
    }
  }

  /** work on the session's connection, or on one taken within the deadline and given back after. */
  private async onConnection<T>(deadline: Deadline | undefined, work: (client: pg.PoolClient, discard: () => void) => Promise<T>): Promise<T> {
    // A session's connection is discarded by session() itself after any failure.
    if (this.held) return work(this.held, () => undefined);
    const client = await connectWithin(this.pool, deadline);
    let discard = false;
    try {
      return await work(client, () => {
        discard = true;
      });
    } finally {
      client.release(discard || undefined);
    }
  }
}

/**
 * True when the connection is still in a known state after err: our own refusal, or an error
 * PostgreSQL sent with a SQLSTATE other than a connection exception (08…). Anything else (a
 * socket error) leaves it unknown.
 */
function knownState(err: unknown): boolean {
  if (err instanceof CarrelError) return true;
  return err instanceof pg.DatabaseError && !(err.code ?? '08').startsWith('08');
}
