// Slows password guessing (issue 7): failed logins are counted per account and per peer
// address; past a number of free failures, each further failure locks that key for an
// exponentially growing time (baseDelayMs, doubling, capped at maxDelayMs). A locked key is
// refused before any bcrypt work with RESOURCE_EXHAUSTED and details.retryAfterMs.
//
// How auth.login uses it:
//   const attempt = throttle.begin(studentId, ctx.remoteAddress);   // throws when locked
//   ok ? attempt.succeeded() : wrongPassword ? attempt.failed() : attempt.abandoned();
// begin() checks and reserves in one step: until it is settled, an attempt counts as a failure
// of its account and its address, so pipelined or concurrent guesses are admitted no more often
// than sequential ones (audit: 20 pipelined wrong logins all passed a check made before the
// first bcrypt finished). Unknown student ids count as failures too, so the throttle does not
// reveal which exist.
//
// A success clears the account's failures but not the address's: otherwise an attacker who
// owns one account could log into it between guesses at others to reset their address count.
// The address threshold is high because a campus NAT puts many students behind one address;
// IPv6 peers are keyed by their /64, which one host usually controls whole.
//
// Memory is bounded: failures are forgotten forgetAfterMs after a key's last failure, and each
// table keeps at most maxEntries keys, least recently failed evicted first (src/auth/failureThrottle.ts).
import { CarrelError, ErrorCode } from '../errors.js';
import { FailureThrottle, addressKey, type ThrottlePolicy } from './failureThrottle.js';

export { addressKey, type ThrottlePolicy } from './failureThrottle.js';

export interface LoginThrottleOptions {
  account: ThrottlePolicy;
  address: ThrottlePolicy;
  forgetAfterMs: number;
  maxEntries: number;
  now?: () => number;
}

/** One admitted login; settle it exactly once (later calls do nothing). */
export interface LoginAttempt {
  /** Wrong student id or password: counted against the account and the address. */
  failed(): void;
  /** The password matched: the account's failures are cleared. */
  succeeded(): void;
  /** Neither (the database was down, the hash queue was full, the deadline passed first). */
  abandoned(): void;
}

export class LoginThrottle {
  private readonly accounts: FailureThrottle;
  private readonly addresses: FailureThrottle;
  private readonly now: () => number;
  /** Logins refused because a key was locked. */
  throttled = 0;

  constructor(opts: LoginThrottleOptions) {
    this.accounts = new FailureThrottle(opts.account, opts.forgetAfterMs, opts.maxEntries);
    this.addresses = new FailureThrottle(opts.address, opts.forgetAfterMs, opts.maxEntries);
    this.now = opts.now ?? Date.now;
  }

  /**
   * Admits one login attempt and counts it in flight, or throws RESOURCE_EXHAUSTED
   * (details.retryAfterMs) while the account or the address is locked — counting the attempts
   * still running as failures.
   */
  begin(studentId: string, address: string): LoginAttempt {
    const account = accountKey(studentId);
    const addr = addressKey(address);
    const now = this.now();
    const wait = Math.max(this.accounts.waitMs(account, now), this.addresses.waitMs(addr, now));
    if (wait > 0) {
      this.throttled++;
      // Same words whichever key is locked, and whether or not the account exists.
      throw new CarrelError(
        ErrorCode.RESOURCE_EXHAUSTED,
        `too many failed logins; try again in ${Math.ceil(wait / 1000)} s`,
        { retryAfterMs: wait },
      );
    }
    this.accounts.reserve(account);
    this.addresses.reserve(addr);
    let settled = false;
    const settle = (how: 'failed' | 'succeeded' | 'abandoned'): void => {
      if (settled) return;
      settled = true;
      if (how === 'failed') {
        const at = this.now();
        this.accounts.fail(account, at);
        this.addresses.fail(addr, at);
        return;
      }
      this.accounts.release(account);
      this.addresses.release(addr);
      if (how === 'succeeded') this.accounts.clear(account);
    };
    return {
      failed: () => settle('failed'),
      succeeded: () => settle('succeeded'),
      abandoned: () => settle('abandoned'),
    };
  }

  /** Keys currently remembered (for a gauge, and to show memory stays bounded). */
  get tracked(): { accounts: number; addresses: number } {
    return { accounts: this.accounts.entries.size, addresses: this.addresses.entries.size };
  }

  /** Keys with a login in flight (drops back to zero once every attempt is settled). */
  get inFlight(): { accounts: number; addresses: number } {
    return { accounts: this.accounts.inFlightKeys, addresses: this.addresses.inFlightKeys };
  }
}

function accountKey(studentId: string): string {
  return studentId.trim().toLowerCase().slice(0, 128);
}
