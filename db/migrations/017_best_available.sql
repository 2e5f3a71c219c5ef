-- Best-available booking (docs/rules.md, "Booking any free seat"): carrel_book_batch walks a
-- branch's seats in a stable order and books the first free one that matches. Two indexes keep
-- that walk cheap whatever the size of the branch:
--
-- * seats_branch_order gives the order itself — area, then label, then id — so a walk that
--   starts at some seat reads the branch's seats from there on, without sorting them all; it
--   carries what the filters read, so the walk never visits the table (an index-only scan).
-- * reservations_seat_active_start answers "is this seat taken for this window" with a btree
--   range: the seat's active holds that start before the window ends and at most 28 hours before
--   it begins (a booking lasts at most 24 h, rules.maxDurationMinutes, plus a cleaning buffer of at
--   most 4 h, the padding_minutes check). The exclusion constraint's GiST index answers the same
--   question too, but measured on a 2,000-seat branch with 100,000 bookings it read ~50 pages a
--   probe (0.5 ms; a whole branch 100 ms) against 3-9 here (a whole branch 15 ms). The constraint
--   still decides every clash; this index only steers the walk.
CREATE INDEX seats_branch_order ON seats (branch_id, area, label, id) INCLUDE (status, has_power, has_monitor);
CREATE INDEX reservations_seat_active_start ON reservations (seat_id, lower(hold))
  WHERE status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED');
