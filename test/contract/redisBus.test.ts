import { afterAll, describe } from 'vitest';
import { RedisBus } from '../../src/bus/redisBus.js';
import { silentLogger } from '../../src/obs/log.js';
import { dropKeys, redisAvailable, redisUrl, testKeyPrefix } from '../support/redis.js';
import { busContract } from './bus.contract.js';

const prefix = testKeyPrefix('contract');

if (redisAvailable) {
  busContract('RedisBus', {
    make(instanceId, { retainEvents, shared }) {
      return new RedisBus({
        url: redisUrl,
        keyPrefix: `${prefix}:${shared}`,
        retainEvents,
        offlineQueueMax: 1000,
        connectTimeoutMs: 2000,
        instanceId,
        log: silentLogger,
      });
    },
  });
  afterAll(async () => dropKeys(prefix));
} else {
  describe.skip('EventBus contract: RedisBus (Redis unreachable)', () => undefined);
}
