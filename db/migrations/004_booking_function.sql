-- A booking in one round trip (docs/architecture.md, "The path of a request"). reservations.create
-- used to run BEGIN, the per-user advisory lock, the usage query, the INSERT and COMMIT as five
-- statements from Node: five round trips, with the pool connection held across all of them. This
-- function runs the same steps, in the same order and with the same guarantees, inside the one
-- statement's transaction:
--
-- * The per-user lock comes first, and every statement after it takes a fresh snapshot (a
--   VOLATILE PL/pgSQL function under READ COMMITTED does), so the active-limit and quota
--   checks see whatever the previous holder of the lock committed. Different users never
--   wait for each other; seats are still arbitrated by the exclusion constraint alone, whose
--   23P01 (with its detail naming the clashing hold) reaches the caller unchanged.
-- * Outcomes the caller turns into wire errors come back as rows, not exceptions: 'created',
--   'existing' (the idempotency key was used before: the row returned is that booking),
--   'maxActive' (used = active count), 'quota' (period = 1-based index into the periods
--   passed in, used = minutes already booked there), 'outOfService'.
-- * The thresholds and the periods (local days and weeks of the branch) are computed by the
--   caller, which owns the rules and time zones; the function only counts.
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
  p_period_quota integer[]
) RETURNS TABLE (
  outcome text, period integer, used integer,
  id bigint, seat_id integer, user_id integer, branch_id integer, start_at timestamptz, end_at timestamptz,
  status text, created_at timestamptz, checked_in_at timestamptz, offer_expires_at timestamptz, waitlist_id bigint
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  v_count integer;
  v_range tstzrange;
BEGIN
  PERFORM pg_advisory_xact_lock(p_lock_class, p_user);

  IF p_key IS NOT NULL THEN
    RETURN QUERY
      SELECT 'existing'::text, NULL::integer, NULL::integer, r.id, r.seat_id, r.user_id, s.branch_id,
             lower(r.during), upper(r.during), r.status, r.created_at, r.checked_in_at, r.offer_expires_at, r.waitlist_id
      FROM reservations r JOIN seats s ON s.id = r.seat_id
      WHERE r.user_id = p_user AND r.idempotency_key = p_key;
    IF FOUND THEN RETURN; END IF;
  END IF;

  SELECT count(*)::integer INTO v_count FROM reservations r
  WHERE r.user_id = p_user AND r.status IN ('CONFIRMED', 'CHECKED_IN') AND upper(r.during) > p_now;
  IF v_count >= p_max_active THEN
    RETURN QUERY SELECT 'maxActive'::text, NULL::integer, v_count, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
      NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
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
      RETURN QUERY SELECT 'quota'::text, i, v_count, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
        NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
      RETURN;
    END IF;
  END LOOP;

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

  -- Nothing inserted: the key was taken by a writer that does not take the user lock (a
  -- waitlist claim), or the seat is out of service.
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
