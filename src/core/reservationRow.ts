// The one mapping between a reservations row and what leaves core: the wire shape of
// docs/protocol.md ("Shapes used by many methods": `{id, seatId, userId, start, end, status, …}`)
// and the ReservationFact carried by core events. Every query that returns reservations selects
// RESERVATION_COLUMNS.
import type { ReservationFact, ReservationStatus, ReservationWire } from '../wire/types.js';

export type { ReservationWire };

/** SELECT list for a reservation joined to its seat as `s` (for the branch). */
export const RESERVATION_COLUMNS = `r.id, r.seat_id, r.user_id, s.branch_id,
  lower(r.during) AS start_at, upper(r.during) AS end_at, r.status, r.created_at,
  r.checked_in_at, r.offer_expires_at, r.waitlist_id, r.hold_until`;

/** The same list for a data-modifying statement's RETURNING (no join available). */
export const RETURNING_COLUMNS = `id, seat_id, user_id,
  (SELECT branch_id FROM seats WHERE seats.id = seat_id) AS branch_id,
  lower(during) AS start_at, upper(during) AS end_at, status, created_at,
  checked_in_at, offer_expires_at, waitlist_id, hold_until`;

export interface ReservationRow {
  id: number;
  seat_id: number;
  user_id: number;
  branch_id: number;
  start_at: Date;
  end_at: Date;
  status: ReservationStatus;
  created_at: Date;
  checked_in_at: Date | null;
  offer_expires_at: Date | null;
  waitlist_id: number | null;
  /** While away (docs/rules.md, presence); absent from statements that do not read it (carrel_book). */
  hold_until?: Date | null;
}

export function reservationToWire(row: ReservationRow): ReservationWire {
  const wire: ReservationWire = {
    id: row.id,
    seatId: row.seat_id,
    userId: row.user_id,
    start: row.start_at.toISOString(),
    end: row.end_at.toISOString(),
    status: row.status,
    createdAt: row.created_at.toISOString(),
  };
  if (row.checked_in_at) wire.checkedInAt = row.checked_in_at.toISOString();
  if (row.offer_expires_at) wire.offerExpiresAt = row.offer_expires_at.toISOString();
  if (row.hold_until && row.status === 'CHECKED_IN') wire.holdUntil = row.hold_until.toISOString();
  return wire;
}

export function reservationToFact(row: ReservationRow): ReservationFact {
  return {
    id: row.id,
    seatId: row.seat_id,
    branchId: row.branch_id,
    userId: row.user_id,
    start: row.start_at.toISOString(),
    end: row.end_at.toISOString(),
    status: row.status,
    ...(row.hold_until && row.status === 'CHECKED_IN' ? { holdUntil: row.hold_until.toISOString() } : {}),
  };
}

/** RETURNING_COLUMNS for a statement whose target table is aliased (UPDATE reservations r … FROM …). */
export function returningColumnsFor(alias: string): string {
  const a = alias;
  return `${a}.id, ${a}.seat_id, ${a}.user_id,
  (SELECT branch_id FROM seats WHERE seats.id = ${a}.seat_id) AS branch_id,
  lower(${a}.during) AS start_at, upper(${a}.during) AS end_at, ${a}.status, ${a}.created_at,
  ${a}.checked_in_at, ${a}.offer_expires_at, ${a}.waitlist_id, ${a}.hold_until`;
}
