// The composition root (docs/architecture.md, "The composition root"): assemble() builds every
// part of a server in the order they need each other, each handed its collaborators when it is
// made — nothing is plugged in afterwards — and CarrelServer starts the parts and stops them in
// order. Everything else is handed what it needs.
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
import { SeatContexts } from './core/seatContexts.js';
import { SeatListing } from './core/seatListing.js';
import { SeatService } from './core/seats.js';
import { LiveSeats, type LiveSeatsOptions } from './core/liveSeats.js';
import { LiveView } from './core/liveView.js';
import { authMethods } from './rpc/methods/auth.js';
import { branchMethods } from './rpc/methods/branches.js';
import { seatMethods } from './rpc/methods/seats.js';
import { reservationMethods } from './rpc/methods/reservations.js';
import { adminMethods } from './rpc/methods/admin.js';
import { statsMethods } from './rpc/methods/stats.js';
import { reportMethods } from './rpc/methods/reports.js';
import { UtilizationReport } from './reports/utilization.js';
import { RateLimiter } from './rpc/rateLimit.js';
import { DbAdmission } from './db/admission.js';
import { LoginThrottle } from './auth/loginThrottle.js';
import { PasswordHasher } from './auth/passwordHasher.js';
import { Observability } from './obs/observability.js';
import { VERSION } from './version.js';
import type { EventBus } from './bus/bus.js';
import { LocalBroker, LocalBus } from './bus/localBus.js';
import { RedisBus } from './bus/redisBus.js';
import { Hub } from './pubsub/hub.js';
import { SensorCoalescer } from './sensors/coalescer.js';
import { SensorKeyring } from './sensors/sensorKeys.js';
import { SensorKeyStore } from './sensors/keyStore.js';
import { WsGateway } from './net/wsGateway.js';
import { PresenceHistory, writerStaleAfterMs } from './sensors/presenceHistory.js';
import { HistoryMaintenance } from './history/maintenance.js';
import { Realtime } from './realtime.js';
import { LiveDiscovery } from './live/discovery.js';
import { SensorTransitionRunner } from './live/sensorTransitions.js';
import { PresenceService } from './core/presence.js';
import { StrikeService } from './core/strikes.js';
import { registerLiveMetrics } from './live/liveMetrics.js';
import { registerCoreMetrics } from './obs/coreMetrics.js';

export interface ServerDeps {
  config: Readonly<Config>;
  log: Logger;
  db: pg.Pool;
  clock?: Clock;
  /** Whether the live model's timer runs (LiveSeats.tick); default: only on the system clock (tests tick by hand). */
  autoTick?: boolean;
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

/** What server.info says of this instance; the ports once they are bound. */
export class InstanceInfo {
  readonly instanceId = randomUUID();
  readonly startedAt = new Date();
  private bound: BoundPorts = { rpc: 0, sensor: 0, pubsub: 0, http: 0 };

  constructor(private readonly config: Readonly<Config>) {}

  /** The ports the server listens on (0 until they are open). */
  get ports(): BoundPorts {
    return { ...this.bound };
  }

  /** The ports are open (CarrelServer.start). */
  portsBound(ports: BoundPorts): void {
    this.bound = { ...ports };
  }

  /** server.info's answer. */
  describe() {
    const { limits } = this.config;
    return {
      name: 'carrel',
      version: VERSION,
      instanceId: this.instanceId,
      startedAt: this.startedAt.toISOString(),
      ports: { ...this.bound },
      limits: {
        maxFrameBytes: limits.maxFrameBytes,
        maxInFlightPerConnection: limits.maxInFlightPerConnection,
        maxConnections: limits.maxConnections,
        requestTimeoutMs: limits.requestTimeoutMs,
      },
    };
  }
}

/** The booking core: services over PostgreSQL; committed changes are announced on `events`. */
export interface BookingCore {
  /** The listing caches, the live model and the bus listen here. */
  events: CoreEventFanout;
  tokens: TokenService;
  /** Failed-login slowdown for auth.login. */
  loginThrottle: LoginThrottle;
  /** bcrypt on worker threads behind bounded queues (auth.hashWorkers, auth.maxQueuedHashJobs). */
  passwords: PasswordHasher;
  accounts: AccountService;
  /** Offers slots that cancels and early check-outs free. */
  waitlist: Waitlist;
  /** No-shows, completions, lapsed offers; ticks every lifecycle.tickMs when enabled. */
  lifecycle: LifecycleWorker;
  reservations: ReservationService;
  /** seats.list and seats.get, answering `live` from the live model. */
  listing: SeatListing;
  /** Branches (counts from the live model), availability, admin changes. */
  seats: SeatService;
}

/** The live half: the one owner of live state and everything that reads or moves it. */
export interface LiveHalf {
  bus: EventBus;
  /** The live model: every seat's state now and as last published. */
  model: LiveSeats;
  /** The listings' answers from the model. */
  view: LiveView;
  hub: Hub;
  discovery: LiveDiscovery;
  transitions: SensorTransitionRunner;
  keyring: SensorKeyring;
  coalescer: SensorCoalescer;
  /** Partitions, retention, daily sums and dead writers of the occupancy history (history.enabled). */
  history: HistoryMaintenance | undefined;
  /** The sensor and subscriber ports and the path of a reading between them. */
  realtime: Realtime;
}

/** The request half: the RPC port and what every request passes. */
export interface RequestHalf {
  /** Every RPC method, by name. */
  registry: MethodRegistry;
  /** Request rate limits (config rateLimit); undefined when turned off. */
  rateLimiter: RateLimiter | undefined;
  /** The fair gate requests pass to reach the database pool (config admission). */
  dbAdmission: DbAdmission;
  /** The RPC port: its listener and sessions. */
  rpc: RpcPort;
  /** /ws/rpc and /ws/live on the HTTP port, served by the RPC and subscriber ports (docs/protocol.md). */
  webSockets: WsGateway;
}

export interface ServerParts {
  config: Readonly<Config>;
  log: Logger;
  info: InstanceInfo;
  core: BookingCore;
  live: LiveHalf;
  requests: RequestHalf;
  /** Metrics, readiness, the SLA line and the health/metrics HTTP port. */
  obs: Observability;
}

/**
 * Builds every part, each handed its collaborators when it is made. The order follows one cycle
 * in the domain — a reading can move a booking, a booking moves a seat's live state, and the
 * listings answer from the live state — so the bookings come first, then the live model (its
 * sensor transitions go to the bookings), then the listings (they read the model), then the live
 * half's ports, and last the request half. Nothing listens yet.
 */
export function assemble(deps: ServerDeps): ServerParts {
  const { config, log, db } = deps;
  const clock = deps.clock ?? systemClock;
  const now = () => clock.now();
  const info = new InstanceInfo(config);

  // The booking core, up to the bookings the sensors move. Everything reaches the database through
  // Db (src/db/db.ts) but the sensor coalescer's batched writes and the readiness probe.
  const sql = new Db(db);
  const events = new CoreEventFanout((err) => log.error({ err }, 'core event listener failed'));
  const core = { db: sql, clock, rules: config.rules, events };
  const tokens = new TokenService({ secret: config.auth.jwtSecret, ttlSec: config.auth.tokenTtlSec, now });
  const waitlist = new Waitlist({ db: sql, clock, events, config: config.waitlist, rules: config.rules, log });
  const lifecycle = new LifecycleWorker({
    db: sql,
    clock,
    events,
    waitlist,
    // A booking not checked in when its check-in window closes is a no-show: one setting.
    config: { ...config.lifecycle, noShowGraceMinutes: config.rules.checkInGraceMinutes },
    strikes: config.rules.strikes,
    log,
  });
  const loginThrottle = new LoginThrottle({ ...config.loginThrottle, now });
  const passwords = new PasswordHasher({
    workers: config.auth.hashWorkers,
    maxQueuedJobs: config.auth.maxQueuedHashJobs,
    maxQueuedRegisterJobs: config.auth.maxQueuedRegisterJobs,
    registerWorkerShare: config.auth.registerWorkerShare,
  });
  const accounts = new AccountService({ db: sql, bcryptCost: config.auth.bcryptCost, hasher: passwords, now });
  const contexts = new SeatContexts({ db: sql, clock, contextCacheMs: config.discovery.seatContextCacheMs });
  const reservations = new ReservationService({
    ...core,
    seats: contexts,
    log,
    booking: config.booking,
    random: deps.random,
    onSlotFreed: (slot, deadline) => waitlist.onSlotFreed(slot, deadline),
  });
  // What frees seat time here: the best-available searches known full forget its branch (and, from
  // other instances, through the live half's remote facts).
  events.on(reservations.onCoreEvent);

  // The live model, the one owner of live state (docs/architecture.md): its changes go to the
  // bus, the check-ins and releases it asks for to the bookings. The hub and the listings read it.
  const bus = deps.bus ?? createBus(config, log, info.instanceId);
  const presence = new PresenceService({ db: sql, events, seats: contexts, config: config.presence });
  const transitions = new SensorTransitionRunner(reservations, presence, log);
  // What the sensors say of each seat, kept as intervals (docs/reports.md); written with the
  // coalescer's batches.
  const staleAfterMs = writerStaleAfterMs(config.sensors.flushEveryMs);
  const presenceHistory = config.history.enabled
    ? new PresenceHistory({ instance: info.instanceId, staleAfterMs, blipMs: config.sensors.flushEveryMs, now }, log)
    : undefined;
  const model = new LiveSeats(liveSeatsOptions(config, info.instanceId), {
    changes: bus,
    transitions,
    presence: presenceHistory && ((seatId, p, atMs, previous) => presenceHistory.record(seatId, p, atMs, previous)),
  });
  const hub = new Hub({ retainEvents: config.pubsub.retainEvents }, { tokens, published: model, history: bus, now, log });
  const discovery = new LiveDiscovery({ db: sql, clock, bus, log, minIntervalMs: config.live.refreshMinIntervalMs, model, hub });
  const view = new LiveView(model, clock, discovery);

  // The listings, answering from the live model.
  const listing = new SeatListing({
    ...core,
    live: view,
    cache: { enabled: config.discovery.seatListCache, maxEntries: config.discovery.seatListCacheMaxEntries, maxBytes: config.discovery.seatListCacheMaxBytes },
  });
  events.on(listing.onCoreEvent);
  const seats = new SeatService({ ...core, listing, live: view, contexts, branchListCacheMs: config.discovery.branchListCacheMs });

  // The live half's ports and the path of a reading.
  const keyring = new SensorKeyring({
    db: sql,
    keys: config.sensors.keys,
    refuse: config.sensors.refuseKeys,
    throttle: config.sensors.helloThrottle,
    log,
    now,
  });
  const coalescer = new SensorCoalescer(db, { flushEveryMs: config.sensors.flushEveryMs, history: presenceHistory }, log);
  const history = config.history.enabled ? new HistoryMaintenance({ db, clock, log, retentionDays: config.history.retentionDays, staleAfterMs }) : undefined;
  const realtime = new Realtime({
    config,
    log,
    db: sql,
    clock,
    coreEvents: events,
    bus,
    model,
    hub,
    discovery,
    transitions,
    keyring,
    coalescer,
    listings: listing,
    bookings: reservations,
    autoTick: deps.autoTick ?? clock === systemClock,
  });

  // The request half: limits, observability, the methods, the port.
  const rateLimiter = config.rateLimit.enabled
    ? new RateLimiter({ rules: config.rateLimit.rules, maxTrackedKeys: config.rateLimit.maxTrackedKeys })
    : undefined;
  const dbAdmission = new DbAdmission({
    slots: config.admission.dbSlots ?? config.db.poolSize,
    perClient: config.admission.dbPerClient,
    queuePerClient: config.admission.dbQueuePerClient,
    maxQueued: config.admission.dbMaxQueued,
  });
  const strikes = new StrikeService({ db: sql, rules: config.rules, now });
  const registry = new MethodRegistry({
    // Admin methods confirm the caller's role from the users table on every call (a token's
    // claim outlives a demotion); a token whose account is gone is UNAUTHENTICATED (docs/rules.md).
    isAdmin: async (id, deadline) => {
      const user = await accounts.getUser(id, deadline);
      if (!user) throw accountGone();
      return user.role === 'admin';
    },
  });
  const sessions = new RpcSessions();
  const obs = new Observability({
    config,
    log,
    db,
    isMethod: (name) => registry.get(name) !== undefined,
    inFlight: () => sessions.inFlight,
    rateLimiter,
    loginThrottle,
  });
  registry.add(
    ...systemMethods(() => info.describe()),
    ...waitlistMethods(waitlist),
    ...authMethods({ accounts, tokens, throttle: loginThrottle, strikes }),
    ...branchMethods({ seats }),
    ...seatMethods({ seats, listing }),
    ...reservationMethods({ reservations }),
    ...adminMethods({
      seats,
      sensorKeys: new SensorKeyStore({ db: sql, now }),
      strikes,
      onSensorKeyRevoked: () => realtime.revokedKeys.sweep(),
    }),
    ...statsMethods(() => obs.stats(), (id, deadline) => refuseIfAccountGone(sql, id, deadline)),
    ...reportMethods({ utilization: new UtilizationReport({ db: sql, clock, staleAfterMs }) }),
  );
  const dispatcher = new Dispatcher({
    registry,
    tokens,
    requestTimeoutMs: config.limits.requestTimeoutMs,
    log,
    observe: obs.rpc.observe,
    admit: rateLimiter?.admit,
    dbAdmission,
    quietOnRefusalMaxMs: config.admission.quietOnRefusalMaxMs,
  });
  const rpc = new RpcPort({ config, log, dispatcher, sessions, onBadFrame: () => obs.rpc.recordFrameError() });

  const live: LiveHalf = { bus, model, view, hub, discovery, transitions, keyring, coalescer, history, realtime };
  obs.addListener('rpc', rpc.listener);
  const webSockets = new WsGateway({ routes: { '/ws/rpc': rpc.listener, '/ws/live': realtime.pubsubListener }, allowedOrigins: config.http.allowedOrigins, log });
  webSockets.registerMetrics(obs.registry);
  registerLiveMetrics(obs, live);
  registerCoreMetrics(obs.registry, { listing, reservations, dbAdmission, passwords });
  return {
    config,
    log,
    info,
    core: { events, tokens, loginThrottle, passwords, accounts, waitlist, lifecycle, reservations, listing, seats },
    live,
    requests: { registry, rateLimiter, dbAdmission, rpc, webSockets },
    obs,
  };
}

/** The live model's settings, from the sensors and rules sections. */
function liveSeatsOptions(config: Readonly<Config>, instanceId: string): LiveSeatsOptions {
  return {
    instanceId,
    offlineAfterMs: config.sensors.offlineAfterMs,
    awayEndingMs: config.presence.awayEndingMinutes * 60_000,
    autoCheckIn: config.sensors.autoCheckIn,
    autoRelease: config.sensors.autoRelease,
    checkInWindow: {
      opensBeforeMs: config.rules.checkInOpensBeforeMinutes * 60_000,
      graceMs: config.rules.checkInGraceMinutes * 60_000,
    },
  };
}

/** A running server: its parts (assemble), started in order and stopped in order. */
export class CarrelServer {
  private closing: Promise<void> | undefined;

  private constructor(private readonly parts: ServerParts) {}

  /** Assembles the parts (unless given them), opens the ports and starts the lifecycle worker. */
  static async start(deps: ServerDeps, parts: ServerParts = assemble(deps)): Promise<CarrelServer> {
    const server = new CarrelServer(parts);
    try {
      await server.open();
    } catch (err) {
      await server.shutdown();
      throw err;
    }
    return server;
  }

  get instanceId(): string {
    return this.parts.info.instanceId;
  }

  /** The bound ports (known once start has resolved). */
  get ports(): BoundPorts {
    return this.parts.info.ports;
  }

  /**
   * Graceful stop (docs/operations.md, "Running as a service"): stop accepting, stop reading new
   * requests, let in-flight ones finish and their replies go out, then close every connection — all
   * by deadlineMs (default: shutdown.graceMs from now), keeping the last part of the grace for the
   * caller to close the pool (and an embedded PostgreSQL) in. The pool belongs to the caller.
   */
  shutdown(deadlineMs?: number): Promise<void> {
    this.closing ??= this.doShutdown(deadlineMs ?? Date.now() + this.parts.config.shutdown.graceMs);
    return this.closing;
  }

  /** The history's upkeep, the live half (the model loads, the bus starts), then the health port, then the RPC port. */
  private async open(): Promise<void> {
    const { info, live, obs, requests, core, config } = this.parts;
    await live.history?.start();
    const ports = await live.realtime.start();
    const http = await obs.start(requests.webSockets.upgrade);
    info.portsBound({ rpc: (await requests.rpc.listener.listen()).port, ...ports, http });
    if (config.lifecycle.enabled) core.lifecycle.start();
  }

  private async doShutdown(deadlineMs: number): Promise<void> {
    const { log, config, obs, requests, live, core } = this.parts;
    const budget = shutdownBudget(config.shutdown.graceMs, deadlineMs);
    obs.drain();
    const rpc = requests.rpc;
    await Promise.all([rpc.listener.stopAccepting(), live.realtime.stopAccepting()]);
    rpc.sessions.drain();
    // The lifecycle's tick in progress is awaited as well: the caller closes the pool next.
    const drained = await settlesBy(Promise.all([rpc.sessions.idle(), core.lifecycle.stop()]), budget.drainUntil);
    if (!drained) log.warn({ inFlight: rpc.sessions.inFlight }, 'shutdown grace ran out with requests in flight');
    // Each connection sends what it has queued, then closes; a peer that will not take it is cut.
    if (!(await settlesBy(rpc.listener.closeAll(), budget.flushUntil))) rpc.listener.destroyAll();
    await core.passwords.close();
    await live.history?.stop();
    // After the requests: their committed changes still reach subscribers and other instances.
    if (!(await settlesBy(live.realtime.shutdown(), budget.realtimeUntil))) {
      log.warn('sensor flush and subscriber close ran past their share of the shutdown grace');
    }
    await obs.close();
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
