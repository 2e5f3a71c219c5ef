// A refused key (the development key under NODE_ENV=production) is refused even when
// sensor_keys holds it, as `carrel db seed` leaves it; other keys in the table still work.
import type { Db } from '../../src/db/db.js';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { DEV_SENSOR_KEY } from '../../src/config/load.js';
import { SensorKeyring, sha256Hex } from '../../src/sensors/sensorKeys.js';
import { silentLogger } from '../../src/obs/log.js';

/** A sensor_keys table holding these keys' digests. */
function table(keys: string[]) {
  const digests = new Set(keys.map(sha256Hex));
  const rows = (digest: string) => (digests.has(digest) ? [{ id: 7, branch_id: null }] : []);
  return { query: async (_sql: string, [digest]: [string]) => ({ rowCount: rows(digest).length, rows: rows(digest) }) } as unknown as Db;
}

const throttle = configSchema.parse({}).sensors.helloThrottle;

describe('SensorKeyring refused keys', () => {
  it('refuses the development key from sensor_keys when told to, and accepts the table\'s other keys', async () => {
    const db = table([DEV_SENSOR_KEY, 'east-wing-secret-1']);
    const production = new SensorKeyring({ db, keys: [], refuse: [DEV_SENSOR_KEY], throttle, log: silentLogger, now: () => 0 });
    expect(await production.check(DEV_SENSOR_KEY, '10.0.0.1', 'gw')).toEqual({ ok: false, code: 'PERMISSION_DENIED' });
    expect(await production.check('east-wing-secret-1', '10.0.0.2', 'gw')).toEqual({ ok: true, keyId: 7, branchId: null });
    const development = new SensorKeyring({ db, keys: [], throttle, log: silentLogger, now: () => 0 });
    expect(await development.check(DEV_SENSOR_KEY, '10.0.0.1', 'gw')).toEqual({ ok: true, keyId: 7, branchId: null });
  });
});
