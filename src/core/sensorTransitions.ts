// The two reservation transitions sensors may drive (DESIGN §4): sitting down in a booked seat
// inside its check-in window checks the booking in; a checked-in seat left empty long enough is
// released (checked out, the rest of the slot freed). Each is one guarded UPDATE … WHERE status
// = … RETURNING (DESIGN §3), so a racing RPC check-in/out or the lifecycle worker cannot both
// win; the CoreEvent goes out only after the statement has committed (autocommit).
import type pg from 'pg';
import { query } from '../db/pool.js';
import type { Clock } from './clock.js';
import type { CoreEventSink, ReservationFact } from './events.js';
import { RETURNING_COLUMNS, reservationToFact, type ReservationRow } from './reservationRow.js';

export interface CheckInWindow {
  /** The window opens this long before the booking starts … */
  opensBeforeMs: number;
  /** … and closes this long after it started. */
  graceMs: number;
}

type Queryable = pg.Pool | pg.PoolClient;

/**
 * Checks in the CONFIRMED booking of `seatId` whose check-in window contains `atMs` (the reading's
 * time). Returns the booking after the change, or null when there was none to check in (no
 * booking in its window, or another transition got there first).
 */
export async function checkInBySensor(
  db: Queryable,
  clock: Clock,
  seatId: number,
  atMs: number,
  opts: { window: CheckInWindow; events: CoreEventSink },
): Promise<ReservationFact | null> {
  const at = new Date(atMs);
  const result = await query<ReservationRow>(
    db,
    `UPDATE reservations SET status = 'CHECKED_IN', checked_in_at = $2, updated_at = now()
      WHERE id = (
        SELECT id FROM reservations
         WHERE seat_id = $1 AND status = 'CONFIRMED'
           AND $2 >= lower(during) - $3 * interval '1 millisecond'
           AND $2 <  lower(during) + $4 * interval '1 millisecond'
           AND $2 <  upper(during)
         ORDER BY lower(during)
         LIMIT 1)
        AND status = 'CONFIRMED'
      RETURNING ${RETURNING_COLUMNS}`,
    [seatId, at, opts.window.opensBeforeMs, opts.window.graceMs],
  );
  const row = result.rows[0];
  if (!row) return null;
  const fact = reservationToFact(row);
  opts.events.emit({ type: 'reservation', cause: 'checkIn', reservation: fact, at: new Date(clock.now()).toISOString() });
  return fact;
}

/**
 * Releases the CHECKED_IN booking of `seatId` running at `atMs`: it becomes COMPLETED and ends at
 * `atMs`, so the rest of the slot is free again (the cleaning buffer, if any, moves with the end).
 * The owner hears of it as a personal `released` event. Returns null when nothing was released.
 */
export async function releaseBySensor(
  db: Queryable,
  clock: Clock,
  seatId: number,
  atMs: number,
  opts: { events: CoreEventSink },
): Promise<ReservationFact | null> {
  const at = new Date(atMs);
  const result = await query<ReservationRow>(
    db,
    `UPDATE reservations
        SET status = 'COMPLETED',
            during = tstzrange(lower(during), $2, '[)'),
            hold = tstzrange(lower(hold), $2 + (upper(hold) - upper(during)), '[)'),
            updated_at = now()
      WHERE seat_id = $1 AND status = 'CHECKED_IN'
        AND lower(during) < $2 AND $2 < upper(during)
      RETURNING ${RETURNING_COLUMNS}`,
    [seatId, at],
  );
  const row = result.rows[0];
  if (!row) return null;
  const fact = reservationToFact(row);
  const now = new Date(clock.now()).toISOString();
  opts.events.emit({ type: 'reservation', cause: 'checkOut', reservation: fact, at: now });
  opts.events.emit({ type: 'personal', userId: fact.userId, kind: 'released', reservation: fact, at: now });
  return fact;
}
