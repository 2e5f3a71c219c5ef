// What a clash with another booking means for the user (docs/protocol.md, "`reservations.create`").
// The database refuses a booking whose hold — its time plus the branch's cleaning buffer — overlaps
// another active hold of the seat (reservations_no_overlap), and names the other hold (DbConflict,
// reason 'overlap', db/errors.ts). When the times themselves overlap, that is a double booking:
// CONFLICT, as the database said. When only a buffer is in the way — the other booking's cleaning
// time after it, or ours running into its start — the seat is free for the time asked, and what
// stops the booking is a branch rule: FAILED_PRECONDITION rule 'padding', with the same clashing
// hold (docs/protocol.md, "Rule names").
//
// The other booking's time is its hold minus the branch's padding now: the constraint's detail
// names only holds, and padding is per branch, changed rarely (a booking made before a change
// keeps the buffer it was made with, so for it this is an estimate).
import type { CarrelError } from '../errors.js';
import type { Clash } from '../db/errors.js';
import { Rule, ruleError } from './rules.js';

/** True when the booking [startMs, endMs) clashes with the hold `clash` only through a cleaning buffer. */
export function onlyBufferClashes(clash: Clash, booking: { startMs: number; endMs: number }, paddingMinutes: number): boolean {
  if (paddingMinutes <= 0) return false;
  const otherStart = Date.parse(clash.start);
  const otherEnd = Math.max(otherStart, Date.parse(clash.end) - paddingMinutes * 60_000);
  return !(booking.startMs < otherEnd && otherStart < booking.endMs);
}

/** The padding rule's refusal, naming the clashing hold. */
export function paddingRuleError(clash: Clash, paddingMinutes: number): CarrelError {
  return ruleError(
    Rule.padding,
    `the seat needs its ${paddingMinutes}-minute cleaning buffer between bookings, ` +
      `and that clashes with another booking (held ${clash.start} → ${clash.end}, buffer included)`,
    { paddingMinutes, conflict: clash },
  );
}
