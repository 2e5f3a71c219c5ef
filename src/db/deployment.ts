// The identity of the database (migration 012): a uuid created once, with the database, that
// binds what carrel keeps in Redis to the database it describes (docs/redis.md).
import type { Db } from './db.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The database's deployment id; fails with a clear message when migration 012 was not applied. */
export async function readDeploymentId(db: Db): Promise<string> {
  let rows: Array<{ id: string }>;
  try {
    rows = (await db.query<{ id: string }>('SELECT id::text AS id FROM deployment')).rows;
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') throw new Error('the database has no deployment id (table "deployment"): run `carrel db migrate`');
    throw err;
  }
  const id = rows[0]?.id;
  if (rows.length !== 1 || id === undefined || !UUID.test(id)) throw new Error(`the database's deployment table must hold exactly one id; it holds ${rows.length}`);
  return id;
}
