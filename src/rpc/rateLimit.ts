// Request rate limits (docs/fairness.md): token buckets over chosen methods, kept per
// connection, per authenticated user or per source address, refilled lazily from the request's
// own timestamp, so there is no timer per request, connection, user or address.
//
// A rule names methods exactly, by `namespace.*` prefix, or `*` for every method, and may apply
// to anonymous callers only (`callers: "anonymous"`: the public reads a client can make without
// an account). A request must find a token in every rule that covers it; a refused request takes
// none, and its reply says when to retry (details.retryAfterMs). Connection buckets live in a
// WeakMap keyed by the connection's caller state, so they vanish with the connection; user and
// address buckets are kept for at most maxTrackedKeys keys per rule, least recently seen evicted
// first (an evicted key simply starts again with a full bucket).
//
// Addresses are compared as clients, not as strings: an IPv4-mapped IPv6 address is its IPv4
// address, and an IPv6 address counts by its /64 (one host is routinely handed a whole /64, so
// per-address limits by full address would give it 2^64 buckets).
import type { AuthUser } from '../auth/tokens.js';
import { addressKey } from '../auth/failureThrottle.js';
import { CarrelError, ErrorCode } from '../errors.js';
import type { MethodDef } from './registry.js';

export interface RateLimitRule {
  name: string;
  per: 'connection' | 'user' | 'address';
  /** Who the rule applies to; `anonymous`: requests without a token only. Default: everyone. */
  callers?: 'all' | 'anonymous';
  methods: readonly string[];
  ratePerSec: number;
  burst: number;
}

export interface RateLimiterOptions {
  rules: readonly RateLimitRule[];
  /** User or address buckets kept per rule; the least recently seen go first past this. */
  maxTrackedKeys: number;
  /** Told about each refusal (metrics). */
  onLimited?: (rule: string) => void;
}

/** What the limiter needs to know of the connection a request came on. */
export interface RateCaller {
  /** The peer's address as the socket gave it. */
  remoteAddress?: string;
  /** Its address as a client (clientAddress), worked out once per connection. */
  client?: string;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

interface CompiledRule {
  readonly index: number;
  readonly rule: RateLimitRule;
  readonly perMs: number;
  readonly anonymousOnly: boolean;
  /** Per-user or per-address buckets in least-recently-used order (Map keeps insertion order). */
  readonly keyed: Map<string | number, Bucket>;
}

const NONE: readonly CompiledRule[] = [];

export class RateLimiter {
  private readonly rules: CompiledRule[];
  private readonly byMethod = new Map<string, readonly CompiledRule[]>();
  private readonly perConnection = new WeakMap<object, Array<Bucket | undefined>>();
  readonly limited = new Map<string, number>();

  constructor(private readonly opts: RateLimiterOptions) {
    this.rules = opts.rules.map((rule, index) => ({
      index,
      rule,
      perMs: rule.ratePerSec / 1000,
      anonymousOnly: rule.callers === 'anonymous',
      keyed: new Map(),
    }));
  }

  /**
   * The dispatcher's admission hook, after access checks: throws RESOURCE_EXHAUSTED when a
   * bucket covering this method is empty. `caller` identifies the connection.
   */
  readonly admit = (def: MethodDef, user: AuthUser | null, caller: RateCaller, nowMs: number): void => {
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
        { retryAfterMs, limit: name, per: denied.rule.per },
      );
    }
    if (buckets) for (const b of buckets) b.tokens -= 1;
  };

  /** Users or addresses currently tracked, per keyed rule (a gauge). */
  trackedKeys(): Array<{ rule: string; keys: number }> {
    return this.rules.filter((r) => r.rule.per !== 'connection').map((r) => ({ rule: r.rule.name, keys: r.keyed.size }));
  }

  private bucketFor(r: CompiledRule, user: AuthUser | null, caller: RateCaller, nowMs: number): Bucket | undefined {
    if (r.anonymousOnly && user) return undefined;
    if (r.rule.per === 'connection') {
      let list = this.perConnection.get(caller);
      if (!list) {
        list = [];
        this.perConnection.set(caller, list);
      }
      return (list[r.index] ??= { tokens: r.rule.burst, atMs: nowMs });
    }
    const key = r.rule.per === 'user' ? user?.id : (caller.client ??= clientAddress(caller.remoteAddress));
    if (key === undefined) return undefined;
    let bucket = r.keyed.get(key);
    if (bucket) {
      r.keyed.delete(key);
    } else {
      bucket = { tokens: r.rule.burst, atMs: nowMs };
      if (r.keyed.size >= this.opts.maxTrackedKeys) r.keyed.delete(r.keyed.keys().next().value!);
    }
    r.keyed.set(key, bucket);
    return bucket;
  }

  private compile(def: MethodDef): readonly CompiledRule[] {
    const matching = this.rules.filter((r) => r.rule.methods.some((p) => matches(p, def.name)));
    const rules = matching.length === 0 ? NONE : matching;
    this.byMethod.set(def.name, rules);
    return rules;
  }
}

/**
 * The address a client is counted by: IPv4 as it is (an IPv4-mapped IPv6 address unwrapped),
 * IPv6 by its first four groups (its /64). Unknown (a socket pair in tests): "local".
 */
export function clientAddress(remote: string | undefined): string {
  return remote ? addressKey(remote) : 'local';
}

function refill(bucket: Bucket, r: CompiledRule, nowMs: number): void {
  const elapsed = nowMs - bucket.atMs;
  if (elapsed > 0) {
    bucket.tokens = Math.min(r.rule.burst, bucket.tokens + elapsed * r.perMs);
    bucket.atMs = nowMs;
  }
}

function matches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return name.startsWith(pattern.slice(0, -1));
  return name === pattern;
}
