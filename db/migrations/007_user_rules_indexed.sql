-- The per-user booking rules read only the rows they need (docs/rules.md). Measured on the bench's
-- booking run, where users keep many bookings: the active count and the two quota sums read
-- every one of a user's rows by user_id alone (1-3 ms of PostgreSQL time per booking at ~180
-- rows per user), so a booking got slower with each booking the user had ever made.
--
-- * The active count reads an index of the limited statuses by (user_id, upper(during)): the
--   rows that have not ended, and nothing else.
-- * A quota sum reads, by (user_id, lower(during)), only the bookings that start before the
--   period ends and at most a day before it begins: a booking is never longer than a day
--   (rules.maxDurationMinutes is capped at 24 h, and a waitlist window at the booking rules), so
--   no booking that overlaps the period is left out. This migration changed carrel_user_rules
--   so; its definition now lives in db/functions/carrel_user_rules.sql, which migrate applies
--   after the numbered migrations every time (docs/operations.md, "The database").
CREATE INDEX reservations_user_limited_end ON reservations (user_id, upper(during))
  WHERE status IN ('CONFIRMED', 'CHECKED_IN');
