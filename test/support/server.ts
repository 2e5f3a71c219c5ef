// Starts a CarrelServer on ephemeral ports over a fresh test database; the one harness through
// which tests reach a server's insides (TestServer).
import type { HistoryMaintenance } from '../../src/history/maintenance.js';
import type pg from 'pg';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { silentLogger, type Logger } from '../../src/obs/log.js';
import { assemble, CarrelServer, type LiveHalf, type ServerParts } from '../../src/server.js';
import type { Clock } from '../../src/core/clock.js';
import type { TokenService } from '../../src/auth/tokens.js';
import type { CoreEventFanout } from '../../src/core/events.js';
import type { Waitlist } from '../../src/core/waitlist.js';
import type { LifecycleWorker } from '../../src/core/lifecycle.js';
import type { PasswordHasher } from '../../src/auth/passwordHasher.js';
import type { LoginThrottle } from '../../src/auth/loginThrottle.js';
import type { SeatService } from '../../src/core/seats.js';
import type { ReservationService } from '../../src/core/reservations.js';
import type { SeatListing } from '../../src/core/seatListing.js';
import type { MethodRegistry } from '../../src/rpc/registry.js';
import type { Observability } from '../../src/obs/observability.js';
import type { DbAdmission } from '../../src/db/admission.js';
import type { Listener } from '../../src/net/listener.js';
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

/**
 * A running server over a test database, and the one way tests reach its insides — the parts
 * src/server.ts assembled. When a part moves, this changes and the tests do not. Each member says
 * what a test wants of it; CarrelServer itself offers only its ports and shutdown.
 */
export class TestServer {
  /** The live half's insides that tests look at or drive (see liveInsides). */
  readonly live: LiveInsides;

  constructor(
    readonly server: CarrelServer,
    private readonly parts: ServerParts,
    readonly db: TestDatabase,
    readonly config: Readonly<Config>,
    private readonly ownsDb: boolean,
  ) {
    this.live = liveInsides(parts.live);
  }

  /** Tokens for test users (issue), as auth.login would give them. */
  get tokens(): TokenService {
    return this.parts.core.tokens;
  }

  /** Committed changes: what core announces (on), or one announced as core would (emit). */
  get coreEvents(): CoreEventFanout {
    return this.parts.core.events;
  }

  get waitlist(): Waitlist {
    return this.parts.core.waitlist;
  }

  /** No-shows, completions, lapsed offers: tick() runs one pass at a given time. */
  get lifecycle(): LifecycleWorker {
    return this.parts.core.lifecycle;
  }

  /** The occupancy history's upkeep (history.enabled): rollUp() sums finished days now. */
  get history(): HistoryMaintenance | undefined {
    return this.parts.live.history;
  }

  /** The password workers and their lanes. */
  get passwords(): PasswordHasher {
    return this.parts.core.passwords;
  }

  get loginThrottle(): LoginThrottle {
    return this.parts.core.loginThrottle;
  }

  get seats(): SeatService {
    return this.parts.core.seats;
  }

  get reservations(): ReservationService {
    return this.parts.core.reservations;
  }

  /** seats.list's cache: its stats and booking generation. */
  get seatListing(): SeatListing {
    return this.parts.core.listing;
  }

  /** Every RPC method (names, access); tests add methods of their own with add(). */
  get registry(): MethodRegistry {
    return this.parts.requests.registry;
  }

  /** Metrics, readiness and server.stats. */
  get obs(): Observability {
    return this.parts.obs;
  }

  /** The fair gate in front of the database pool. */
  get dbAdmission(): DbAdmission {
    return this.parts.requests.dbAdmission;
  }

  /** The RPC port's listener: its open connections and refusals. */
  get rpcListener(): Listener {
    return this.parts.requests.rpc.listener;
  }

  /** RPC requests in flight. */
  get inFlight(): number {
    return this.parts.requests.rpc.sessions.inFlight;
  }

  /** Open RPC connections. */
  get connectionCount(): number {
    return this.parts.requests.rpc.listener.connections.size;
  }

  async close(): Promise<void> {
    await this.server.shutdown();
    if (this.ownsDb) await this.db.drop();
  }
}

/**
 * What tests look at and drive inside a running server's live half, in one place. Each name says
 * what a test wants.
 */
export function liveInsides(live: LiveHalf) {
  const rt = live.realtime;
  return {
    /** The live seat model (LiveSeats): a seat's state, readings applied straight into it. */
    model: live.model,
    /** The subscriber hub: seqs, subscribers, drops. */
    hub: live.hub,
    /** Fires what the clock has made due (a FakeClock does not run the timer). */
    tick: (nowMs?: number) => rt.tick(nowMs),
    /** Resolves when the sensor-driven check-ins and releases started so far have finished. */
    settled: () => rt.settled(),
    /** A look for branches and seats added since start: rate-limited, or now. */
    discover: () => live.discovery.discover(),
    refresh: () => live.discovery.refresh(),
    /** The batched seat_live writer. */
    coalescer: live.coalescer,
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

/**
 * A server on ephemeral ports over a fresh test database, or over `opts.db` (which the caller
 * drops). `opts.clock`: a FakeClock the tests move (the live model's timer is then theirs to run).
 */
export async function startTestServer(
  overrides: DeepPartial<Config> = {},
  opts: { db?: TestDatabase; clock?: Clock; log?: Logger; autoTick?: boolean; random?: () => number } = {},
): Promise<TestServer> {
  const config = testConfig(overrides);
  const db = opts.db ?? (await freshDatabase());
  const deps = { config, log: opts.log ?? silentLogger, db: db.pool, clock: opts.clock, autoTick: opts.autoTick, random: opts.random };
  const parts = assemble(deps);
  try {
    const server = await CarrelServer.start(deps, parts);
    return new TestServer(server, parts, db, config, !opts.db);
  } catch (err) {
    if (!opts.db) await db.drop();
    throw err;
  }
}

/**
 * The methods and metrics a server registers, from parts assembled but never started: nothing
 * listens, no worker starts, and the pool never connects. close() ends the password workers.
 */
export function unstartedServer(config: Readonly<Config>, pool: pg.Pool) {
  const parts = assemble({ config, log: silentLogger, db: pool });
  return {
    methodNames: () => parts.requests.registry.names(),
    metricNames: () => Object.keys(parts.obs.registry.values()),
    close: () => parts.core.passwords.close(),
  };
}
