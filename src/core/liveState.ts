// A seat's live state from the reservation table alone (docs/protocol.md, "Live states and flags"):
// the one definition seats.list, seats.get and the branch counts share. The live-seat model refines
// it with sensor readings; until then:
//   unavailable  the seat is out of service
//   occupied     a CHECKED_IN reservation that has not ended (checked in early counts too)
//   reserved     a CONFIRMED or OFFERED reservation covering now
//   free         otherwise
import type { RulesConfig } from './rules.js';

/** Statuses that hold a seat; the same list as the exclusion constraint's WHERE clause. */
export const ACTIVE_STATUSES_SQL = `('CONFIRMED', 'CHECKED_IN', 'OFFERED')`;

import type { LiveState } from '../wire/types.js';

export type { LiveState };

/**
 * SQL for the live state of seat `s` at the timestamptz parameter `nowParam`. The `hold &&`
 * prefilter matches the exclusion constraint's GiST index (reservations_no_overlap), so each
 * seat costs one index probe. A CHECKED_IN reservation can have begun up to
 * checkInOpensBeforeMinutes before its start, hence the window reaching that far ahead.
 */
export function liveStateSql(nowParam: string, rules: RulesConfig): string {
  const early = Math.trunc(rules.checkInOpensBeforeMinutes);
  return `CASE WHEN s.status <> 'IN_SERVICE' THEN 'unavailable' ELSE coalesce((
      SELECT CASE WHEN bool_or(r.status = 'CHECKED_IN') THEN 'occupied' ELSE 'reserved' END
      FROM reservations r
      WHERE r.seat_id = s.id AND r.status IN ${ACTIVE_STATUSES_SQL}
        AND r.hold && tstzrange(${nowParam}::timestamptz, ${nowParam}::timestamptz + interval '${early} minutes', '[]')
        AND (r.during @> ${nowParam}::timestamptz OR (r.status = 'CHECKED_IN' AND upper(r.during) > ${nowParam}::timestamptz))
      HAVING count(*) > 0), 'free') END`;
}
