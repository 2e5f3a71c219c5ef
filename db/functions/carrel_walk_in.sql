-- carrel_walk_in: a walk-in in one statement (docs/rules.md, "Walk-ins"; called by
-- ReservationService.walkIn, src/core/reservations.ts). Someone at a free seat books it from the
-- slot under way (p_start) and is checked in at once. Node passes the longest the walk-in may
-- run (p_max_end: rules.walkInMinutes, the branch's closing, rules.maxDurationMinutes, whichever
-- comes first); this function cuts it at the seat's next booking. One statement, so one
-- transaction: a refusal or a failure leaves nothing behind. In this order:
--
--   1. p_lock_timeout_ms becomes this transaction's lock_timeout, as in carrel_book.
--   2. The per-user lock (p_lock_class = LockClass.userBooking, src/db/lockKeys.ts), the one
--      carrel_book and carrel_claim take.
--   3. The per-seat lock (LockClass.seatBooking), after the user's, as carrel_book takes it: the
--      seat's next booking read below cannot be booked away by a racing carrel_book or walk-in
--      between the read and the insert (racing walk-ins of one seat: one wins, the next finds it
--      taken).
--   4. The end: the seat's active holds over [p_start, p_max_end + the branch's cleaning buffer).
--      One that began at or before p_start holds the seat now: 'taken'. Otherwise the walk-in
--      ends at the last slot boundary that leaves the cleaning buffer before the next hold; when
--      that leaves less than p_min_minutes, 'taken' too (the seat is not free long enough).
--   5. carrel_user_rules over [p_start, end) (suspension, active limit, quotas), with only the
--      periods that window touches.
--   6. The INSERT, CHECKED_IN with checked_in_at = p_now; the exclusion constraint still decides
--      (a writer that takes no seat lock, a waitlist offer, may have come between): its 23P01
--      reaches the caller as CONFLICT.
--
-- Outcomes, as rows (ReservationService.walkIn turns them into answers):
--   'created'                        the new reservation;
--   'taken'                          start_at, end_at = the hold in the way (the reservation
--                                    columns are otherwise NULL);
--   'suspended' / 'maxActive' / 'quota'   as carrel_user_rules says;
--   'outOfService'                   the seat is out of service (or gone).
CREATE OR REPLACE FUNCTION carrel_walk_in(
  p_seat integer,
  p_user integer,
  p_start timestamptz,
  p_max_end timestamptz,
  p_now timestamptz,
  p_slot_minutes integer,
  p_min_minutes integer,
  p_lock_class integer,
  p_max_active integer,
  p_period_start timestamptz[],
  p_period_end timestamptz[],
  p_period_quota integer[],
  p_lock_timeout_ms integer
) RETURNS TABLE (
  outcome text, period integer, used integer,
  id bigint, seat_id integer, user_id integer, branch_id integer, start_at timestamptz, end_at timestamptz,
  status text, created_at timestamptz, checked_in_at timestamptz, offer_expires_at timestamptz, waitlist_id bigint
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  v_padding interval;
  v_branch integer;
  v_next record;
  v_end timestamptz;
  v_slot interval := make_interval(mins => p_slot_minutes);
  v_rules record;
  v_ps timestamptz[] := '{}';
  v_pe timestamptz[] := '{}';
  v_pq integer[] := '{}';
  v_pi integer[] := '{}';
BEGIN
  -- 1. Lock waits end at the request's deadline.
  IF p_lock_timeout_ms IS NOT NULL THEN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms::text, true);
  END IF;

  -- 2, 3. The user's bookings take turns; then this seat's bookings do.
  PERFORM pg_advisory_xact_lock(p_lock_class, p_user);
  PERFORM pg_advisory_xact_lock(1936025972, p_seat);  -- LockClass.seatBooking (src/db/lockKeys.ts)

  SELECT make_interval(mins => b.padding_minutes), s.branch_id INTO v_padding, v_branch
  FROM seats s JOIN branches b ON b.id = s.branch_id
  WHERE s.id = p_seat AND s.status = 'IN_SERVICE';
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'outOfService'::text, NULL::integer, NULL::integer, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
      NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
    RETURN;
  END IF;

  -- 4. The first active hold in the way (reservations_no_overlap's GiST index on (seat_id, hold)).
  SELECT lower(r.hold) AS hold_start, upper(r.hold) AS hold_end INTO v_next
  FROM reservations r
  WHERE r.seat_id = p_seat AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED')
    AND r.hold && tstzrange(p_start, p_max_end + v_padding)
  ORDER BY lower(r.hold) LIMIT 1;
  v_end := p_max_end;
  IF FOUND THEN
    IF v_next.hold_start <= p_start THEN
      v_end := p_start;
    ELSE
      -- The last slot boundary at or before the next hold less this walk-in's cleaning buffer
      -- (p_start lies on a slot boundary).
      v_end := least(p_max_end, p_start + v_slot * floor(extract(epoch FROM v_next.hold_start - v_padding - p_start) / (p_slot_minutes * 60)));
    END IF;
    IF v_end < p_start + make_interval(mins => p_min_minutes) THEN
      RETURN QUERY SELECT 'taken'::text, NULL::integer, NULL::integer, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
        v_next.hold_start, v_next.hold_end, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
      RETURN;
    END IF;
  END IF;

  -- 5. The rules, over the periods [p_start, v_end) touches (Node passed those of [p_start, p_max_end)).
  FOR i IN 1 .. coalesce(array_length(p_period_start, 1), 0) LOOP
    IF p_period_start[i] < v_end THEN
      v_ps := v_ps || p_period_start[i];
      v_pe := v_pe || p_period_end[i];
      v_pq := v_pq || p_period_quota[i];
      v_pi := v_pi || i;
    END IF;
  END LOOP;
  SELECT * INTO v_rules FROM carrel_user_rules(p_user, p_start, v_end, p_now, p_max_active, v_ps, v_pe, v_pq);
  IF v_rules.outcome IS NOT NULL THEN
    -- period indexes into the periods passed in: map it back.
    RETURN QUERY SELECT v_rules.outcome,
      v_pi[v_rules.period],
      v_rules.used, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
      NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
    RETURN;
  END IF;

  -- 6. The insert, checked in now.
  RETURN QUERY
    WITH ins AS (
      INSERT INTO reservations (seat_id, user_id, during, hold, status, checked_in_at, created_at, updated_at)
      VALUES (p_seat, p_user, tstzrange(p_start, v_end), tstzrange(p_start, v_end + v_padding), 'CHECKED_IN', p_now, p_now, p_now)
      RETURNING reservations.id, reservations.seat_id, reservations.user_id, reservations.during, reservations.status,
                reservations.created_at, reservations.checked_in_at, reservations.offer_expires_at, reservations.waitlist_id
    )
    SELECT 'created'::text, NULL::integer, NULL::integer, ins.id, ins.seat_id, ins.user_id, v_branch,
           lower(ins.during), upper(ins.during), ins.status, ins.created_at, ins.checked_in_at, ins.offer_expires_at, ins.waitlist_id
    FROM ins;
END
$$;
