// Away holds (docs/rules.md, "Presence: the state machine"): the steps of a CHECKED_IN booking
// between its seat's sensor and its owner. The live model (liveSeats.ts, drive) says when; these
// guarded UPDATEs decide, so that racing instances, or a step asked twice, change a booking once:
//
//   checked in ──(seat empty)──► away (away_since, hold_until) ──(sat down again)──► checked in
//                                  │ hold_until − presence.awayEndingMinutes: `awayEnding` to the owner
//                                  └ hold_until: released (ReservationService.releaseBySensor)
//
// The hold lives on the reservation (migration 015), so a restart keeps it, every instance's model
// loads it, and the occupancy history can read it. Its length is presence.awayMinutes, or that of
// the first presence.windows entry whose local [from, to) holds the moment the hold starts, on the
// branch's clock (branch time zones: zonedTime.ts). Times are the server's (the injected Clock's,
// as the model passes them), never a sensor's `at`.
import type { Config } from '../config/schema.js';
import type { Db } from '../db/db.js';
import type { CoreEventSink } from './events.js';
import { RETURNING_COLUMNS, reservationToFact, type ReservationRow } from './reservationRow.js';
import type { ReservationFact } from '../wire/types.js';
import type { SeatContexts } from './seatContexts.js';
import { localParts } from './zonedTime.js';

export type PresenceConfig = Config['presence'];

const MINUTE = 60_000;

/** Minutes an away hold that starts at atMs lasts in the branch (presence.windows, else awayMinutes). */
export function awayMinutesAt(config: PresenceConfig, branchId: number, timezone: string, atMs: number): number {
  const p = localParts(atMs, timezone);
  const hhmm = `${String(p.hour).padStart(2, '0')}:${String(p.minute).padStart(2, '0')}`;
  for (const w of config.windows) {
    if (w.branchIds && !w.branchIds.includes(branchId)) continue;
    if (w.from <= hhmm && hhmm < w.to) return w.awayMinutes;
  }
  return config.awayMinutes;
}

export interface PresenceServiceOptions {
  db: Db;
  events: CoreEventSink;
  seats: SeatContexts;
  config: PresenceConfig;
}

export class PresenceService {
  constructor(private readonly opts: PresenceServiceOptions) {}

  /**
   * The seat's CHECKED_IN booking under way at atMs becomes away, held until atMs + the hold's
   * length. The owner hears `away`; subscribers see the seat `away` with `holdUntil`.
   */
  async awayBySensor(seatId: number, atMs: number): Promise<ReservationFact | null> {
    const seat = await this.opts.seats.seatContext(seatId);
    const holdUntilMs = atMs + awayMinutesAt(this.opts.config, seat.branchId, seat.timezone, atMs) * MINUTE;
    const row = await this.step(seatId, atMs, 'away_since IS NULL', `away_since = $2, hold_until = $3, away_warned = false`, [new Date(holdUntilMs)]);
    if (!row) return null;
    return this.tell(row, 'away', atMs, true);
  }

  /** Someone sat down again: the seat's away booking is checked in as before, its hold gone. */
  async backBySensor(seatId: number, atMs: number): Promise<ReservationFact | null> {
    const row = await this.step(seatId, atMs, 'away_since IS NOT NULL AND hold_until > $2', 'away_since = NULL, hold_until = NULL, away_warned = false', []);
    if (!row) return null;
    return this.tell(row, 'back', atMs, false);
  }

  /** The seat's away booking's hold ends within presence.awayEndingMinutes: the owner hears `awayEnding`, once. */
  async awayEndingBySensor(seatId: number, atMs: number): Promise<ReservationFact | null> {
    const row = await this.step(
      seatId,
      atMs,
      'away_since IS NOT NULL AND NOT away_warned AND hold_until > $2 AND hold_until <= $3',
      'away_warned = true',
      [new Date(atMs + this.opts.config.awayEndingMinutes * MINUTE)],
    );
    if (!row) return null;
    const fact = reservationToFact(row);
    this.opts.events.emit({ type: 'personal', userId: row.user_id, kind: 'awayEnding', reservation: fact, at: new Date(atMs).toISOString() });
    return fact;
  }

  /**
   * One guarded UPDATE of the seat's CHECKED_IN booking under way at atMs ($1 seat, $2 at, then
   * `extra` from $3). The probe uses the GiST index on (seat_id, hold).
   */
  private async step(seatId: number, atMs: number, guard: string, set: string, extra: unknown[]): Promise<ReservationRow | null> {
    const res = await this.opts.db.query<ReservationRow>(
      `UPDATE reservations SET ${set}, updated_at = $2
        WHERE id = (SELECT q.id FROM reservations q
                     WHERE q.seat_id = $1 AND q.hold && tstzrange($2, $2, '[]') AND q.status = 'CHECKED_IN'
                       AND lower(q.during) <= $2 AND upper(q.during) > $2
                     ORDER BY lower(q.during) LIMIT 1)
          AND status = 'CHECKED_IN' AND upper(during) > $2 AND ${guard}
        RETURNING ${RETURNING_COLUMNS}`,
      [seatId, new Date(atMs), ...extra],
    );
    return res.rows[0] ?? null;
  }

  private tell(row: ReservationRow, cause: 'away' | 'back', atMs: number, personal: boolean): ReservationFact {
    const fact = reservationToFact(row);
    const at = new Date(atMs).toISOString();
    this.opts.events.emit({ type: 'reservation', cause, reservation: fact, at });
    if (personal) this.opts.events.emit({ type: 'personal', userId: row.user_id, kind: 'away', reservation: fact, at });
    return fact;
  }
}
