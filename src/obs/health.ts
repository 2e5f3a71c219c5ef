// Readiness (docs/http.md): named checks of the instance itself — PostgreSQL reached
// on a connection of its own, the event loop's lag, Redis when configured — each bounded by a
// timeout so a hung dependency reads as "down" instead of hanging the probe. Concurrent probes
// share one run, so a load balancer probing hard cannot pile queries onto a struggling database.
// Other parts add their own checks with add(name, fn); a check added with { required: false }
// (Redis) reports "degraded" when it fails and leaves the server ready.
import pg from 'pg';
import { Redis } from 'ioredis';
import type { Logger } from './log.js';

/** Resolves when the dependency answered; rejects (or never settles) when it is down. */
export type HealthCheck = () => Promise<unknown>;

export interface CheckResult {
  ok: boolean;
  ms: number;
  /** A short reason (an error code such as ECONNREFUSED, or "timeout"); never a stack or SQL. */
  error?: string;
}

export interface ReadinessReport {
  /** Every required check passed (and not shutting down). */
  ready: boolean;
  /** Checks that failed without making the server unready (e.g. Redis: docs/http.md). */
  degraded: string[];
  checks: Record<string, CheckResult>;
}

export interface CheckOptions {
  /**
   * False for a dependency the server keeps serving without (Redis: each instance serves its own
   * clients and catches up later, docs/operations.md "Redis and several instances"). Its failure is
   * reported as degraded, and /readyz stays 200: were it 503, a load balancer would drain every
   * instance at once when Redis goes.
   */
  required?: boolean;
}

export class Readiness {
  private readonly checks = new Map<string, HealthCheck>();
  private readonly optional = new Set<string>();
  private running: Promise<ReadinessReport> | undefined;
  /** Set at shutdown, so load balancers stop sending before the ports close. */
  draining = false;

  constructor(private readonly timeoutMs: number) {}

  add(name: string, check: HealthCheck, opts: CheckOptions = {}): void {
    if (this.checks.has(name)) throw new Error(`readiness check ${name} added twice`);
    this.checks.set(name, check);
    if (opts.required === false) this.optional.add(name);
  }

  replace(name: string, check: HealthCheck): void {
    this.checks.set(name, check);
  }

  run(): Promise<ReadinessReport> {
    this.running ??= this.runAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async runAll(): Promise<ReadinessReport> {
    const entries = [...this.checks];
    const results = await Promise.all(entries.map(([, check]) => timed(check, this.timeoutMs)));
    const checks: Record<string, CheckResult> = {};
    entries.forEach(([name], i) => (checks[name] = results[i]!));
    if (this.draining) checks.shutdown = { ok: false, ms: 0, error: 'shutting down' };
    const failed = Object.keys(checks).filter((name) => !checks[name]!.ok);
    return {
      ready: failed.every((name) => this.optional.has(name)),
      degraded: failed.filter((name) => this.optional.has(name)),
      checks,
    };
  }
}

async function timed(check: HealthCheck, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('timeout'), { code: 'timeout' })), timeoutMs);
  });
  try {
    await Promise.race([Promise.resolve().then(check), timeout]);
    return { ok: true, ms: elapsed(started) };
  } catch (err) {
    return { ok: false, ms: elapsed(started), error: reason(err) };
  } finally {
    clearTimeout(timer);
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

/** An error code if there is one, else a fixed word: messages can carry addresses or SQL. */
function reason(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_]{1,32}$/.test(code)) return code;
  const msg = err instanceof Error ? err.message : '';
  if (/Connection terminated|connection error|terminating connection/i.test(msg)) return 'connection lost';
  if (/offline queue|writeable|Connection is closed/i.test(msg)) return 'not connected';
  return 'error';
}

export interface PostgresProbe {
  check: HealthCheck;
  /** Opens the connection (in the background). */
  start(): void;
  close(): Promise<void>;
}

/** Connection attempts are this far apart while PostgreSQL cannot be reached. */
const RECONNECT_SPACING_MS = 250;

/**
 * `SELECT 1` on a connection of its own, never the request pool: a client holding every pool
 * connection with slow queries used to turn /readyz 503 (the probe waited for a pooled
 * connection) although PostgreSQL answered.
 *
 * The connection is opened at once and, whenever it fails or an attempt fails, opened again in
 * the background, attempts RECONNECT_SPACING_MS apart: so it is ready again soon after
 * PostgreSQL is, whether or not anyone probes, and probing /readyz hard cannot make PostgreSQL
 * start a backend per probe. A probe with no connection waits for the next attempt (within its
 * timeout). A probe that finds the previous probe's query still pending (it timed out: a link
 * that hangs) drops that connection instead of queueing behind it; a kept connection found dead
 * gets a fresh one within the same probe.
 *
 * `options` are the request pool's connection settings (pg.Pool#options), so the probe reaches
 * the same server as the same user without a second copy of the URL.
 */
export function postgresProbe(options: pg.PoolConfig, timeoutMs: number, log: Logger, now: () => number = () => performance.now()): PostgresProbe {
  let client: pg.Client | undefined;
  /** The attempt under way or waiting for its turn; resolves with a connected client. */
  let attempt: Promise<pg.Client> | undefined;
  let spacing: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  /** Connections with a SELECT 1 still pending. */
  const querying = new WeakSet<pg.Client>();
  let closed = false;
  let nextAttemptAt = 0;
  let reported = '';

  const closedError = (): Error => Object.assign(new Error('probe closed'), { code: 'closed' });

  const report = (err: unknown): void => {
    const code = reason(err);
    // One line per change of state, not one per attempt.
    if (code !== reported) log.warn({ postgres: code }, 'readiness probe cannot reach postgres');
    reported = code;
  };

  const drop = (c: pg.Client): void => {
    if (client !== c) return;
    client = undefined;
    c.end().catch(() => undefined);
    reconnect();
  };

  const open = async (): Promise<pg.Client> => {
    const c = new pg.Client({
      ...options,
      // pg-pool keeps the password non-enumerable, so the spread above leaves it behind.
      password: options.password,
      application_name: 'carrel-readiness',
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      keepAlive: true,
    });
    // A terminated backend or a reset link: drop the connection and open another.
    c.on('error', (err) => {
      report(err);
      drop(c);
    });
    c.on('end', () => drop(c));
    nextAttemptAt = now() + RECONNECT_SPACING_MS;
    try {
      await c.connect();
    } catch (err) {
      report(err);
      c.end().catch(() => undefined);
      throw err;
    }
    if (closed) {
      c.end().catch(() => undefined);
      throw closedError();
    }
    if (reported) log.info('readiness probe reached postgres again');
    reported = '';
    client = c;
    return c;
  };

  /** The next connection: the attempt under way, or a new one once the spacing allows. */
  const connection = (): Promise<pg.Client> => {
    if (closed) return Promise.reject(closedError());
    attempt ??= (async () => {
      const wait = nextAttemptAt - now();
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          spacing = { timer: setTimeout(resolve, wait), resolve };
          spacing.timer.unref();
        });
        spacing = undefined;
        if (closed) throw closedError();
      }
      return open();
    })().finally(() => {
      attempt = undefined;
      reconnect();
    });
    return attempt;
  };

  /** Tries in the background, attempt after attempt, until a connection is open (or the probe is closed). */
  function reconnect(): void {
    if (closed || client || attempt) return;
    connection().catch(() => undefined);
  }

  const select = async (c: pg.Client): Promise<void> => {
    querying.add(c);
    try {
      await c.query('SELECT 1');
    } finally {
      querying.delete(c);
    }
  };

  return {
    start: reconnect,
    check: async () => {
      if (closed) throw closedError();
      // The last probe's query is still pending: it timed out on a link that hangs.
      if (client && querying.has(client)) drop(client);
      const kept = client;
      if (kept) {
        try {
          return await select(kept);
        } catch {
          // Dead without an error event yet: a fresh connection below.
          drop(kept);
        }
      }
      await select(await connection());
    },
    close: async () => {
      closed = true;
      if (spacing) {
        clearTimeout(spacing.timer);
        spacing.resolve();
      }
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}

export interface EventLoopLag {
  /** The largest lag within the last window, in ms, counting a tick overdue now. */
  maxMs(): number;
  start(): void;
  stop(): void;
}

/**
 * How late the event loop runs a timer: sampled every everyMs, the largest lateness within the
 * last windowMs. A loop that runs late makes every request on every port wait that long, whatever
 * PostgreSQL says, so /readyz counts it; a pause long past keeps nobody unready.
 */
export function eventLoopLag(everyMs = 100, windowMs = 1_000, now: () => number = () => performance.now()): EventLoopLag {
  const samples: Array<{ at: number; lagMs: number }> = [];
  let last = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    const at = now();
    samples.push({ at, lagMs: Math.max(0, at - last - everyMs) });
    last = at;
    while (samples.length > 0 && samples[0]!.at < at - windowMs) samples.shift();
  };
  return {
    maxMs: () => {
      const at = now();
      let max = timer ? Math.max(0, at - last - everyMs) : 0;
      for (const s of samples) if (s.at >= at - windowMs && s.lagMs > max) max = s.lagMs;
      return Math.round(max);
    },
    start: () => {
      if (timer) return;
      last = now();
      timer = setInterval(tick, everyMs);
      timer.unref();
    },
    stop: () => {
      clearInterval(timer);
      timer = undefined;
      samples.length = 0;
    },
  };
}

/** Fails while the loop has lagged more than maxLagMs within the sampler's window. */
export function eventLoopCheck(lag: EventLoopLag, maxLagMs: number): HealthCheck {
  return async () => {
    const ms = lag.maxMs();
    if (ms > maxLagMs) throw Object.assign(new Error(`event loop lag ${ms} ms`), { code: 'EVENT_LOOP_LAG' });
  };
}

export interface RedisProbe {
  check: HealthCheck;
  close(): void;
}

/**
 * A small Redis client used only for PING. The offline queue is off, so while Redis is away a
 * PING fails at once instead of queueing (STYLE: never an unbounded queue while a dependency
 * is down); the client keeps reconnecting in the background with a capped backoff.
 */
export function redisProbe(url: string, timeoutMs: number, log: Logger): RedisProbe {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: timeoutMs,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
  });
  let lastError = '';
  client.on('error', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? 'error';
    // One line per change of state, not one per reconnect attempt.
    if (code !== lastError) log.warn({ redis: code }, 'redis health probe cannot reach redis');
    lastError = code;
  });
  client.on('ready', () => {
    if (lastError) log.info('redis health probe reconnected');
    lastError = '';
  });
  // Right after start (or during a reconnect) the client is not ready yet: wait for it, within
  // the probe's own timeout, rather than report a healthy Redis as down.
  const whenReady = (): Promise<void> =>
    client.status === 'ready'
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const done = (err?: Error): void => {
            clearTimeout(timer);
            client.off('ready', onReady);
            if (err) reject(err);
            else resolve();
          };
          const onReady = (): void => done();
          const timer = setTimeout(() => done(Object.assign(new Error('not connected'), { code: lastError || 'NOT_CONNECTED' })), timeoutMs);
          client.once('ready', onReady);
        });
  return {
    check: async () => {
      await whenReady();
      return client.ping();
    },
    close: () => client.disconnect(),
  };
}
