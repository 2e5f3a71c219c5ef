// Closes sensor connections whose key has been revoked (docs/sensors.md). A hello is checked
// against sensor_keys, but a gateway stays connected for days: without this a stolen key, once
// revoked, would go on writing until its connection dropped. A revoke on this instance sweeps at
// once; every instance also sweeps every sensors.keyRecheckMs, one query for the distinct table
// keys of its open connections (config keys cannot be revoked while the server runs).
import type { Logger } from '../obs/log.js';
import type { SensorKeyring } from './sensorKeys.js';
import type { SensorSession } from './sensorSession.js';

export class RevokedKeyWatch {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;
  /** Connections closed because their key was revoked. */
  closed = 0;

  constructor(
    private readonly sessions: ReadonlySet<SensorSession>,
    private readonly keyring: SensorKeyring,
    private readonly opts: { everyMs: number },
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.sweep(), this.opts.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Closes the connections of revoked keys; resolves with how many. Never rejects (a failed look is retried next time). */
  sweep(): Promise<number> {
    // A sweep already running may have read the table before a revoke that asks for this one: chain, do not share.
    const next = (this.sweeping ?? Promise.resolve(0)).then(() => this.once());
    this.sweeping = next;
    void next.finally(() => {
      if (this.sweeping === next) this.sweeping = undefined;
    });
    return next;
  }

  private async once(): Promise<number> {
    const ids = new Set<number>();
    for (const s of this.sessions) if (s.scope?.keyId != null) ids.add(s.scope.keyId);
    if (ids.size === 0) return 0;
    let revoked: Set<number>;
    try {
      revoked = new Set(await this.keyring.revokedAmong([...ids]));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not check sensor keys for revocation; will retry');
      return 0;
    }
    let n = 0;
    for (const s of [...this.sessions]) {
      if (s.scope?.keyId == null || !revoked.has(s.scope.keyId)) continue;
      s.revoked();
      n++;
    }
    if (n > 0) this.log.info({ connections: n, keys: revoked.size }, 'closed sensor connections of revoked keys');
    this.closed += n;
    return n;
  }
}
