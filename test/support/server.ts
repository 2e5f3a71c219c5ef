// Starts a CarrelServer on ephemeral ports over a fresh test database.
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { silentLogger, type Logger } from '../../src/obs/log.js';
import { CarrelServer } from '../../src/server.js';
import type { Clock } from '../../src/core/clock.js';
import { freshDatabase, type TestDatabase } from './db.js';

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export function testConfig(overrides: DeepPartial<Config> = {}): Readonly<Config> {
  const base: Record<string, unknown> = {
    ports: { rpc: 0, sensor: 0, pubsub: 0, http: 0 },
    auth: { bcryptCost: 4 },
  };
  return parseConfig(merge(base, overrides as Record<string, unknown>));
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      prev && typeof prev === 'object' && !Array.isArray(prev) && v && typeof v === 'object' && !Array.isArray(v)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export interface TestServer {
  server: CarrelServer;
  db: TestDatabase;
  config: Readonly<Config>;
  close(): Promise<void>;
}

export async function startTestServer(
  overrides: DeepPartial<Config> = {},
  opts: { db?: TestDatabase; clock?: Clock; log?: Logger } = {},
): Promise<TestServer> {
  const config = testConfig(overrides);
  const db = opts.db ?? (await freshDatabase());
  const server = await CarrelServer.start({ config, log: opts.log ?? silentLogger, db: db.pool, clock: opts.clock });
  return {
    server,
    db,
    config,
    close: async () => {
      await server.shutdown();
      if (!opts.db) await db.drop();
    },
  };
}
