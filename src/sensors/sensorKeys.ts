// Who may speak on the sensor port (DESIGN §4): a key from config (sensors.keys) or one whose
// SHA-256 digest is in sensor_keys and not revoked. Keys are compared as digests in constant
// time, so neither the config list nor the table leaks a key through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

export class SensorKeyring {
  private readonly configDigests: Buffer[];

  constructor(
    private readonly db: pg.Pool,
    configKeys: readonly string[],
  ) {
    this.configDigests = configKeys.map((k) => createHash('sha256').update(k, 'utf8').digest());
  }

  /** True when the key is known and not revoked. Rejects only when the database is unreachable. */
  async check(key: string): Promise<boolean> {
    const digest = createHash('sha256').update(key, 'utf8').digest();
    let known = false;
    for (const d of this.configDigests) known = timingSafeEqual(d, digest) || known;
    if (known) return true;
    const row = await this.db.query('SELECT 1 FROM sensor_keys WHERE key_sha256 = $1 AND revoked_at IS NULL', [digest.toString('hex')]);
    return (row.rowCount ?? 0) > 0;
  }
}
