// Helpers for the reservation-core tests: users made straight in SQL (no bcrypt per user),
// tokens issued by the server under test, seats looked up by label, and RPC clients.
import { RpcClient, RpcCallError } from '../../clients/rpcClient.js';
import type { TestServer } from './server.js';

export interface TestUser {
  id: number;
  studentId: string;
  token: string;
}

/** A Monday, 10:00 in New York (Main Library open 07:00-23:00), in the future so tokens adopted by a connection stay valid. */
export const MONDAY_10_NY = '2030-01-07T15:00:00.000Z';

export async function makeUsers(t: TestServer, n: number, prefix: string, role: 'student' | 'admin' = 'student'): Promise<TestUser[]> {
  const res = await t.db.pool.query<{ id: number; student_id: string; name: string }>(
    `INSERT INTO users (student_id, name, password_hash, role)
     SELECT $1 || '-' || i, 'User ' || i, 'x', $3 FROM generate_series(1, $2) AS i
     RETURNING id, student_id, name`,
    [prefix, n, role],
  );
  return res.rows.map((r) => ({
    id: r.id,
    studentId: r.student_id,
    token: t.tokens.issue({ id: r.id, studentId: r.student_id, name: r.name, role }).token,
  }));
}

export async function seatIdOf(t: TestServer, label: string, branch = 'Main Library'): Promise<number> {
  const res = await t.db.pool.query<{ id: number }>(
    'SELECT s.id FROM seats s JOIN branches b ON b.id = s.branch_id WHERE s.label = $1 AND b.name = $2',
    [label, branch],
  );
  if (!res.rows[0]) throw new Error(`no seat ${label} in ${branch}`);
  return res.rows[0].id;
}

export async function connect(t: TestServer, user?: TestUser): Promise<RpcClient> {
  const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
  if (user) c.token = user.token;
  return c;
}

/** The error code a call fails with (throws if it succeeds). */
export async function errorOf(p: Promise<unknown>): Promise<RpcCallError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RpcCallError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

export const iso = (base: string, minutes: number): string => new Date(Date.parse(base) + minutes * 60_000).toISOString();
