// Counts failures per key (an account, a peer address) and, past a number of free failures,
// locks the key for an exponentially growing time: baseDelayMs, doubling, capped at maxDelayMs.
// The login throttle and the sensor port's hello throttle are both made of these.
//
// Checking and reserving are one step (audit: 20 pipelined wrong logins were all checked before
// the first one's bcrypt finished, so all 20 ran). reserve() refuses while the key is locked, and
// an attempt it admits counts as a failure until it is settled: fail() makes it one, release()
// (a success, or an attempt that never got to the secret) takes it back. So concurrent attempts
// are admitted exactly as many as sequential ones would be.
//
// Memory is bounded: failures are forgotten forgetAfterMs after a key's last failure, the table
// keeps at most maxEntries keys (least recently failed evicted first), and reservations live
// only while their attempt runs.
import net from 'node:net';

export interface ThrottlePolicy {
  /** Failures allowed before delays start. */
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

interface Entry {
  failures: number;
  lastFailureMs: number;
  lockedUntilMs: number;
}

export class FailureThrottle {
  readonly entries = new Map<string, Entry>();
  /** Attempts admitted and not yet settled, per key. */
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly policy: ThrottlePolicy,
    private readonly forgetAfterMs: number,
    private readonly maxEntries: number,
  ) {}

  /**
   * Milliseconds until the key may try again, 0 when it may now. Attempts in flight count as
   * failures made now: if they all failed the key would be locked this long.
   */
  waitMs(key: string, nowMs: number): number {
    let e = this.entries.get(key);
    if (e && nowMs - e.lastFailureMs > this.forgetAfterMs) {
      this.entries.delete(key);
      e = undefined;
    }
    const locked = e ? Math.max(0, e.lockedUntilMs - nowMs) : 0;
    const pending = this.inFlight.get(key) ?? 0;
    if (pending === 0) return locked;
    const extra = (e?.failures ?? 0) + pending - this.policy.freeFailures;
    return Math.max(locked, extra > 0 ? this.delay(extra) : 0);
  }

  /** Failures still remembered plus attempts in flight. */
  count(key: string, nowMs: number): number {
    const e = this.entries.get(key);
    const failures = e && nowMs - e.lastFailureMs <= this.forgetAfterMs ? e.failures : 0;
    return failures + (this.inFlight.get(key) ?? 0);
  }

  /** Counts one attempt in flight; the caller has checked waitMs() is 0 in the same tick. */
  reserve(key: string): void {
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
  }

  /** The attempt is over without a failure to count. */
  release(key: string): void {
    const n = (this.inFlight.get(key) ?? 0) - 1;
    if (n > 0) this.inFlight.set(key, n);
    else this.inFlight.delete(key);
  }

  /** The attempt failed: counted, and past the free failures it locks the key. */
  fail(key: string, nowMs: number): void {
    this.release(key);
    this.recordFailure(key, nowMs);
  }

  /** Counts a failure without a reservation (tests, tools). */
  recordFailure(key: string, nowMs: number): void {
    let e = this.entries.get(key);
    if (e) {
      this.entries.delete(key); // re-inserted below: most recent last
      if (nowMs - e.lastFailureMs > this.forgetAfterMs) e = undefined;
    }
    e ??= { failures: 0, lastFailureMs: nowMs, lockedUntilMs: 0 };
    e.failures++;
    e.lastFailureMs = nowMs;
    const extra = e.failures - this.policy.freeFailures;
    if (extra > 0) e.lockedUntilMs = nowMs + this.delay(extra);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, e);
  }

  clear(key: string): void {
    this.entries.delete(key);
  }

  /** Keys with attempts in flight (bounded by the attempts running). */
  get inFlightKeys(): number {
    return this.inFlight.size;
  }

  private delay(extra: number): number {
    // 2^(extra-1) grows past any cap quickly; clamp the exponent so it stays finite.
    return Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** Math.min(extra - 1, 40));
  }
}

/** A peer address as a throttle key: IPv4 as is (also when IPv4-mapped), IPv6 by its /64 prefix. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!net.isIPv6(address)) return address.slice(0, 64);
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
