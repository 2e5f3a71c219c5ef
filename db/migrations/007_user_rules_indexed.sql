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
--   no booking that overlaps the period is left out.
CREATE INDEX reservations_user_limited_end ON reservations (user_id, upper(during))
  WHERE status IN ('CONFIRMED', 'CHECKED_IN');

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
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_count integer;
  v_range tstzrange;
BEGIN
  SELECT count(*)::integer INTO v_count FROM reservations r
  WHERE r.user_id = p_user AND r.status IN ('CONFIRMED', 'CHECKED_IN') AND upper(r.during) > p_now;
  IF v_count >= p_max_active THEN
    outcome := 'maxActive';
    used := v_count;
    RETURN;
  END IF;

  FOR i IN 1 .. coalesce(array_length(p_period_start, 1), 0) LOOP
    v_range := tstzrange(p_period_start[i], p_period_end[i]);
    -- Minutes of the user's booked-and-not-given-back time inside the period.
    SELECT coalesce(sum(extract(epoch FROM upper(r.during * v_range) - lower(r.during * v_range))), 0)::integer / 60
      INTO v_count
    FROM reservations r
    WHERE r.user_id = p_user AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'COMPLETED', 'NO_SHOW') AND r.during && v_range
      AND lower(r.during) < p_period_end[i] AND lower(r.during) >= p_period_start[i] - interval '1 day';
    IF v_count + extract(epoch FROM least(p_period_end[i], p_end) - greatest(p_period_start[i], p_start)) / 60 > p_period_quota[i] THEN
      outcome := 'quota';
      period := i;
      used := v_count;
      RETURN;
    END IF;
  END LOOP;
END
$$;
