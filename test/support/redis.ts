// Redis for tests: REDIS_URL (CI sets it) or the local default. Without a reachable Redis the
// Redis suites are skipped with a message — except in CI (CI=true), where they must run.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function redisReachable(): Promise<boolean> {
  const probe = new Redis(redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export const redisAvailable = await redisReachable();
if (!redisAvailable) {
  if (process.env.CI === 'true') throw new Error(`CI=true but Redis at ${redisUrl} is unreachable: the Redis suites must run in CI`);
  process.stderr.write(`tests: Redis at ${redisUrl} is unreachable; skipping the RedisBus suites (set REDIS_URL to run them)\n`);
}

/** A key prefix of its own per test run and file, so parallel runs never share keys. */
export function testKeyPrefix(tag: string): string {
  return `carrel-test:${tag}:${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under a prefix (test clean-up). */
export async function dropKeys(prefix: string): Promise<void> {
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}
