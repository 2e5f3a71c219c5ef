-- Indexes for the reservation core's main queries. Plans checked with EXPLAIN ANALYZE on a
-- copy of the seed plus ~170k reservations over 90 days and 2,000 users:
--
-- * seats.list / seats.get / branch counts / seats.availability / the sensor selectors probe
--   a seat's active holds (`seat_id = … AND hold && …` over CONFIRMED/CHECKED_IN/OFFERED):
--   served by the exclusion constraint's own GiST index reservations_no_overlap (Index Only
--   Scan for `available`, one probe per seat; ~3 ms for a 54-seat branch uncached). Nothing
--   to add; the queries repeat the constraint's status list so the partial index applies.
-- * reservations.mine history (`user_id = … ORDER BY lower(during) DESC, id DESC LIMIT n`,
--   keyset on (lower(during), id)): an Index Scan Backward on (user_id, lower(during), id)
--   with no sort step. It supersedes reservations_user_start (same leading columns).
-- * reservations.mine upcoming and the per-user active limit (`user_id = … AND status IN
--   (active) AND upper(during) > now`): a Bitmap Index Scan on the partial index below, which
--   holds only a user's handful of active rows instead of their whole history.
-- * The quota sums (`user_id = … AND during && period`) use either of the user indexes.
CREATE INDEX reservations_user_start_id ON reservations (user_id, lower(during), id);
DROP INDEX reservations_user_start;
CREATE INDEX reservations_user_active ON reservations (user_id, lower(during), id)
  WHERE status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED');
