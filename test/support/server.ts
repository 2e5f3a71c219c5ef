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
  /** The live half's insides that tests look at or drive (see liveInsides). */
  live: LiveInsides;
  close(): Promise<void>;
}

/**
 * What tests look at and drive inside a running server's live half, in one place: when a part
 * moves, this changes and the tests do not. Each name says what a test wants.
 */
export function liveInsides(server: CarrelServer) {
  const rt = server.realtime;
  return {
    /** The live seat model (LiveSeats): a seat's state, readings applied straight into it. */
    get model() {
      return rt.live;
    },
    /** The subscriber hub: seqs, subscribers, drops. */
    hub: rt.hub,
    /** Fires what the clock has made due (a FakeClock does not run the timer). */
    tick: (nowMs?: number) => rt.tick(nowMs),
    /** Resolves when the sensor-driven check-ins and releases started so far have finished. */
    settled: () => rt.settled(),
    /** A look for branches and seats added since start: rate-limited, or now. */
    discover: () => rt.discover(),
    refresh: () => rt.refresh(),
    /** The batched seat_live writer. */
    coalescer: rt.coalescer,
    sensorListener: rt.sensorListener,
    pubsubListener: rt.pubsubListener,
    get sensorSessionCount() {
      return rt.sensorSessions.size;
    },
    get counters() {
      return rt.counters;
    },
    refusedReadings: rt.refusedReadings,
    revokedKeys: rt.revokedKeys,
    busStats: () => rt.busStats(),
  };
}

export type LiveInsides = ReturnType<typeof liveInsides>;

export async function startTestServer(
  overrides: DeepPartial<Config> = {},
  opts: { db?: TestDatabase; clock?: Clock; log?: Logger; random?: () => number } = {},
): Promise<TestServer> {
  const config = testConfig(overrides);
  const db = opts.db ?? (await freshDatabase());
  const server = await CarrelServer.start({ config, log: opts.log ?? silentLogger, db: db.pool, clock: opts.clock, random: opts.random });
  return {
    server,
    db,
    config,
    live: liveInsides(server),
    close: async () => {
      await server.shutdown();
      if (!opts.db) await db.drop();
    },
  };
}
