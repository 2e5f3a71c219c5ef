// Who may speak on the sensor port (docs/sensors.md, "Keys"): a key from config (sensors.keys) or
// one whose SHA-256 digest is in sensor_keys and not revoked. Keys are compared as digests in
// constant time, so neither the config list nor the table leaks a key through timing. A table key
// carries its branch scope (sensor_keys.branch_id, docs/sensors.md): a connection with it may write
// only that branch's seats. Config keys, and table keys without a branch (the development key
// `carrel db seed` stores), may write every seat.
//
// Wrong keys are throttled per peer address (audit: 847 wrong-key hellos a second from one
// address, each a database query and an info log line). The login throttle's mechanism
// (src/auth/failureThrottle.ts, config sensors.helloThrottle): past freeFailures wrong keys an
// address is locked for a doubling delay, and a hello from a locked address is refused before
// any lookup with RESOURCE_EXHAUSTED and retryAfterMs. A hello being checked counts as a
// failure until it is settled, so many connections at once get no more tries than one after
// another. A right key does not clear the address's count (one stolen key must not reset the
// guessing of others). Refusals are logged once per address per forgetAfterMs window, with how
// many there were since the last line.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/db.js';
import type { Logger } from '../obs/log.js';
import { FailureThrottle, addressKey, type ThrottlePolicy } from '../auth/failureThrottle.js';

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function sha256Hex(value: string): string {
  return sha256(value).toString('hex');
}

/** Whether digest equals any of digests, comparing every one in constant time (no early exit). */
function matchesAny(digests: readonly Buffer[], digest: Buffer): boolean {
  let found = false;
  for (const d of digests) found = timingSafeEqual(d, digest) || found;
  return found;
}

export interface HelloThrottleOptions extends ThrottlePolicy {
  forgetAfterMs: number;
  maxEntries: number;
}

export interface SensorKeyringOptions {
  db: Db;
  keys: readonly string[];
  /** Keys never accepted, wherever found (sensors.refuseKeys). */
  refuse?: readonly string[];
  throttle: HelloThrottleOptions;
  log: Logger;
  now: () => number;
}

export type KeyVerdict =
  /** keyId: the sensor_keys row (null for a config key); branchId: the only branch it may write (null: any). */
  | { ok: true; keyId: number | null; branchId: number | null }
  | { ok: false; code: 'PERMISSION_DENIED' }
  | { ok: false; code: 'RESOURCE_EXHAUSTED'; retryAfterMs: number };

interface LogWindow {
  sinceMs: number;
  /** Refusals not yet reported in a log line. */
  unreported: number;
}

export class SensorKeyring {
  private readonly configDigests: Buffer[];
  private readonly refusedDigests: Buffer[];
  private readonly throttle: FailureThrottle;
  private readonly logged = new Map<string, LogWindow>();
  readonly refused = { unknownKey: 0, throttled: 0 };

  constructor(private readonly opts: SensorKeyringOptions) {
    this.configDigests = opts.keys.map(sha256);
    this.refusedDigests = (opts.refuse ?? []).map(sha256);
    this.throttle = new FailureThrottle(opts.throttle, opts.throttle.forgetAfterMs, opts.throttle.maxEntries);
  }

  /**
   * Whether a sensor at this address may speak with this key. Rejects only when the database is
   * unreachable (nothing is counted against the address then).
   */
  async check(key: string, remoteAddress: string, sensorId: string): Promise<KeyVerdict> {
    const addr = addressKey(remoteAddress);
    const wait = this.throttle.waitMs(addr, this.opts.now());
    if (wait > 0) {
      this.refused.throttled++;
      this.report(addr, remoteAddress, sensorId);
      return { ok: false, code: 'RESOURCE_EXHAUSTED', retryAfterMs: wait };
    }
    this.throttle.reserve(addr);
    let known: { keyId: number | null; branchId: number | null } | undefined;
    try {
      known = await this.known(key);
    } catch (err) {
      this.throttle.release(addr);
      throw err;
    }
    if (known) {
      this.throttle.release(addr);
      return { ok: true, ...known };
    }
    this.throttle.fail(addr, this.opts.now());
    this.refused.unknownKey++;
    this.report(addr, remoteAddress, sensorId);
    return { ok: false, code: 'PERMISSION_DENIED' };
  }

  /** Of these sensor_keys ids, the ones revoked (or deleted) since: their connections must close. */
  async revokedAmong(keyIds: readonly number[]): Promise<number[]> {
    if (keyIds.length === 0) return [];
    const live = await this.opts.db.query<{ id: number }>('SELECT id FROM sensor_keys WHERE id = ANY($1) AND revoked_at IS NULL', [keyIds]);
    const still = new Set(live.rows.map((r) => r.id));
    return keyIds.filter((id) => !still.has(id));
  }

  private async known(key: string): Promise<{ keyId: number | null; branchId: number | null } | undefined> {
    const digest = sha256(key);
    if (matchesAny(this.refusedDigests, digest)) return undefined;
    if (matchesAny(this.configDigests, digest)) return { keyId: null, branchId: null };
    const row = await this.opts.db.query<{ id: number; branch_id: number | null }>(
      'SELECT id, branch_id FROM sensor_keys WHERE key_sha256 = $1 AND revoked_at IS NULL',
      [digest.toString('hex')],
    );
    const found = row.rows[0];
    return found ? { keyId: found.id, branchId: found.branch_id } : undefined;
  }

  /** One log line per address per window, carrying the refusals since the last one. */
  private report(addr: string, remoteAddress: string, sensorId: string): void {
    const now = this.opts.now();
    const w = this.logged.get(addr);
    if (w && now - w.sinceMs < this.opts.throttle.forgetAfterMs) {
      w.unreported++;
      return;
    }
    const refused = (w?.unreported ?? 0) + 1;
    this.logged.delete(addr); // re-inserted: most recently logged last
    if (this.logged.size >= this.opts.throttle.maxEntries) this.logged.delete(this.logged.keys().next().value!);
    this.logged.set(addr, { sinceMs: now, unreported: 0 });
    this.opts.log.info(
      { remote: remoteAddress, sensorId, refused, windowMs: this.opts.throttle.forgetAfterMs },
      'sensor refused: unknown key',
    );
  }
}
