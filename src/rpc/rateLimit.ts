// Request rate limits (DESIGN §2: RESOURCE_EXHAUSTED for rate limits): token buckets over
// chosen methods, per connection or per authenticated user, refilled lazily from the request's
// own timestamp, so there is no timer per request, connection or user.
//
// A rule names methods exactly, by `namespace.*` prefix, or `*` for every method that needs a
// token; PING and other public methods are limited only where a rule names them (auth.login).
// A request must find a token in every rule that covers it; a refused request takes none, and
// its reply says when to retry (details.retryAfterMs). Connection buckets live in a WeakMap
// keyed by the connection's caller state, so they vanish with the connection; user buckets are
// kept for at most maxTrackedUsers users per rule, least recently seen evicted first (an
// evicted user simply starts again with a full bucket).
import type { AuthUser } from '../auth/tokens.js';
import { CarrelError, ErrorCode } from '../errors.js';
import type { MethodDef } from './registry.js';

export interface RateLimitRule {
  name: string;
  per: 'connection' | 'user';
  methods: readonly string[];
  ratePerSec: number;
  burst: number;
}

export interface RateLimiterOptions {
  rules: readonly RateLimitRule[];
  maxTrackedUsers: number;
  /** Told about each refusal (metrics). */
  onLimited?: (rule: string) => void;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

interface CompiledRule {
  readonly index: number;
  readonly rule: RateLimitRule;
  readonly perMs: number;
  /** Per-user buckets in least-recently-used order (Map keeps insertion order). */
  readonly users: Map<number, Bucket>;
}

const NONE: readonly CompiledRule[] = [];

export class RateLimiter {
  private readonly rules: CompiledRule[];
  private readonly byMethod = new Map<string, readonly CompiledRule[]>();
  private readonly perConnection = new WeakMap<object, Array<Bucket | undefined>>();
  readonly limited = new Map<string, number>();

  constructor(private readonly opts: RateLimiterOptions) {
    this.rules = opts.rules.map((rule, index) => ({ index, rule, perMs: rule.ratePerSec / 1000, users: new Map() }));
  }

  /**
   * The dispatcher's admission hook, after access checks: throws RESOURCE_EXHAUSTED when a
   * bucket covering this method is empty. `caller` identifies the connection.
   */
  readonly admit = (def: MethodDef, user: AuthUser | null, caller: object, nowMs: number): void => {
    const rules = this.byMethod.get(def.name) ?? this.compile(def);
    if (rules.length === 0) return;
    let buckets: Bucket[] | undefined;
    let denied: CompiledRule | undefined;
    let retryAfterMs = 0;
    for (const r of rules) {
      const bucket = this.bucketFor(r, user, caller, nowMs);
      if (!bucket) continue;
      refill(bucket, r, nowMs);
      if (bucket.tokens < 1) {
        const wait = Math.ceil((1 - bucket.tokens) / r.perMs);
        if (wait > retryAfterMs) {
          retryAfterMs = wait;
          denied = r;
        }
      }
      (buckets ??= []).push(bucket);
    }
    if (denied) {
      const name = denied.rule.name;
      this.limited.set(name, (this.limited.get(name) ?? 0) + 1);
      this.opts.onLimited?.(name);
      throw new CarrelError(
        ErrorCode.RESOURCE_EXHAUSTED,
        `rate limit "${name}": at most ${denied.rule.ratePerSec} per second per ${denied.rule.per}; retry in ${retryAfterMs} ms`,
        { retryAfterMs, limit: name },
      );
    }
    if (buckets) for (const b of buckets) b.tokens -= 1;
  };

  /** Users currently tracked, per rule (a gauge). */
  trackedUsers(): Array<{ rule: string; users: number }> {
    return this.rules.filter((r) => r.rule.per === 'user').map((r) => ({ rule: r.rule.name, users: r.users.size }));
  }

  private bucketFor(r: CompiledRule, user: AuthUser | null, caller: object, nowMs: number): Bucket | undefined {
    if (r.rule.per === 'connection') {
      let list = this.perConnection.get(caller);
      if (!list) {
        list = [];
        this.perConnection.set(caller, list);
      }
      return (list[r.index] ??= { tokens: r.rule.burst, atMs: nowMs });
    }
    if (!user) return undefined;
    let bucket = r.users.get(user.id);
    if (bucket) {
      r.users.delete(user.id);
    } else {
      bucket = { tokens: r.rule.burst, atMs: nowMs };
      if (r.users.size >= this.opts.maxTrackedUsers) r.users.delete(r.users.keys().next().value!);
    }
    r.users.set(user.id, bucket);
    return bucket;
  }

  private compile(def: MethodDef): readonly CompiledRule[] {
    const matching = this.rules.filter((r) => r.rule.methods.some((p) => matches(p, def)));
    const rules = matching.length === 0 ? NONE : matching;
    this.byMethod.set(def.name, rules);
    return rules;
  }
}

function refill(bucket: Bucket, r: CompiledRule, nowMs: number): void {
  const elapsed = nowMs - bucket.atMs;
  if (elapsed > 0) {
    bucket.tokens = Math.min(r.rule.burst, bucket.tokens + elapsed * r.perMs);
    bucket.atMs = nowMs;
  }
}

function matches(pattern: string, def: MethodDef): boolean {
  if (pattern === '*') return def.access !== 'public';
  if (pattern.endsWith('.*')) return def.name.startsWith(pattern.slice(0, -1));
  return def.name === pattern;
}
