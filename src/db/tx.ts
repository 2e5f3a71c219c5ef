// Transactions whose failures the caller inspects before they are mapped to wire codes: the
// waitlist treats an exclusion violation (23P01) on an offer as "try the next waiter", and
// retries deadlocks between racing gist inserts (STYLE, pitfalls) instead of reporting them.
import type pg from 'pg';
import { retryingRaw } from './errors.js';

export type TxClient = pg.PoolClient;

/**
 * Runs fn between BEGIN and COMMIT, on `client` when given (the caller keeps it, e.g. the
 * lifecycle's lock-holding session, which destroys it after any failure), else on a client
 * borrowed from the pool. Errors are rethrown as they came from pg, after ROLLBACK. A borrowed
 * client whose ROLLBACK failed is destroyed rather than returned to the pool in an unknown state.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  fn: (client: TxClient) => Promise<T>,
  client?: TxClient,
): Promise<T> {
  const c = client ?? (await pool.connect());
  let broken = false;
  try {
    await c.query('BEGIN');
    const result = await fn(c);
    await c.query('COMMIT');
    return result;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    if (!client) c.release(broken ? true : undefined);
  }
}

/** inTransaction, retried a few times on deadlock / serialisation failure; raw errors out. */
export function inTransactionRetrying<T>(
  pool: pg.Pool,
  fn: (client: TxClient) => Promise<T>,
  client?: TxClient,
  attempts = 4,
): Promise<T> {
  return retryingRaw(() => inTransaction(pool, fn, client), attempts);
}

export function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
