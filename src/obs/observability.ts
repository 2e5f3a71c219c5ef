// Everything the operator sees of a running server (docs/operations.md, "Health and metrics"), in
// one object the composition root owns: the metrics registry with carrel's built-in families,
// per-method RPC figures, the readiness checks, the SLA line and the HTTP health/metrics port, and
// the JSON for server.stats. Figures owned elsewhere (pool, listeners, in-flight) are sampled when
// read.
//
// Plugging in more (sensor and subscriber ports, the event bus):
//   obs.addListener('sensor', sensorListener);              // connections open/accepted/refused
//   obs.registry.gauge('carrel_pubsub_queue_depth', '…', () => hub.queuedEvents());
//   const drops = obs.registry.counter('carrel_pubsub_dropped_total', '…'); drops.inc();
//   obs.readiness.replace('redis', () => bus.ping());
import { join } from 'node:path';
import type pg from 'pg';
import type { Config } from '../config/schema.js';
import type { LoginThrottle } from '../auth/loginThrottle.js';
import type { Logger } from './log.js';
import { MetricsRegistry, type Labels } from './metrics.js';
import { RpcMetrics, type MethodStats } from './rpcMetrics.js';
import { Readiness, eventLoopCheck, eventLoopLag, postgresProbe, redisProbe, type EventLoopLag, type PostgresProbe, type RedisProbe } from './health.js';
import { ObsHttpServer, type UpgradeHandler } from './httpServer.js';
import { SlaReporter } from './sla.js';
import { StaticSite } from '../http/staticSite.js';
import { projectRoot } from '../paths.js';

/** What a port's listener exposes for the connection gauges (src/net/listener.ts). */
export interface ListenerCounts {
  readonly connections: { readonly size: number };
  readonly acceptedCount: number;
  readonly refusedCount: number;
  /** The port's unfinished-frame budget (limits.maxPartialFrameBytesPerPort). */
  readonly partialFrames?: { readonly total: number; readonly evictions: number };
}

/**
 * What observability reads of the RPC rate limiter (RateLimiter in src/rpc/rateLimit.ts): obs
 * observes every layer and imports none of the protocol, so it names only the figures it shows.
 */
export interface RateLimitFigures {
  /** Requests refused so far, by rule name. */
  readonly limited: ReadonlyMap<string, number>;
  /** Users or addresses with a token bucket now, per keyed rule. */
  trackedKeys(): Array<{ rule: string; keys: number }>;
}

export interface ObservabilityDeps {
  config: Readonly<Config>;
  log: Logger;
  db: pg.Pool;
  /** Whether a method name is registered (only those get their own series). */
  isMethod: (name: string) => boolean;
  /** RPC requests currently running. */
  inFlight: () => number;
  rateLimiter?: RateLimitFigures;
  loginThrottle?: LoginThrottle;
  now?: () => number;
}

export interface ConnectionStats {
  open: number;
  accepted: number;
  refused: number;
}

export interface ServerStats {
  uptimeMs: number;
  requests: { total: number; inFlight: number; errors: Record<string, number> };
  methods: Record<string, MethodStats>;
  connections: Record<string, ConnectionStats>;
  pool: { total: number; idle: number; waiting: number };
  /** Requests refused by each rate-limit rule since start. */
  rateLimited: Record<string, number>;
  loginThrottle: { throttled: number; tracked: { accounts: number; addresses: number } } | null;
  /** Families registered by other modules (queues, drops, bus lag), by name. */
  custom: Record<string, number | Array<{ labels: Labels; value: number }>>;
}

export class Observability {
  readonly registry = new MetricsRegistry();
  readonly rpc: RpcMetrics;
  readonly readiness: Readiness;
  readonly sla: SlaReporter;
  private readonly listeners = new Map<string, ListenerCounts>();
  private readonly builtIn: Set<string>;
  private readonly startedMs: number;
  private http: ObsHttpServer | undefined;
  private redis: RedisProbe | undefined;
  private readonly postgres: PostgresProbe;
  private readonly loopLag: EventLoopLag = eventLoopLag();

  constructor(private readonly deps: ObservabilityDeps) {
    const { config, db, log } = deps;
    this.startedMs = this.now();
    this.rpc = new RpcMetrics(deps.isMethod);
    this.rpc.register(this.registry);
    const r = this.registry;
    r.gauge('carrel_rpc_in_flight', 'RPC requests being handled now.', () => deps.inFlight());
    const perPort = (pick: (l: ListenerCounts) => number) => () =>
      [...this.listeners].map(([port, l]) => ({ labels: { port }, value: pick(l) }));
    r.gauge('carrel_connections_open', 'Open connections, by port.', perPort((l) => l.connections.size));
    r.gauge('carrel_connections_accepted_total', 'Connections accepted since start, by port.', perPort((l) => l.acceptedCount), 'counter');
    r.gauge('carrel_connections_refused_total', 'Connections refused past limits.maxConnections, by port.', perPort((l) => l.refusedCount), 'counter');
    r.gauge('carrel_partial_frame_bytes', 'Bytes held in unfinished frames, by port.', perPort((l) => l.partialFrames?.total ?? 0));
    r.gauge(
      'carrel_partial_frame_evictions_total',
      'Connections closed RESOURCE_EXHAUSTED because the port held limits.maxPartialFrameBytesPerPort in unfinished frames, by port.',
      perPort((l) => l.partialFrames?.evictions ?? 0),
      'counter',
    );
    r.gauge('carrel_db_pool_connections', 'PostgreSQL pool clients open (idle or busy).', () => db.totalCount);
    r.gauge('carrel_db_pool_idle_connections', 'PostgreSQL pool clients idle.', () => db.idleCount);
    r.gauge('carrel_db_pool_waiting_requests', 'Queries waiting for a pool client.', () => db.waitingCount);
    r.gauge('carrel_process_resident_memory_bytes', 'Resident set size.', () => process.memoryUsage.rss());
    r.gauge('carrel_process_heap_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed);
    r.gauge('carrel_process_uptime_seconds', 'Seconds since the server started.', () => (this.now() - this.startedMs) / 1000);
    const limiter = deps.rateLimiter;
    if (limiter) {
      r.gauge('carrel_rate_limited_total', 'Requests refused RESOURCE_EXHAUSTED by a rate-limit rule, by rule.', () =>
        [...limiter.limited].map(([rule, value]) => ({ labels: { rule }, value })), 'counter');
      r.gauge('carrel_rate_limit_tracked_keys', 'Users or addresses with a token bucket, by per-user and per-address rule.', () =>
        limiter.trackedKeys().map((t) => ({ labels: { rule: t.rule }, value: t.keys })));
    }
    const throttle = deps.loginThrottle;
    if (throttle) {
      r.gauge('carrel_login_throttled_total', 'Logins refused because the account or address was locked.', () => throttle.throttled, 'counter');
      r.gauge('carrel_login_throttle_tracked_keys', 'Accounts and addresses with recent failed logins, by kind.', () => [
        { labels: { kind: 'account' }, value: throttle.tracked.accounts },
        { labels: { kind: 'address' }, value: throttle.tracked.addresses },
      ]);
    }
    r.gauge('carrel_event_loop_lag_seconds', 'Largest event loop lag within the last second (/readyz fails past http.readyMaxEventLoopLagMs).', () => this.loopLag.maxMs() / 1000);
    const port = (): ObsHttpServer | undefined => this.http;
    r.gauge('carrel_http_evictions_total', 'Health-port connections closed to make room, by reason: address (at http.maxConnectionsPerAddress), port (at http.maxConnections).', () => [
      { labels: { reason: 'address' }, value: port()?.evicted.address ?? 0 },
      { labels: { reason: 'port' }, value: port()?.evicted.port ?? 0 },
    ], 'counter');
    r.gauge('carrel_http_unauthorized_total', 'GET /metrics refused 401: no bearer token or a wrong one (http.metricsToken).', () => port()?.unauthorized ?? 0, 'counter');
    this.builtIn = new Set(Object.keys(r.values()));

    // Readiness is the instance's own (docs/http.md): PostgreSQL on a connection of its own, not
    // the request pool a client can fill; the event loop; Redis as an optional check.
    this.readiness = new Readiness(config.http.readyTimeoutMs);
    this.postgres = postgresProbe(db.options, config.http.readyTimeoutMs, log);
    this.readiness.add('postgres', this.postgres.check);
    this.readiness.add('eventLoop', eventLoopCheck(this.loopLag, config.http.readyMaxEventLoopLagMs));
    if (config.redis.url) {
      this.redis = redisProbe(config.redis.url, config.http.readyTimeoutMs, log);
      this.readiness.add('redis', this.redis.check, { required: false });
    }
    this.sla = new SlaReporter({
      metrics: this.rpc,
      targets: config.sla.targets,
      everyMs: config.sla.reportEveryMs,
      log,
      now: deps.now,
    });
  }

  /** Counts a port's connections in the carrel_connections_* families and server.stats. */
  addListener(port: string, listener: ListenerCounts): void {
    if (this.listeners.has(port)) throw new Error(`listener ${port} added twice`);
    this.listeners.set(port, listener);
  }

  /**
   * Starts the HTTP port and the SLA line; returns the bound HTTP port. `upgrade` takes the
   * WebSocket upgrades (src/net/wsGateway.ts).
   */
  async start(upgrade?: UpgradeHandler): Promise<number> {
    const { config, log } = this.deps;
    this.http = new ObsHttpServer({
      host: config.host,
      port: config.ports.http,
      headersTimeoutMs: config.http.headersTimeoutMs,
      maxConnections: config.http.maxConnections,
      maxConnectionsPerAddress: config.http.maxConnectionsPerAddress,
      metricsToken: config.http.metricsToken,
      metrics: this.registry,
      readiness: this.readiness,
      upgrade,
      log,
      site: await StaticSite.load(join(projectRoot, 'dist', 'web'), log),
    });
    this.addListener('http', this.http);
    this.loopLag.start();
    // Open the probe's connection now, so the first /readyz does not wait for it and a
    // PostgreSQL at max_connections later still has this one.
    this.postgres.start();
    const { port } = await this.http.listen();
    this.sla.start();
    return port;
  }

  /** Readiness turns 503 at once; the HTTP port stays up until close(). */
  drain(): void {
    this.readiness.draining = true;
  }

  async close(): Promise<void> {
    this.sla.stop();
    this.loopLag.stop();
    this.redis?.close();
    await Promise.all([this.http?.close(), this.postgres.close()]);
  }

  /** The JSON of server.stats: the same figures as /metrics, shaped for people and scripts. */
  stats(): ServerStats {
    const { db } = this.deps;
    const connections: Record<string, ConnectionStats> = {};
    for (const [port, l] of this.listeners) {
      connections[port] = { open: l.connections.size, accepted: l.acceptedCount, refused: l.refusedCount };
    }
    const custom: ServerStats['custom'] = {};
    for (const [name, samples] of Object.entries(this.registry.values())) {
      if (this.builtIn.has(name)) continue;
      const only = samples[0];
      custom[name] =
        samples.length === 1 && only && Object.keys(only.labels).length === 0 && !only.suffix
          ? only.value
          : samples.map((s) => ({ labels: s.suffix ? { ...s.labels, series: s.suffix.slice(1) } : s.labels, value: s.value }));
    }
    return {
      uptimeMs: Math.round(this.now() - this.startedMs),
      requests: { total: this.rpc.total, inFlight: this.deps.inFlight(), errors: this.rpc.errors() },
      methods: this.rpc.methods(),
      connections,
      pool: { total: db.totalCount, idle: db.idleCount, waiting: db.waitingCount },
      rateLimited: Object.fromEntries(this.deps.rateLimiter?.limited ?? []),
      loginThrottle: this.deps.loginThrottle
        ? { throttled: this.deps.loginThrottle.throttled, tracked: this.deps.loginThrottle.tracked }
        : null,
      custom,
    };
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }
}
