// The composition root: the one file that wires config, database, auth, methods and ports
// together. Everything else is handed what it needs.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Config } from './config/schema.js';
import type { Logger } from './obs/log.js';
import { TokenService } from './auth/tokens.js';
import { systemClock, type Clock } from './core/clock.js';
import { CoreEventFanout } from './core/events.js';
import { encodeError } from './rpc/dispatch.js';
import { Dispatcher } from './rpc/dispatch.js';
import { MethodRegistry } from './rpc/registry.js';
import { RpcSession } from './rpc/session.js';
import { systemMethods } from './rpc/methods/system.js';
import { waitlistMethods } from './rpc/methods/waitlist.js';
import { Waitlist } from './core/waitlist.js';
import { LifecycleWorker } from './core/lifecycle.js';
import { AccountService } from './core/accounts.js';
import { refuseIfAccountGone } from './core/accountCheck.js';
import { accountGone } from './db/errors.js';
import { ReservationService } from './core/reservations.js';
import { SeatListing } from './core/seatListing.js';
import { SeatService } from './core/seats.js';
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
import { Listener } from './net/listener.js';
import { ErrorCode } from './errors.js';
import { VERSION } from './version.js';
import type { EventBus } from './bus/bus.js';
import { LocalBroker, LocalBus } from './bus/localBus.js';
import { RedisBus } from './bus/redisBus.js';
import { Realtime } from './realtime.js';
import { SensorKeyStore } from './sensors/keyStore.js';

export interface ServerDeps {
  config: Readonly<Config>;
  log: Logger;
  db: pg.Pool;
  clock?: Clock;
  /** The event bus; default: RedisBus when redis.url is set, else an in-process LocalBus. */
  bus?: EventBus;
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
  /**
   * Admin methods confirm the caller's role from the users table on every call (a token's claim
   * outlives a demotion); a token whose account is gone is UNAUTHENTICATED (docs/rules.md).
   */
  readonly registry = new MethodRegistry({
    isAdmin: async (id, deadline) => {
      const user = await this.accounts.getUser(id, deadline);
      if (!user) throw accountGone();
      return user.role === 'admin';
    },
  });
  readonly tokens: TokenService;
  private readonly rpcSessions = new Set<RpcSession>();
  readonly rpcListener: Listener;
  readonly clock: Clock;
  readonly db: pg.Pool;
  /** Core emits committed changes here; live seats, the bus and notifications listen. */
  readonly coreEvents: CoreEventFanout;
  /** The waitlist; `waitlist.onSlotFreed` is the hook for code that frees a slot (cancel, check-out). */
  readonly waitlist: Waitlist;
  /** No-shows, completions, lapsed offers (docs/protocol.md); ticks every lifecycle.tickMs when enabled. */
  readonly lifecycle: LifecycleWorker;
  /** bcrypt on worker threads behind a bounded queue (auth.hashWorkers, auth.maxQueuedHashJobs). */
  readonly passwords: PasswordHasher;
  /** The reservation core: accounts, seats (and the cached listing), reservations. */
  readonly accounts: AccountService;
  readonly seatListing: SeatListing;
  readonly seats: SeatService;
  /** Others hook in here: onSlotFreed (waitlist), checkInBySensor / releaseBySensor (sensors). */
  readonly reservations: ReservationService;
  /** Live seats: the sensor and subscriber ports, the live model, the hub and the bus (docs/architecture.md). */
  readonly realtime: Realtime;
  /** Metrics, readiness, the SLA line and the health/metrics HTTP port. */
  readonly obs: Observability;
  /** Request rate limits (config rateLimit); undefined when turned off. */
  readonly rateLimiter: RateLimiter | undefined;
  /** The fair gate requests pass to reach the database pool (config admission). */
  readonly dbAdmission: DbAdmission;
  /** Failed-login slowdown for auth.login: begin() before bcrypt (checks and reserves), then settle the attempt. */
  readonly loginThrottle: LoginThrottle;
  private idleWaiters: Array<() => void> = [];
  private closing: Promise<void> | undefined;
  ports: BoundPorts = { rpc: 0, sensor: 0, pubsub: 0, http: 0 };

  private constructor(private readonly deps: ServerDeps) {
    const { config, log } = deps;
    this.clock = deps.clock ?? systemClock;
    this.db = deps.db;
    this.coreEvents = new CoreEventFanout((err) => log.error({ err }, 'core event listener failed'));
    this.tokens = new TokenService({
      secret: config.auth.jwtSecret,
      ttlSec: config.auth.tokenTtlSec,
      now: () => this.clock.now(),
    });
    this.registry.add(...systemMethods(() => this.info()));
    this.waitlist = new Waitlist({ db: this.db, clock: this.clock, events: this.coreEvents, config: config.waitlist, rules: config.rules, log });
    this.lifecycle = new LifecycleWorker({
      db: this.db,
      clock: this.clock,
      events: this.coreEvents,
      waitlist: this.waitlist,
      // A booking not checked in when its check-in window closes is a no-show: one setting.
      config: { ...config.lifecycle, noShowGraceMinutes: config.rules.checkInGraceMinutes },
      log,
    });
    this.registry.add(...waitlistMethods(this.waitlist));
    this.loginThrottle = new LoginThrottle({ ...config.loginThrottle, now: () => this.clock.now() });
    const core = { db: deps.db, clock: this.clock, rules: config.rules, events: this.coreEvents };
    this.passwords = new PasswordHasher({
      workers: config.auth.hashWorkers,
      maxQueuedJobs: config.auth.maxQueuedHashJobs,
      maxQueuedRegisterJobs: config.auth.maxQueuedRegisterJobs,
      registerWorkerShare: config.auth.registerWorkerShare,
    });
    this.accounts = new AccountService({ db: deps.db, bcryptCost: config.auth.bcryptCost, hasher: this.passwords, now: () => this.clock.now() });
    this.seatListing = new SeatListing({
      ...core,
      cache: { enabled: config.discovery.seatListCache, maxEntries: config.discovery.seatListCacheMaxEntries, maxBytes: config.discovery.seatListCacheMaxBytes },
    });
    this.coreEvents.on(this.seatListing.onCoreEvent);
    this.seats = new SeatService({ ...core, listing: this.seatListing, contextCacheMs: config.discovery.seatContextCacheMs, branchListCacheMs: config.discovery.branchListCacheMs });
    this.reservations = new ReservationService({ ...core, seats: this.seats, log, onSlotFreed: this.waitlist.onSlotFreed });
    this.registry.add(
      ...authMethods({ accounts: this.accounts, tokens: this.tokens, throttle: this.loginThrottle }),
      ...branchMethods({ seats: this.seats }),
      ...seatMethods({ seats: this.seats, listing: this.seatListing }),
      ...reservationMethods({ reservations: this.reservations }),
      ...adminMethods({
        seats: this.seats,
        sensorKeys: new SensorKeyStore({ db: deps.db, now: () => this.clock.now() }),
        onSensorKeyRevoked: () => this.realtime.revokedKeys.sweep(),
      }),
    );
    this.realtime = new Realtime({
      config,
      log,
      db: deps.db,
      clock: this.clock,
      tokens: this.tokens,
      coreEvents: this.coreEvents,
      bus: deps.bus ?? createBus(config, log, this.instanceId),
      instanceId: this.instanceId,
      autoTick: this.clock === systemClock,
      reservations: this.reservations,
      onBranchChanged: (branchId) => this.seatListing.invalidate(branchId),
    });
    this.seats.liveCounts = (branchId, sqlTotal) => this.realtime.liveCounts(branchId, sqlTotal);
    this.rateLimiter = config.rateLimit.enabled
      ? new RateLimiter({ rules: config.rateLimit.rules, maxTrackedKeys: config.rateLimit.maxTrackedKeys })
      : undefined;
    this.dbAdmission = new DbAdmission({
      slots: config.admission.dbSlots ?? config.db.poolSize,
      perClient: config.admission.dbPerClient,
      queuePerClient: config.admission.dbQueuePerClient,
      maxQueued: config.admission.dbMaxQueued,
    });
    this.obs = new Observability({
      config,
      log,
      db: this.db,
      isMethod: (name) => this.registry.get(name) !== undefined,
      inFlight: () => this.inFlight,
      rateLimiter: this.rateLimiter,
      loginThrottle: this.loginThrottle,
    });
    this.registry.add(...statsMethods(() => this.obs.stats(), (id, deadline) => refuseIfAccountGone(this.db, id, deadline)));

    const dispatcher = new Dispatcher({
      registry: this.registry,
      tokens: this.tokens,
      requestTimeoutMs: config.limits.requestTimeoutMs,
      log,
      observe: this.obs.rpc.observe,
      admit: this.rateLimiter?.admit,
      dbAdmission: this.dbAdmission,
      quietOnRefusalMaxMs: config.admission.quietOnRefusalMaxMs,
    });
    const limits = config.limits;
    this.rpcListener = new Listener({
      name: 'rpc',
      host: config.host,
      port: config.ports.rpc,
      maxConnections: limits.maxConnections,
      maxPartialFrameBytes: limits.maxPartialFrameBytesPerPort,
      requestTimeoutMs: limits.requestTimeoutMs,
      connection: {
        maxFrameBytes: limits.maxFrameBytes,
        maxJsonDepth: limits.maxJsonDepth,
        idleTimeoutMs: limits.idleTimeoutMs,
        partialFrameTimeoutMs: limits.partialFrameTimeoutMs,
        writeHighWaterBytes: limits.writeHighWaterBytes,
      },
      refusalFrame: (message) => encodeError(null, { code: ErrorCode.RESOURCE_EXHAUSTED, message }),
      onConnection: (conn) => {
        const session = new RpcSession(conn, dispatcher, {
          maxInFlight: limits.maxInFlightPerConnection,
          requestTimeoutMs: limits.requestTimeoutMs,
          onIdle: () => this.notifyIdle(),
          onBadFrame: () => this.obs.rpc.recordFrameError(),
          onClose: (s) => {
            this.rpcSessions.delete(s);
            this.notifyIdle();
          },
        });
        this.rpcSessions.add(session);
      },
      log,
    });
    this.obs.addListener('rpc', this.rpcListener);
    this.registerLiveMetrics();
    const listing = this.seatListing;
    this.obs.registry.gauge('carrel_seat_list_cache_bytes', 'bytes of serialised seats.list answers cached (discovery.seatListCacheMaxBytes)', () => listing.cacheSize().bytes);
    this.obs.registry.gauge('carrel_seat_list_cache_entries', 'seats.list answers cached', () => listing.cacheSize().entries);
    this.obs.registry.gauge('carrel_seat_list_cache_hits_total', 'seats.list answered from the cache', () => listing.stats.hits, 'counter');
    this.obs.registry.gauge('carrel_seat_list_cache_misses_total', 'seats.list read from PostgreSQL', () => listing.stats.misses, 'counter');
    const gate = this.dbAdmission;
    this.obs.registry.gauge('carrel_db_admission_in_use', 'pooled connections held by requests (admission.dbSlots)', () => gate.inUse);
    this.obs.registry.gauge('carrel_db_admission_waiting', 'requests waiting their turn for a database connection, and the clients they belong to', () => {
      const w = gate.waiting();
      return [
        { labels: { of: 'requests' }, value: w.requests },
        { labels: { of: 'clients' }, value: w.clients },
      ];
    });
    this.obs.registry.gauge('carrel_db_admission_shed_total', 'requests refused RESOURCE_EXHAUSTED because their client\'s or the whole database queue was full', () => gate.stats.shed, 'counter');
  }

  /** The live half's figures on /metrics and in server.stats (docs/operations.md, "Metrics"). */
  private registerLiveMetrics(): void {
    const { realtime, obs } = this;
    const r = obs.registry;
    const hub = realtime.hub;
    obs.addListener('sensor', realtime.sensorListener);
    obs.addListener('pubsub', realtime.pubsubListener);
    r.gauge('carrel_pubsub_subscribers', 'subscribed connections', () => hub.stats.subscribers);
    r.gauge('carrel_pubsub_queued_bytes', 'bytes waiting for subscribers: ring buffers plus unsent socket bytes', () => hub.queuedBytes());
    r.gauge('carrel_pubsub_queued_events', 'events waiting in subscriber queues (rings behind congested sockets)', () => hub.queuedEvents().total);
    r.gauge('carrel_pubsub_queue_depth_max', 'events waiting in the deepest subscriber queue', () => hub.queuedEvents().deepest);
    r.gauge('carrel_pubsub_events_total', 'seat events published to subscribers', () => hub.stats.eventsPublished, 'counter');
    r.add({
      name: 'carrel_pubsub_delivery_seconds',
      help: 'from a seat event published here (a sensor reading read) to its write to each subscriber socket',
      type: 'histogram',
      samples: () => hub.deliveryLatency.samples(),
    });
    r.gauge('carrel_pubsub_delivery_p99_seconds', 'p99 of carrel_pubsub_delivery_seconds since start (its bucket bound)', () => hub.deliveryLatency.quantile(0.99));
    r.gauge('carrel_pubsub_dropped_total', 'events dropped from full subscriber queues (drop-oldest)', () => hub.stats.drops, 'counter');
    r.gauge('carrel_pubsub_slow_consumers_total', 'subscribers cut off with SLOW_CONSUMER', () => hub.stats.slowConsumers, 'counter');
    r.gauge('carrel_sensor_readings_total', 'sensor readings applied (rate() gives readings per second)', () => realtime.counters.readings, 'counter');
    r.gauge('carrel_sensor_hello_refused_total', 'sensor hellos refused: unknownKey (wrong or revoked key), throttled (address locked after wrong keys)', () => [
      { labels: { reason: 'unknownKey' }, value: realtime.keyring.refused.unknownKey },
      { labels: { reason: 'throttled' }, value: realtime.keyring.refused.throttled },
    ], 'counter');
    r.gauge('carrel_sensor_stale_readings_total', 'stale or repeated sensor readings ignored', () => realtime.counters.staleReadings, 'counter');
    r.gauge(
      'carrel_sensor_readings_refused_total',
      'sensor readings refused, by the per-reading code in the ack (docs/sensors.md)',
      () => Object.entries(realtime.refusedReadings).map(([reason, value]) => ({ labels: { reason }, value })),
      'counter',
    );
    r.gauge('carrel_sensor_revoked_closed_total', 'sensor connections closed because their key was revoked', () => realtime.revokedKeys.closed, 'counter');
    r.gauge('carrel_bus_connected', '1 while the event bus reaches the other instances', () => (realtime.busStats().connected ? 1 : 0));
    const passwords = this.passwords;
    r.gauge('carrel_auth_hash_jobs', 'password jobs, running on a worker or queued for one, by lane (login compares, register hashes)', () =>
      Object.entries(passwords.lanes).flatMap(([lane, l]) => [
        { labels: { lane, state: 'running' }, value: l.running },
        { labels: { lane, state: 'queued' }, value: l.queued },
      ]));
    r.gauge('carrel_auth_hash_refused_total', 'logins and registrations refused RESOURCE_EXHAUSTED: their hash lane full, by lane', () =>
      Object.entries(passwords.lanes).map(([lane, l]) => ({ labels: { lane }, value: l.refused })), 'counter');
    r.gauge('carrel_sensor_readings_per_second', 'sensor readings applied per second, over the last 10 s', () => realtime.readingRate.perSecond());
    r.gauge('carrel_bus_queued_events', 'events waiting for the bus to come back, not yet sent to the other instances', () => realtime.busStats().queued);
    r.gauge('carrel_bus_lag_seconds', 'bus lag of the latest seat event delivered: from its publish on any instance to its delivery here', () => realtime.lastBusLagMs / 1000);
    r.add({
      name: 'carrel_bus_delivery_lag_seconds',
      help: 'bus lag of seat events delivered here, from their publish on any instance (catch-up after an outage not counted)',
      type: 'histogram',
      samples: () => realtime.busLag.samples(),
    });
    r.gauge('carrel_bus_dropped_total', 'events dropped while the bus was away (redis.offlineQueueMax)', () => realtime.busStats().dropped, 'counter');
  }

  static async start(deps: ServerDeps): Promise<CarrelServer> {
    const server = new CarrelServer(deps);
    try {
      const live = await server.realtime.start();
      const http = await server.obs.start();
      server.ports = { rpc: (await server.rpcListener.listen()).port, ...live, http };
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

  get inFlight(): number {
    let n = 0;
    for (const s of this.rpcSessions) n += s.inFlightCount;
    return n;
  }

  get connectionCount(): number {
    return this.rpcListener.connections.size;
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
    await Promise.all([this.rpcListener.stopAccepting(), this.realtime.stopAccepting()]);
    for (const s of this.rpcSessions) s.drain();
    // The lifecycle's tick in progress is awaited as well: the caller closes the pool next.
    const drained = await settlesBy(Promise.all([this.waitForIdle(), this.lifecycle.stop()]), budget.drainUntil);
    if (!drained) log.warn({ inFlight: this.inFlight }, 'shutdown grace ran out with requests in flight');
    // Each connection sends what it has queued, then closes; a peer that will not take it is cut.
    if (!(await settlesBy(this.rpcListener.closeAll(), budget.flushUntil))) this.rpcListener.destroyAll();
    await this.passwords.close();
    // After the requests: their committed changes still reach subscribers and other instances.
    if (!(await settlesBy(this.realtime.shutdown(), budget.realtimeUntil))) {
      log.warn('sensor flush and subscriber close ran past their share of the shutdown grace');
    }
    await this.obs.close();
  }

  private waitForIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0 || this.inFlight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
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
