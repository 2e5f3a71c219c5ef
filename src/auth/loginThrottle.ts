// Slows password guessing (issue 7): failed logins are counted per account and per peer
// address; past a number of free failures, each further failure locks that key for an
// exponentially growing time (baseDelayMs, doubling, capped at maxDelayMs). A locked key is
// refused before any bcrypt work with RESOURCE_EXHAUSTED and details.retryAfterMs.
//
// How auth.login uses it:
//   throttle.check(studentId, ctx.remoteAddress);      // before bcrypt; throws when locked
//   ok ? throttle.recordSuccess(studentId, ctx.remoteAddress)
//      : throttle.recordFailure(studentId, ctx.remoteAddress);
// Unknown student ids count as failures too, so the throttle does not reveal which exist.
//
// A success clears the account's failures but not the address's: otherwise an attacker who
// owns one account could log into it between guesses at others to reset their address count.
// The address threshold is high because a campus NAT puts many students behind one address;
// IPv6 peers are keyed by their /64, which one host usually controls whole.
//
// Memory is bounded: failures are forgotten forgetAfterMs after a key's last failure, and each
// map keeps at most maxEntries keys, least recently failed evicted first.
import net from 'node:net';
import { CarrelError, ErrorCode } from '../errors.js';

export interface ThrottlePolicy {
  /** Failures allowed before delays start. */
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface LoginThrottleOptions {
  account: ThrottlePolicy;
  address: ThrottlePolicy;
  forgetAfterMs: number;
  maxEntries: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  lastFailureMs: number;
  lockedUntilMs: number;
}

class KeyTable {
  readonly entries = new Map<string, Entry>();

  constructor(
    private readonly policy: ThrottlePolicy,
    private readonly forgetAfterMs: number,
    private readonly maxEntries: number,
  ) {}

  /** Milliseconds until the key may try again; 0 when it may now. */
  waitMs(key: string, nowMs: number): number {
    const e = this.entries.get(key);
    if (!e) return 0;
    if (nowMs - e.lastFailureMs > this.forgetAfterMs) {
      this.entries.delete(key);
      return 0;
    }
    return Math.max(0, e.lockedUntilMs - nowMs);
  }

  fail(key: string, nowMs: number): void {
    let e = this.entries.get(key);
    if (e) {
      this.entries.delete(key); // re-inserted below: most recent last
      if (nowMs - e.lastFailureMs > this.forgetAfterMs) e = undefined;
    }
    e ??= { failures: 0, lastFailureMs: nowMs, lockedUntilMs: 0 };
    e.failures++;
    e.lastFailureMs = nowMs;
    const extra = e.failures - this.policy.freeFailures;
    if (extra > 0) {
      // 2^(extra-1) grows past any cap quickly; clamp the exponent so it stays finite.
      const delay = Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** Math.min(extra - 1, 40));
      e.lockedUntilMs = nowMs + delay;
    }
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, e);
  }

  clear(key: string): void {
    this.entries.delete(key);
  }
}

export class LoginThrottle {
  private readonly accounts: KeyTable;
  private readonly addresses: KeyTable;
  private readonly now: () => number;
  /** Logins refused because a key was locked. */
  throttled = 0;

  constructor(opts: LoginThrottleOptions) {
    this.accounts = new KeyTable(opts.account, opts.forgetAfterMs, opts.maxEntries);
    this.addresses = new KeyTable(opts.address, opts.forgetAfterMs, opts.maxEntries);
    this.now = opts.now ?? Date.now;
  }

  /** Throws RESOURCE_EXHAUSTED (details.retryAfterMs) while the account or the address is locked. */
  check(studentId: string, address: string): void {
    const now = this.now();
    const wait = Math.max(this.accounts.waitMs(accountKey(studentId), now), this.addresses.waitMs(addressKey(address), now));
    if (wait > 0) {
      this.throttled++;
      // Same words whichever key is locked, and whether or not the account exists.
      throw new CarrelError(
        ErrorCode.RESOURCE_EXHAUSTED,
        `too many failed logins; try again in ${Math.ceil(wait / 1000)} s`,
        { retryAfterMs: wait },
      );
    }
  }

  recordFailure(studentId: string, address: string): void {
    const now = this.now();
    this.accounts.fail(accountKey(studentId), now);
    this.addresses.fail(addressKey(address), now);
  }

  recordSuccess(studentId: string, _address: string): void {
    this.accounts.clear(accountKey(studentId));
  }

  /** Keys currently remembered (for a gauge, and to show memory stays bounded). */
  get tracked(): { accounts: number; addresses: number } {
    return { accounts: this.accounts.entries.size, addresses: this.addresses.entries.size };
  }
}

function accountKey(studentId: string): string {
  return studentId.trim().toLowerCase().slice(0, 128);
}

/** IPv4 as is (also when IPv4-mapped), IPv6 by its /64 prefix. */
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
