// The composition root: the one file that wires config, database, auth, methods and ports
// together. Everything else is handed what it needs.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Config } from './config/schema.js';
import type { Logger } from './obs/log.js';
import { TokenService } from './auth/tokens.js';
import { systemClock, type Clock } from './core/clock.js';
import { CoreEventFanout } from './core/events.js';
import { Dispatcher } from './rpc/dispatch.js';
import { RpcPort, RpcSessions } from './rpc/rpcPort.js';
import { MethodRegistry } from './rpc/registry.js';
import { systemMethods } from './rpc/methods/system.js';
import { waitlistMethods } from './rpc/methods/waitlist.js';
import { Waitlist } from './core/waitlist.js';
import { LifecycleWorker } from './core/lifecycle.js';
import { AccountService } from './core/accounts.js';
import { refuseIfAccountGone } from './core/accountCheck.js';
import { Db } from './db/db.js';
import { accountGone } from './db/errors.js';
import { ReservationService } from './core/reservations.js';
import { SeatListing } from './core/seatListing.js';
import { SeatService } from './core/seats.js';
import { LiveView } from './core/liveView.js';
import { authMethods } from './rpc/methods/auth.js';
import { branchMethods } from './rpc/methods/branches.js';
import { seatMethods } from './rpc/methods/seats.js';
import { reservationMethods } from './rpc/methods/reservations.js';
import { adminMethods } from './rpc/methods/admin.js';
import { statsMethods } from './rpc/methods/stats.js';
import { RateLimiter } from './rpc/rateLimit.js';
import { DbAdmission } from './db/admission.js';
import { LoginThrottle } from './auth/loginThrottle.js';
import { PasswordHasher } from './auth/passwordHasher.js';
import { Observability } from './obs/observability.js';
import { VERSION } from './version.js';
import type { EventBus } from './bus/bus.js';
import { LocalBroker, LocalBus } from './bus/localBus.js';
import { RedisBus } from './bus/redisBus.js';
import { Realtime } from './realtime.js';
import { registerLiveMetrics } from './live/liveMetrics.js';
import { registerCoreMetrics } from './obs/coreMetrics.js';
import { SensorKeyStore } from './sensors/keyStore.js';

export interface ServerDeps {
  config: Readonly<Config>;
  log: Logger;
  db: pg.Pool;
  clock?: Clock;
  /** The event bus; default: RedisBus when redis.url is set, else an in-process LocalBus. */
  bus?: EventBus;
  /** The opening lottery's randomness, a number in [0, 1); default crypto-random (tests seed it). */
  random?: () => number;
}

export interface BoundPorts {
  rpc: number;
  sensor: number;
  pubsub: number;
  http: number;
}

export class CarrelServer {
  readonly instanceId = randomUUID();
  readonly startedAt = new Date();
  readonly clock: Clock;
  readonly db: pg.Pool;
  readonly tokens: TokenService;
  /** Core emits committed changes here; the listing cache, the live model and the bus listen. */
  readonly coreEvents: CoreEventFanout;
  /** The waitlist: offers slots that cancels and early check-outs free. */
  readonly waitlist: Waitlist;
  /** No-shows, completions, lapsed offers; ticks every lifecycle.tickMs when enabled. */
  readonly lifecycle: LifecycleWorker;
  /** bcrypt on worker threads behind bounded queues (auth.hashWorkers, auth.maxQueuedHashJobs). */
  readonly passwords: PasswordHasher;
  readonly accounts: AccountService;
  readonly seatListing: SeatListing;
  readonly seats: SeatService;
  readonly reservations: ReservationService;
  /** Live seats: the sensor and subscriber ports, the live model, the hub and the bus. */
  readonly realtime: Realtime;
  /** Every RPC method, by name. */
  readonly registry: MethodRegistry;
  /** Metrics, readiness, the SLA line and the health/metrics HTTP port. */
  readonly obs: Observability;
  /** Request rate limits (config rateLimit); undefined when turned off. */
  readonly rateLimiter: RateLimiter | undefined;
  /** The fair gate requests pass to reach the database pool (config admission). */
  readonly dbAdmission: DbAdmission;
  /** Failed-login slowdown for auth.login. */
  readonly loginThrottle: LoginThrottle;
  /** The RPC port: its listener and sessions. */
  readonly rpc: RpcPort;
  private closing: Promise<void> | undefined;
  /** Known once the ports are open (start). */
  ports: BoundPorts = { rpc: 0, sensor: 0, pubsub: 0, http: 0 };

  /**
   * Builds every part, each handed what it needs when it is made, in the order they need each
   * other: the booking core, the live half, the methods, then the RPC port. Nothing listens yet.
   */
  private constructor(private readonly deps: ServerDeps) {
    const { config, log, db } = deps;
    const clock = (this.clock = deps.clock ?? systemClock);
    const now = () => clock.now();
    this.db = db;

    // The booking core, which reaches the database through Db (src/db/db.ts).
    const sql = new Db(db);
    const events = (this.coreEvents = new CoreEventFanout((err) => log.error({ err }, 'core event listener failed')));
    const core = { db: sql, clock, rules: config.rules, events };
    this.tokens = new TokenService({ secret: config.auth.jwtSecret, ttlSec: config.auth.tokenTtlSec, now });
    this.waitlist = new Waitlist({ db: sql, clock, events, config: config.waitlist, rules: config.rules, log });
    this.lifecycle = new LifecycleWorker({
      db: sql,
      clock,
      events,
      waitlist: this.waitlist,
      // A booking not checked in when its check-in window closes is a no-show: one setting.
      config: { ...config.lifecycle, noShowGraceMinutes: config.rules.checkInGraceMinutes },
      log,
    });
    this.loginThrottle = new LoginThrottle({ ...config.loginThrottle, now });
    this.passwords = new PasswordHasher({
      workers: config.auth.hashWorkers,
      maxQueuedJobs: config.auth.maxQueuedHashJobs,
      maxQueuedRegisterJobs: config.auth.maxQueuedRegisterJobs,
      registerWorkerShare: config.auth.registerWorkerShare,
    });
    this.accounts = new AccountService({ db: sql, bcryptCost: config.auth.bcryptCost, hasher: this.passwords, now });
    // The owner of live state for everything outside the live half (docs/architecture.md).
    const live = new LiveView(clock);
    this.seatListing = new SeatListing({
      ...core,
      live,
      cache: { enabled: config.discovery.seatListCache, maxEntries: config.discovery.seatListCacheMaxEntries, maxBytes: config.discovery.seatListCacheMaxBytes },
    });
    events.on(this.seatListing.onCoreEvent);
    this.seats = new SeatService({ ...core, listing: this.seatListing, live, contextCacheMs: config.discovery.seatContextCacheMs, branchListCacheMs: config.discovery.branchListCacheMs });
    const waitlist = this.waitlist;
    this.reservations = new ReservationService({
      ...core,
      seats: this.seats,
      log,
      booking: config.booking,
      random: deps.random,
      onSlotFreed: (slot, deadline) => waitlist.onSlotFreed(slot, deadline),
    });
    // What frees seat time, here: the best-available searches known full forget its branch.
    events.on(this.reservations.onCoreEvent);

    // The live half.
    const listing = this.seatListing;
    this.realtime = new Realtime({
      config,
      log,
      db,
      clock,
      tokens: this.tokens,
      coreEvents: events,
      bus: deps.bus ?? createBus(config, log, this.instanceId),
      instanceId: this.instanceId,
      autoTick: clock === systemClock,
      reservations: this.reservations,
      live,
      onBranchChanged: (branchId) => listing.invalidate(branchId),
      onRemoteFact: this.reservations.onCoreEvent,
    });

    // The request half: limits, observability, the methods, the port.
    this.rateLimiter = config.rateLimit.enabled
      ? new RateLimiter({ rules: config.rateLimit.rules, maxTrackedKeys: config.rateLimit.maxTrackedKeys })
      : undefined;
    this.dbAdmission = new DbAdmission({
      slots: config.admission.dbSlots ?? config.db.poolSize,
      perClient: config.admission.dbPerClient,
      queuePerClient: config.admission.dbQueuePerClient,
      maxQueued: config.admission.dbMaxQueued,
    });
    const accounts = this.accounts;
    const registry = (this.registry = new MethodRegistry({
      // Admin methods confirm the caller's role from the users table on every call (a token's
      // claim outlives a demotion); a token whose account is gone is UNAUTHENTICATED (docs/rules.md).
      isAdmin: async (id, deadline) => {
        const user = await accounts.getUser(id, deadline);
        if (!user) throw accountGone();
        return user.role === 'admin';
      },
    }));
    const sessions = new RpcSessions();
    const obs = (this.obs = new Observability({
      config,
      log,
      db,
      isMethod: (name) => registry.get(name) !== undefined,
      inFlight: () => sessions.inFlight,
      rateLimiter: this.rateLimiter,
      loginThrottle: this.loginThrottle,
    }));
    const revokedKeys = this.realtime.revokedKeys;
    registry.add(
      ...systemMethods(() => this.info()),
      ...waitlistMethods(this.waitlist),
      ...authMethods({ accounts, tokens: this.tokens, throttle: this.loginThrottle }),
      ...branchMethods({ seats: this.seats }),
      ...seatMethods({ seats: this.seats, listing }),
      ...reservationMethods({ reservations: this.reservations }),
      ...adminMethods({
        seats: this.seats,
        sensorKeys: new SensorKeyStore({ db: sql, now }),
        onSensorKeyRevoked: () => revokedKeys.sweep(),
      }),
      ...statsMethods(() => obs.stats(), (id, deadline) => refuseIfAccountGone(sql, id, deadline)),
    );
    const dispatcher = new Dispatcher({
      registry,
      tokens: this.tokens,
      requestTimeoutMs: config.limits.requestTimeoutMs,
      log,
      observe: obs.rpc.observe,
      admit: this.rateLimiter?.admit,
      dbAdmission: this.dbAdmission,
      quietOnRefusalMaxMs: config.admission.quietOnRefusalMaxMs,
    });
    this.rpc = new RpcPort({ config, log, dispatcher, sessions, onBadFrame: () => obs.rpc.recordFrameError() });

    obs.addListener('rpc', this.rpc.listener);
    registerLiveMetrics(obs, this.realtime);
    registerCoreMetrics(obs.registry, { listing, reservations: this.reservations, dbAdmission: this.dbAdmission, passwords: this.passwords });
  }

  static async start(deps: ServerDeps): Promise<CarrelServer> {
    const server = new CarrelServer(deps);
    try {
      const live = await server.realtime.start();
      const http = await server.obs.start();
      server.ports = { rpc: (await server.rpc.listener.listen()).port, ...live, http };
      if (deps.config.lifecycle.enabled) server.lifecycle.start();
    } catch (err) {
      await server.shutdown();
      throw err;
    }
    return server;
  }

  info() {
    const { config } = this.deps;
    return {
      name: 'carrel',
      version: VERSION,
      instanceId: this.instanceId,
      startedAt: this.startedAt.toISOString(),
      ports: { ...this.ports },
      limits: {
        maxFrameBytes: config.limits.maxFrameBytes,
        maxInFlightPerConnection: config.limits.maxInFlightPerConnection,
        maxConnections: config.limits.maxConnections,
        requestTimeoutMs: config.limits.requestTimeoutMs,
      },
    };
  }

  /** RPC requests in flight. */
  get inFlight(): number {
    return this.rpc.sessions.inFlight;
  }

  /** Open RPC connections. */
  get connectionCount(): number {
    return this.rpc.listener.connections.size;
  }

  /**
   * Graceful stop (docs/operations.md, "Running as a service"): stop accepting, stop reading new
   * requests, let in-flight ones finish and their replies go out, then close every connection — all
   * by deadlineMs (default: shutdown.graceMs from now), keeping the last part of the grace for the
   * caller to close the pool (and an embedded PostgreSQL) in. The pool belongs to the caller.
   */
  shutdown(deadlineMs?: number): Promise<void> {
    this.closing ??= this.doShutdown(deadlineMs ?? Date.now() + this.deps.config.shutdown.graceMs);
    return this.closing;
  }

  private async doShutdown(deadlineMs: number): Promise<void> {
    const { log, config } = this.deps;
    const budget = shutdownBudget(config.shutdown.graceMs, deadlineMs);
    this.obs.drain();
    const rpc = this.rpc;
    await Promise.all([rpc.listener.stopAccepting(), this.realtime.stopAccepting()]);
    rpc.sessions.drain();
    // The lifecycle's tick in progress is awaited as well: the caller closes the pool next.
    const drained = await settlesBy(Promise.all([rpc.sessions.idle(), this.lifecycle.stop()]), budget.drainUntil);
    if (!drained) log.warn({ inFlight: this.inFlight }, 'shutdown grace ran out with requests in flight');
    // Each connection sends what it has queued, then closes; a peer that will not take it is cut.
    if (!(await settlesBy(rpc.listener.closeAll(), budget.flushUntil))) rpc.listener.destroyAll();
    await this.passwords.close();
    // After the requests: their committed changes still reach subscribers and other instances.
    if (!(await settlesBy(this.realtime.shutdown(), budget.realtimeUntil))) {
      log.warn('sensor flush and subscriber close ran past their share of the shutdown grace');
    }
    await this.obs.close();
  }
}

/**
 * How shutdown.graceMs is spent, ending at deadlineMs. Requests in flight get most of it; the
 * rest (a third, at most 2 s) is kept for what must follow them, each step by its own time:
 * replies flushed and connections closed, then sensor state flushed, subscribers told and the
 * bus left, and last the caller's pool and embedded PostgreSQL (a fast shutdown, a checkpoint).
 * Each step that finishes early leaves its time to the next.
 */
export function shutdownBudget(graceMs: number, deadlineMs: number): { drainUntil: number; flushUntil: number; realtimeUntil: number } {
  const reserve = Math.min(2_000, Math.floor(graceMs / 3));
  return {
    drainUntil: deadlineMs - reserve,
    flushUntil: deadlineMs - Math.floor((reserve * 3) / 4),
    realtimeUntil: deadlineMs - Math.floor(reserve / 2),
  };
}

/** True if p settles by deadlineMs (its rejection counts as settled), false if time runs out first. */
function settlesBy(p: Promise<unknown>, deadlineMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadlineMs - Date.now()));
  });
  return Promise.race([p.then(() => true, () => true), late]).finally(() => clearTimeout(timer));
}

function createBus(config: Readonly<Config>, log: Logger, instanceId: string): EventBus {
  if (config.redis.url === null) return new LocalBus(new LocalBroker(config.pubsub.retainEvents), instanceId);
  return new RedisBus({
    url: config.redis.url,
    keyPrefix: config.redis.keyPrefix,
    retainEvents: config.pubsub.retainEvents,
    offlineQueueMax: config.redis.offlineQueueMax,
    connectTimeoutMs: config.redis.connectTimeoutMs,
    instanceId,
    log,
  });
}
