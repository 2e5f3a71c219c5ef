-- carrel_user_rules: the rules that read a user's other rows (docs/rules.md), for a booking
-- [p_start, p_end) at p_now. Every writer that gives a user a booking runs it under the per-user
-- lock, in the same statement as its write: carrel_book_batch, carrel_claim (and carrel_book, which
-- instances of the previous release call). Node owns the rules and the time zones
-- (src/core/userRules.ts): it passes the active limit, whether one seat at a time holds, and the
-- quota periods — the local days, then weeks, the booking touches — and turns the outcome into the
-- refusal.
--
-- outcome is NULL when the booking may go ahead, else, in this order:
--   'overlapsOwnBooking'  (only with p_one_seat) reservation_id = one of the user's CONFIRMED or
--                         CHECKED_IN bookings whose time overlaps [p_start, p_end): one person,
--                         one seat at a time (rules.oneSeatAtATime);
--   'maxActive'           used = the user's active bookings (CONFIRMED, CHECKED_IN, not yet ended);
--   'quota'               period = 1-based index into the periods, used = minutes already booked
--                         there (CONFIRMED, CHECKED_IN, COMPLETED, NO_SHOW: an OFFERED hold is not
--                         the user's yet).
--
-- Each check reads only the rows it needs (test/integration/queryPlans.test.ts): the overlap and
-- the active count are one read of reservations_user_limited_end, the rows that have not ended
-- (p_start is never before the slot under way, so a booking overlapping it has not ended either);
-- the quota sums are one read by (user_id, lower(during)) of the bookings that start before the
-- last period ends and at most a day before the first begins — a booking is never longer than a
-- day (rules.maxDurationMinutes is capped at 24 h, a waitlist window at the booking rules), so none
-- that overlaps a period is left out.
CREATE OR REPLACE FUNCTION carrel_user_rules(
  p_user integer,
  p_start timestamptz,
  p_end timestamptz,
  p_now timestamptz,
  p_max_active integer,
  p_one_seat boolean,
  p_period_start timestamptz[],
  p_period_end timestamptz[],
  p_period_quota integer[],
  OUT outcome text,
  OUT period integer,
  OUT used integer,
  OUT reservation_id bigint
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_count integer;
  v_overlap bigint;
  v_period record;
BEGIN
  SELECT count(*) FILTER (WHERE upper(r.during) > p_now)::integer,
         min(r.id) FILTER (WHERE p_one_seat AND r.during && tstzrange(p_start, p_end))
    INTO v_count, v_overlap
  FROM reservations r
  WHERE r.user_id = p_user AND r.status IN ('CONFIRMED', 'CHECKED_IN') AND upper(r.during) > least(p_now, p_start);
  IF v_overlap IS NOT NULL THEN
    outcome := 'overlapsOwnBooking';
    reservation_id := v_overlap;
    RETURN;
  END IF;
  IF v_count >= p_max_active THEN
    outcome := 'maxActive';
    used := v_count;
    RETURN;
  END IF;

  -- Minutes of the user's booked-and-not-given-back time inside each period, in one read.
  FOR v_period IN
    SELECT p.i::integer AS i, p.s, p.e, p.q,
           coalesce((SELECT sum(extract(epoch FROM upper(r.during * tstzrange(p.s, p.e)) - lower(r.during * tstzrange(p.s, p.e))))
                     FROM reservations r
                     WHERE r.user_id = p_user AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'COMPLETED', 'NO_SHOW')
                       AND r.during && tstzrange(p.s, p.e)
                       AND lower(r.during) < p.e AND lower(r.during) >= p.s - interval '1 day'), 0)::integer / 60 AS booked
    FROM unnest(p_period_start, p_period_end, p_period_quota) WITH ORDINALITY AS p(s, e, q, i)
    ORDER BY p.i
  LOOP
    IF v_period.booked + extract(epoch FROM least(v_period.e, p_end) - greatest(v_period.s, p_start)) / 60 > v_period.q THEN
      outcome := 'quota';
      period := v_period.i;
      used := v_period.booked;
      RETURN;
    END IF;
  END LOOP;
END
$$;

-- The 8-argument form, without one seat at a time, that carrel_book and the previous release's
-- carrel_claim call: the same checks, the overlap left out.
CREATE OR REPLACE FUNCTION carrel_user_rules(
  p_user integer,
  p_start timestamptz,
  p_end timestamptz,
  p_now timestamptz,
  p_max_active integer,
  p_period_start timestamptz[],
  p_period_end timestamptz[],
  p_period_quota integer[],
  OUT outcome text,
  OUT period integer,
  OUT used integer
) LANGUAGE sql VOLATILE AS $$
  SELECT r.outcome, r.period, r.used
  FROM carrel_user_rules(p_user, p_start, p_end, p_now, p_max_active, false, p_period_start, p_period_end, p_period_quota) r;
$$;
