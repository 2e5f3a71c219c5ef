// Readiness (DESIGN §7): named checks of the dependencies a request needs — PostgreSQL always,
// Redis when configured — each bounded by a timeout so a hung dependency reads as "down"
// instead of hanging the probe. Concurrent probes share one run, so a load balancer probing
// hard cannot pile queries onto a struggling database. Other parts add their own checks with
// add(name, fn); a check added with { required: false } (Redis) reports "degraded" when it fails
// and leaves the server ready.
import type pg from 'pg';
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
  /** Checks that failed without making the server unready (e.g. Redis: DESIGN §6). */
  degraded: string[];
  checks: Record<string, CheckResult>;
}

export interface CheckOptions {
  /**
   * False for a dependency the server keeps serving without (Redis: each instance serves its own
   * clients and catches up later, DESIGN §6). Its failure is reported as degraded, and /readyz
   * stays 200: were it 503, a load balancer would drain every instance at once when Redis goes.
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

export function postgresCheck(pool: pg.Pool): HealthCheck {
  return () => pool.query('SELECT 1');
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
