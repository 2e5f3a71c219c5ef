-- The request's deadline reaches the booking statement (audit: a request waited behind the
-- user's booking lock, the client was told DEADLINE_EXCEEDED at 1 s, and the booking committed
-- anyway once the lock came free). carrel_book takes one more argument, p_lock_timeout_ms: the
-- time the request has left. It becomes this statement's lock_timeout (set_config(..., true):
-- the transaction's own setting, gone at its end, no extra round trip), so PostgreSQL cancels
-- any lock wait — the per-user lock, or a concurrent insert of the same seat that the
-- exclusion constraint must wait for — with 55P03 at the deadline and rolls the booking back.
-- NULL leaves lock_timeout alone (callers without a deadline).
--
-- The per-user rules (active limit, quotas) move into carrel_user_rules, unchanged, so every
-- writer that gives a user a booking under the per-user lock runs the same checks (the
-- waitlist claim, db/migrations/006). The 11-argument carrel_book of 004 stays as a wrapper,
-- so an instance still running the previous release keeps booking during a rolling upgrade.

-- Checks the rules that read a user's other rows, for a booking [p_start, p_end) at p_now. The
-- caller holds the per-user lock. outcome is NULL when the booking may go ahead, 'maxActive'
-- (used = active count) or 'quota' (period = 1-based index into the periods, used = minutes
-- already booked there). Only CONFIRMED and CHECKED_IN count as active; booked time is
-- CONFIRMED, CHECKED_IN, COMPLETED and NO_SHOW (an OFFERED hold is not the user's yet).
CREATE FUNCTION carrel_user_rules(
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
    WHERE r.user_id = p_user AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'COMPLETED', 'NO_SHOW') AND r.during && v_range;
    IF v_count + extract(epoch FROM least(p_period_end[i], p_end) - greatest(p_period_start[i], p_start)) / 60 > p_period_quota[i] THEN
      outcome := 'quota';
      period := i;
      used := v_count;
      RETURN;
    END IF;
  END LOOP;
END
$$;

CREATE FUNCTION carrel_book(
  p_seat integer,
  p_user integer,
  p_start timestamptz,
  p_end timestamptz,
  p_key text,
  p_now timestamptz,
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
  v_rules record;
BEGIN
  IF p_lock_timeout_ms IS NOT NULL THEN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms::text, true);
  END IF;
  PERFORM pg_advisory_xact_lock(p_lock_class, p_user);

  IF p_key IS NOT NULL THEN
    RETURN QUERY
      SELECT 'existing'::text, NULL::integer, NULL::integer, r.id, r.seat_id, r.user_id, s.branch_id,
             lower(r.during), upper(r.during), r.status, r.created_at, r.checked_in_at, r.offer_expires_at, r.waitlist_id
      FROM reservations r JOIN seats s ON s.id = r.seat_id
      WHERE r.user_id = p_user AND r.idempotency_key = p_key;
    IF FOUND THEN RETURN; END IF;
  END IF;

  SELECT * INTO v_rules FROM carrel_user_rules(p_user, p_start, p_end, p_now, p_max_active, p_period_start, p_period_end, p_period_quota);
  IF v_rules.outcome IS NOT NULL THEN
    RETURN QUERY SELECT v_rules.outcome, v_rules.period, v_rules.used, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
      NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
    RETURN;
  END IF;

  RETURN QUERY
    WITH ins AS (
      INSERT INTO reservations (seat_id, user_id, during, hold, status, idempotency_key, created_at, updated_at)
      SELECT s.id, p_user, tstzrange(p_start, p_end),
             tstzrange(p_start, p_end + make_interval(mins => b.padding_minutes)), 'CONFIRMED', p_key, p_now, p_now
      FROM seats s JOIN branches b ON b.id = s.branch_id
      WHERE s.id = p_seat AND s.status = 'IN_SERVICE'
      ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING reservations.id, reservations.seat_id, reservations.user_id, reservations.during, reservations.status,
                reservations.created_at, reservations.checked_in_at, reservations.offer_expires_at, reservations.waitlist_id
    )
    SELECT 'created'::text, NULL::integer, NULL::integer, ins.id, ins.seat_id, ins.user_id,
           (SELECT s.branch_id FROM seats s WHERE s.id = ins.seat_id),
           lower(ins.during), upper(ins.during), ins.status, ins.created_at, ins.checked_in_at, ins.offer_expires_at, ins.waitlist_id
    FROM ins;
  IF FOUND THEN RETURN; END IF;

  -- Nothing inserted: the key was taken by a writer that does not take the user lock, or the
  -- seat is out of service.
  IF p_key IS NOT NULL THEN
    RETURN QUERY
      SELECT 'existing'::text, NULL::integer, NULL::integer, r.id, r.seat_id, r.user_id, s.branch_id,
             lower(r.during), upper(r.during), r.status, r.created_at, r.checked_in_at, r.offer_expires_at, r.waitlist_id
      FROM reservations r JOIN seats s ON s.id = r.seat_id
      WHERE r.user_id = p_user AND r.idempotency_key = p_key;
    IF FOUND THEN RETURN; END IF;
  END IF;
  RETURN QUERY SELECT 'outOfService'::text, NULL::integer, NULL::integer, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
    NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
END
$$;

-- The previous release's call, without a deadline: one body for both.
CREATE OR REPLACE FUNCTION carrel_book(
  p_seat integer,
  p_user integer,
  p_start timestamptz,
  p_end timestamptz,
  p_key text,
  p_now timestamptz,
  p_lock_class integer,
  p_max_active integer,
  p_period_start timestamptz[],
  p_period_end timestamptz[],
  p_period_quota integer[]
) RETURNS TABLE (
  outcome text, period integer, used integer,
  id bigint, seat_id integer, user_id integer, branch_id integer, start_at timestamptz, end_at timestamptz,
  status text, created_at timestamptz, checked_in_at timestamptz, offer_expires_at timestamptz, waitlist_id bigint
) LANGUAGE sql VOLATILE AS $$
  SELECT * FROM carrel_book(p_seat, p_user, p_start, p_end, p_key, p_now, p_lock_class, p_max_active,
                            p_period_start, p_period_end, p_period_quota, NULL::integer);
$$;
