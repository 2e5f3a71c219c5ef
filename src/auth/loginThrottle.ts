// Slows password guessing without letting a guesser lock the owner out (docs/accounts.md,
// "Failed logins"). Failed logins are counted under three keys, each a FailureThrottle
// (src/auth/failureThrottle.ts): past its free failures, each further failure locks that key
// for an exponentially growing time (baseDelayMs, doubling, capped at maxDelayMs). A locked key
// is refused before any bcrypt work with RESOURCE_EXHAUSTED and details.retryAfterMs.
//
//   account from address  one account guessed from one address: the main brake on guessing.
//                         It slows only the address that made the failures.
//   address               every failure from one address, whatever the id: slows one address
//                         spraying many accounts. A campus NAT puts many students behind one
//                         address, so its threshold is high; IPv6 peers are keyed by their /64,
//                         which one host usually controls whole.
//   account               one existing account, all addresses together: the brake on guessing
//                         spread over many addresses. Each address adds at most
//                         accountFromAddress.freeFailures to it (the config refuses an account
//                         threshold that low), so no single address can trip it; and it locks
//                         only addresses the account has not logged in from lately. The owner's
//                         right password from a known address is never refused because of
//                         other addresses' guessing, and from a new one only while many
//                         addresses together are guessing.
//
// The audit that shaped this: student ids were case-sensitive in the database but folded here,
// so a twin account (VIDxxxx beside vidxxxx) logging in cleared the victim's count, and failed
// logins as "ADMIN" from one address locked the real admin out everywhere for 15 minutes. Ids
// are now one canonical form everywhere (src/auth/studentId.ts); a success clears only its own
// (account, address) count — never the address's, never another account's; and failures of ids
// with no account are counted against the address and the (id, address) pair only.
//
// How auth.login uses it:
//   const attempt = throttle.begin(studentId, ctx.remoteAddress);   // throws when locked
//   right ? attempt.succeeded() : checked ? attempt.failed({ accountExists }) : attempt.abandoned();
// begin() checks and reserves in one step: until it is settled, an attempt counts as a failure
// under its keys, so pipelined or concurrent guesses are admitted no more often than
// sequential ones (audit: 20 pipelined wrong logins all passed a check made before the first
// bcrypt finished).
//
// Memory is bounded: failures are forgotten forgetAfterMs after a key's last failure, each table
// keeps at most maxEntries keys (least recently failed evicted first), and at most maxEntries
// accounts keep at most knownAddressesPerAccount addresses each (least recently used first).
import { CarrelError, ErrorCode } from '../errors.js';
import { FailureThrottle, addressKey, type ThrottlePolicy } from './failureThrottle.js';
import { canonicalStudentId } from './studentId.js';

export { addressKey, type ThrottlePolicy } from './failureThrottle.js';

export interface LoginThrottleOptions {
  /** One account from one address. */
  accountFromAddress: ThrottlePolicy;
  /** One existing account from every address; locks only addresses it has not logged in from. */
  account: ThrottlePolicy;
  /** One address, whatever the account. */
  address: ThrottlePolicy;
  forgetAfterMs: number;
  maxEntries: number;
  /** Addresses remembered per account after a successful login. */
  knownAddressesPerAccount: number;
  /** A known address is forgotten this long after the account's last login from it. */
  knownAddressForgetAfterMs: number;
  now?: () => number;
}

/** One admitted login; settle it exactly once (later calls do nothing). */
export interface LoginAttempt {
  /**
   * The password was checked and did not match (or the id has no account). Counted against the
   * address and the (account, address) pair; against the account as a whole only if it exists.
   */
  failed(outcome: { accountExists: boolean }): void;
  /** The password matched: this address's failures for this account are cleared, and the address is known to it. */
  succeeded(): void;
  /** Neither (the database was down, the hash queue was full, the deadline passed first). */
  abandoned(): void;
}

export class LoginThrottle {
  private readonly pairs: FailureThrottle;
  private readonly accounts: FailureThrottle;
  private readonly addresses: FailureThrottle;
  /** account → (address key → last successful login, ms), least recently used first. */
  private readonly known = new Map<string, Map<string, number>>();
  private readonly now: () => number;
  /** Logins refused because a key was locked. */
  throttled = 0;

  constructor(private readonly opts: LoginThrottleOptions) {
    this.pairs = new FailureThrottle(opts.accountFromAddress, opts.forgetAfterMs, opts.maxEntries);
    this.accounts = new FailureThrottle(opts.account, opts.forgetAfterMs, opts.maxEntries);
    this.addresses = new FailureThrottle(opts.address, opts.forgetAfterMs, opts.maxEntries);
    this.now = opts.now ?? Date.now;
  }

  /**
   * Admits one login attempt and counts it in flight, or throws RESOURCE_EXHAUSTED
   * (details.retryAfterMs) while one of its keys is locked — counting the attempts still
   * running as failures. The student id is folded to its canonical form here too, so every
   * spelling of an account shares its counts.
   */
  begin(studentId: string, address: string): LoginAttempt {
    const account = accountKey(studentId);
    const addr = addressKey(address);
    const pair = `${addr} ${account}`; // an address key holds no space
    const now = this.now();
    const known = this.isKnown(account, addr, now);
    const wait = Math.max(
      this.pairs.waitMs(pair, now),
      this.addresses.waitMs(addr, now),
      known ? 0 : this.accounts.waitMs(account, now),
    );
    if (wait > 0) {
      this.throttled++;
      // Same words whichever key is locked, and whether or not the account exists.
      throw new CarrelError(
        ErrorCode.RESOURCE_EXHAUSTED,
        `too many failed logins; try again in ${Math.ceil(wait / 1000)} s`,
        { retryAfterMs: wait },
      );
    }
    // One address adds at most its free failures to the account-wide count, so it can never
    // lock the account for other addresses by itself.
    const countsForAccount = this.pairs.count(pair, now) < this.opts.accountFromAddress.freeFailures;
    this.pairs.reserve(pair);
    this.addresses.reserve(addr);
    if (countsForAccount) this.accounts.reserve(account);
    let settled = false;
    const settle = (how: 'failed' | 'failedUnknown' | 'succeeded' | 'abandoned'): void => {
      if (settled) return;
      settled = true;
      const at = this.now();
      if (how === 'failed' || how === 'failedUnknown') {
        this.pairs.fail(pair, at);
        this.addresses.fail(addr, at);
        if (countsForAccount) {
          if (how === 'failed') this.accounts.fail(account, at);
          else this.accounts.release(account);
        }
        return;
      }
      this.pairs.release(pair);
      this.addresses.release(addr);
      if (countsForAccount) this.accounts.release(account);
      if (how === 'succeeded') {
        this.pairs.clear(pair);
        this.remember(account, addr, at);
      }
    };
    return {
      failed: ({ accountExists }) => settle(accountExists ? 'failed' : 'failedUnknown'),
      succeeded: () => settle('succeeded'),
      abandoned: () => settle('abandoned'),
    };
  }

  /** Keys currently remembered (for gauges, and to show memory stays bounded). */
  get tracked(): { accounts: number; pairs: number; addresses: number; knownAccounts: number } {
    return {
      accounts: this.accounts.entries.size,
      pairs: this.pairs.entries.size,
      addresses: this.addresses.entries.size,
      knownAccounts: this.known.size,
    };
  }

  /** Keys with a login in flight (drops back to zero once every attempt is settled). */
  get inFlight(): { accounts: number; pairs: number; addresses: number } {
    return { accounts: this.accounts.inFlightKeys, pairs: this.pairs.inFlightKeys, addresses: this.addresses.inFlightKeys };
  }

  private isKnown(account: string, addr: string, now: number): boolean {
    const at = this.known.get(account)?.get(addr);
    return at !== undefined && now - at <= this.opts.knownAddressForgetAfterMs;
  }

  private remember(account: string, addr: string, now: number): void {
    let addrs = this.known.get(account);
    if (addrs) this.known.delete(account); // re-inserted below: most recent last
    else addrs = new Map();
    addrs.delete(addr);
    addrs.set(addr, now);
    if (addrs.size > this.opts.knownAddressesPerAccount) addrs.delete(addrs.keys().next().value!);
    if (this.known.size >= this.opts.maxEntries) this.known.delete(this.known.keys().next().value!);
    this.known.set(account, addrs);
  }
}

function accountKey(studentId: string): string {
  return canonicalStudentId(studentId).slice(0, 128);
}
