// Coalesces sensor readings for the database (docs/sensors.md): only the latest reading per seat is
// kept in memory and written every sensors.flushEveryMs as one multi-row upsert, never one write
// per reading. The map is keyed by seat, so it is bounded by the number of seats however fast
// the readings come. Subscribers never wait for this: it is the slow path to the truth. As in the
// live model, the newest is the one the server received last (docs/sensors.md), not the one with
// the latest `at`. With the occupancy history on, each flush also writes the seats' changes of
// presence (presenceHistory.ts), in one statement of its own: either can fail without the other.
import type pg from 'pg';
import type { Logger } from '../obs/log.js';
import type { PresenceHistory } from './presenceHistory.js';

interface PendingReading {
  occupied: boolean;
  readingAtMs: number;
  receivedAtMs: number;
  sensorId: string;
}

export interface CoalescerStats {
  pending: number;
  flushes: number;
  rowsWritten: number;
  failures: number;
}

export class SensorCoalescer {
  private pending = new Map<number, PendingReading>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private failing = false;
  readonly stats: CoalescerStats = { pending: 0, flushes: 0, rowsWritten: 0, failures: 0 };

  constructor(
    private readonly db: pg.Pool,
    private readonly opts: { flushEveryMs: number; history?: PresenceHistory },
    private readonly log: Logger,
  ) {}

  /** The occupancy history this coalescer writes, when it is on (history.enabled). */
  get history(): PresenceHistory | undefined {
    return this.opts.history;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.opts.flushEveryMs);
    this.timer.unref();
  }

  /** Remembers a reading the live model accepted; one received later for the same seat replaces it. */
  record(seatId: number, occupied: boolean, readingAtMs: number, receivedAtMs: number, sensorId: string): void {
    const prev = this.pending.get(seatId);
    if (prev && prev.receivedAtMs > receivedAtMs) return;
    this.pending.set(seatId, { occupied, readingAtMs, receivedAtMs, sensorId });
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Writes what is pending, one statement for seat_live and one for the history (which also
   * marks this writer alive, so it runs on every flush); one flush at a time, a failed batch is kept.
   */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => (this.pending.size > 0 || this.history?.pendingCount ? this.flush() : undefined));
    if (this.pending.size === 0 && !this.history) return Promise.resolve();
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = (async () => {
      if (batch.size > 0) await this.write(batch);
      await this.history?.write(this.db);
    })().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /**
   * Stops the timer and writes whatever is still pending (graceful shutdown); the history's open
   * intervals end now.
   */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    await this.history?.close(this.db);
  }

  private async write(batch: Map<number, PendingReading>): Promise<void> {
    const seatIds: number[] = [];
    const occupied: boolean[] = [];
    const readingAt: Date[] = [];
    const receivedAt: string[] = [];
    const sensorIds: string[] = [];
    for (const [seatId, r] of batch) {
      seatIds.push(seatId);
      occupied.push(r.occupied);
      readingAt.push(new Date(r.readingAtMs));
      receivedAt.push(timestampMicros(r.receivedAtMs));
      sensorIds.push(r.sensorId);
    }
    try {
      // The WHERE keeps receipt order in the table too: another instance's reading received
      // earlier that lands later cannot overwrite a newer one. Two received at the same
      // microsecond are ordered as the live models order them (sensorId, then `at`, then
      // occupied, docs/sensors.md), so the table keeps the reading every model shows.
      await this.db.query(
        `INSERT INTO seat_live (seat_id, occupied, reading_at, received_at, sensor_id, updated_at)
         SELECT t.seat_id, t.occupied, t.reading_at, t.received_at, t.sensor_id, now()
           FROM unnest($1::int[], $2::bool[], $3::timestamptz[], $4::timestamptz[], $5::text[]) AS t(seat_id, occupied, reading_at, received_at, sensor_id)
         ON CONFLICT (seat_id) DO UPDATE
            SET occupied = EXCLUDED.occupied, reading_at = EXCLUDED.reading_at, received_at = EXCLUDED.received_at,
                sensor_id = EXCLUDED.sensor_id, updated_at = now()
          WHERE (seat_live.received_at, coalesce(seat_live.sensor_id, '') COLLATE "C", seat_live.reading_at, seat_live.occupied)
             <= (EXCLUDED.received_at, EXCLUDED.sensor_id COLLATE "C", EXCLUDED.reading_at, EXCLUDED.occupied)`,
        [seatIds, occupied, readingAt, receivedAt, sensorIds],
      );
      this.stats.flushes++;
      this.stats.rowsWritten += seatIds.length;
      if (this.failing) this.log.info({ rows: seatIds.length }, 'sensor state persisted again');
      this.failing = false;
    } catch (err) {
      this.stats.failures++;
      // Keep the batch for the next flush unless newer readings for those seats arrived meanwhile.
      for (const [seatId, r] of batch) {
        const newer = this.pending.get(seatId);
        if (!newer || newer.receivedAtMs < r.receivedAtMs) this.pending.set(seatId, r);
      }
      if (!this.failing) this.log.warn({ err: (err as Error).message, rows: seatIds.length }, 'could not persist sensor state; will retry');
      this.failing = true;
    } finally {
      this.stats.pending = this.pending.size;
    }
  }
}

/**
 * A receipt time (ms with a fraction) as an RFC 3339 timestamp to the microsecond, which timestamptz
 * keeps and a Date would not: seat_live then keeps the newest by the same times the models compare.
 */
export function timestampMicros(ms: number): string {
  const whole = Math.floor(ms);
  const us = Math.min(999, Math.round((ms - whole) * 1000));
  return `${new Date(whole).toISOString().slice(0, -1)}${String(us).padStart(3, '0')}Z`;
}
