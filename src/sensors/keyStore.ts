// Sensor keys in the sensor_keys table, as an admin manages them (docs/sensors.md): made for one
// branch, listed, revoked. The server makes each key from 32 random bytes and returns it once, in
// the answer to `add`; the table keeps only its SHA-256 digest, so neither the database nor any
// later answer can give it back. A list shows a fingerprint (the digest's first 12 hex digits) to
// tell keys apart, never the key. The sensor port checks keys in sensorKeys.ts.
import { randomBytes } from 'node:crypto';
import { CarrelError, ErrorCode } from '../errors.js';
import type { Db } from '../db/db.js';
import { DbConflict } from '../db/errors.js';
import { sha256Hex } from './sensorKeys.js';
import { branchIdSql } from '../core/branchRef.js';
import type { BranchRef } from '../wire/branchRef.js';
import type { SensorKeyWire } from '../wire/types.js';


interface KeyRow {
  id: number;
  name: string;
  branch_id: number | null;
  branch: string | null;
  key_sha256: string;
  created_at: Date;
  revoked_at: Date | null;
}

const COLUMNS = `k.id, k.name, k.branch_id, b.name AS branch, k.key_sha256, k.created_at, k.revoked_at`;
const FINGERPRINT_HEX = 12;
/** Keys start with this, so one pasted somewhere it should not be is recognisable. */
export const KEY_PREFIX = 'csk_';

function toWire(r: KeyRow): SensorKeyWire {
  return {
    id: r.id,
    name: r.name,
    branchId: r.branch_id,
    branch: r.branch,
    fingerprint: r.key_sha256.slice(0, FINGERPRINT_HEX),
    createdAt: r.created_at.toISOString(),
    revokedAt: r.revoked_at ? r.revoked_at.toISOString() : null,
  };
}

/** `id = <the branch ref names>` (core/branchRef.ts), and the value for `param`. */
function branchWhere(ref: BranchRef, param: string): { sql: string; value: number | string } {
  const branch = branchIdSql(ref, param);
  return { sql: `id = ${branch.sql}`, value: branch.value };
}

export class SensorKeyStore {
  constructor(private readonly opts: { db: Db; now: () => number }) {}

  /** Makes a key for one branch; the answer is the only place the key itself ever appears. */
  async add(name: string, branch: BranchRef): Promise<SensorKeyWire & { key: string }> {
    const key = KEY_PREFIX + randomBytes(32).toString('base64url');
    const b = branchWhere(branch, '$3');
    const res = await this.opts.db
      .query<KeyRow>(
        `WITH b AS (SELECT id, name FROM branches WHERE ${b.sql}),
              k AS (INSERT INTO sensor_keys (name, key_sha256, branch_id, created_at)
                    SELECT $1, $2, b.id, $4 FROM b RETURNING *)
         SELECT ${COLUMNS} FROM k JOIN b ON b.id = k.branch_id`,
        [name, sha256Hex(key), b.value, new Date(this.opts.now())],
      )
      .catch((err: unknown) => {
        if (err instanceof DbConflict && err.reason === 'duplicate') {
          throw new CarrelError(ErrorCode.CONFLICT, `a sensor key named ${JSON.stringify(name)} exists already (names stay taken after a revoke)`, { name });
        }
        throw err;
      });
    const row = res.rows[0];
    if (!row) throw noBranch(branch);
    return { ...toWire(row), key };
  }

  /** Keys by id, of one branch when given; revoked ones only when asked. */
  async list(filter: { branch?: BranchRef; includeRevoked?: boolean } = {}): Promise<SensorKeyWire[]> {
    const values: unknown[] = [];
    const where: string[] = [];
    if (filter.branch) {
      const b = branchWhere(filter.branch, '$1');
      values.push(b.value);
      // A branch that does not exist is NOT_FOUND, not an empty list: a typo should not look like "no keys".
      const found = await this.opts.db.query<{ id: number }>(`SELECT id FROM branches WHERE ${b.sql}`, values);
      if (!found.rows[0]) throw noBranch(filter.branch);
      values[0] = found.rows[0].id;
      where.push('k.branch_id = $1');
    }
    if (!filter.includeRevoked) where.push('k.revoked_at IS NULL');
    const res = await this.opts.db.query<KeyRow>(
      `SELECT ${COLUMNS} FROM sensor_keys k LEFT JOIN branches b ON b.id = k.branch_id
        ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY k.id`,
      values,
    );
    return res.rows.map(toWire);
  }

  /**
   * Revokes a key by id or name (of that branch, when one is given as a check). Revoking a revoked
   * key changes nothing and answers it as it is. The sensor port refuses the key at its next hello;
   * its open connections close (sensorKeys.ts, keyWatch.ts).
   */
  async revoke(which: { id: number } | { name: string }, branch?: BranchRef): Promise<SensorKeyWire> {
    const values: unknown[] = ['id' in which ? which.id : which.name, new Date(this.opts.now())];
    let branchCheck = '';
    if (branch) {
      const b = branchIdSql(branch, '$3');
      values.push(b.value);
      branchCheck = `AND k.branch_id = ${b.sql}`;
    }
    const res = await this.opts.db.query<KeyRow>(
      `WITH target AS (SELECT k.id FROM sensor_keys k WHERE k.${'id' in which ? 'id' : 'name'} = $1 ${branchCheck}),
            done AS (UPDATE sensor_keys s SET revoked_at = $2 FROM target WHERE s.id = target.id AND s.revoked_at IS NULL RETURNING s.id)
       SELECT ${COLUMNS} FROM sensor_keys k JOIN target ON target.id = k.id LEFT JOIN branches b ON b.id = k.branch_id`,
      values,
    );
    const row = res.rows[0];
    if (!row) {
      const what = 'id' in which ? `id ${which.id}` : JSON.stringify(which.name);
      throw new CarrelError(ErrorCode.NOT_FOUND, `no sensor key ${what}${branch ? ` for branch ${'id' in branch ? branch.id : JSON.stringify(branch.name)}` : ''}`);
    }
    // The statement's snapshot predates its own UPDATE: the row read is the one before it, so a
    // key revoked just now shows this revoke's time, one revoked earlier keeps its own.
    return { ...toWire(row), revokedAt: (row.revoked_at ?? (values[1] as Date)).toISOString() };
  }
}

function noBranch(ref: BranchRef): CarrelError {
  return new CarrelError(ErrorCode.NOT_FOUND, `no branch ${'id' in ref ? ref.id : JSON.stringify(ref.name)}`);
}

