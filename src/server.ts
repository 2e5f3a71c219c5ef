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
import { statsMethods } from './rpc/methods/stats.js';
import { RateLimiter } from './rpc/rateLimit.js';
import { LoginThrottle } from './auth/loginThrottle.js';
import { Observability } from './obs/observability.js';
import { Listener } from './net/listener.js';
import { ErrorCode } from './errors.js';
import { VERSION } from './version.js';

export interface ServerDeps {
  config: Readonly<Config>;
  log: Logger;
  db: pg.Pool;
  clock?: Clock;
}

export interface BoundPorts {
  rpc: number;
  http: number;
}

export class CarrelServer {
  readonly instanceId = randomUUID();
  readonly startedAt = new Date();
  readonly registry = new MethodRegistry();
  readonly tokens: TokenService;
  private readonly rpcSessions = new Set<RpcSession>();
  readonly rpcListener: Listener;
  readonly clock: Clock;
  readonly db: pg.Pool;
  /** Core emits committed changes here; live seats, the bus and notifications listen. */
  readonly coreEvents: CoreEventFanout;
  /** Metrics, readiness, the SLA line and the health/metrics HTTP port. */
  readonly obs: Observability;
  /** Request rate limits (config rateLimit); undefined when turned off. */
  readonly rateLimiter: RateLimiter | undefined;
  /** Failed-login slowdown for auth.login: check() before bcrypt, then recordFailure/Success. */
  readonly loginThrottle: LoginThrottle;
  private idleWaiters: Array<() => void> = [];
  private closing: Promise<void> | undefined;
  ports: BoundPorts = { rpc: 0, http: 0 };

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
    this.rateLimiter = config.rateLimit.enabled
      ? new RateLimiter({ rules: config.rateLimit.rules, maxTrackedUsers: config.rateLimit.maxTrackedUsers })
      : undefined;
    this.loginThrottle = new LoginThrottle({ ...config.loginThrottle, now: () => this.clock.now() });
    this.obs = new Observability({
      config,
      log,
      db: this.db,
      isMethod: (name) => this.registry.get(name) !== undefined,
      inFlight: () => this.inFlight,
      rateLimiter: this.rateLimiter,
      loginThrottle: this.loginThrottle,
    });
    this.registry.add(...statsMethods(() => this.obs.stats()));

    const dispatcher = new Dispatcher({
      registry: this.registry,
      tokens: this.tokens,
      requestTimeoutMs: config.limits.requestTimeoutMs,
      log,
      observe: this.obs.rpc.observe,
      admit: this.rateLimiter?.admit,
    });
    const limits = config.limits;
    this.rpcListener = new Listener({
      name: 'rpc',
      host: config.host,
      port: config.ports.rpc,
      maxConnections: limits.maxConnections,
      requestTimeoutMs: limits.requestTimeoutMs,
      connection: {
        maxFrameBytes: limits.maxFrameBytes,
        maxJsonDepth: limits.maxJsonDepth,
        idleTimeoutMs: limits.idleTimeoutMs,
        partialFrameTimeoutMs: limits.partialFrameTimeoutMs,
        writeHighWaterBytes: limits.writeHighWaterBytes,
      },
      refusalFrame: () =>
        encodeError(null, { code: ErrorCode.RESOURCE_EXHAUSTED, message: 'too many connections; try again later' }),
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
  }

  static async start(deps: ServerDeps): Promise<CarrelServer> {
    const server = new CarrelServer(deps);
    try {
      const http = await server.obs.start();
      server.ports = { rpc: (await server.rpcListener.listen()).port, http };
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
   * Graceful stop (DESIGN §7): stop accepting, stop reading new requests, let in-flight ones
   * finish (at most shutdown.graceMs), then close every connection. The pool belongs to the caller.
   */
  shutdown(): Promise<void> {
    this.closing ??= this.doShutdown();
    return this.closing;
  }

  private async doShutdown(): Promise<void> {
    const { log, config } = this.deps;
    this.obs.drain();
    await this.rpcListener.stopAccepting();
    for (const s of this.rpcSessions) s.conn.pauseReading();
    const drained = await this.waitForIdle(config.shutdown.graceMs);
    if (!drained) log.warn({ inFlight: this.inFlight }, 'shutdown grace ran out with requests in flight');
    this.rpcListener.closeAll();
    await this.obs.close();
  }

  private waitForIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0 || this.inFlight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
