-- One seat's racing bookings queue instead of deadlocking (docs/architecture.md, "Invariants and
-- where they are enforced").
--
-- Two inserts of clashing rows into the exclusion constraint each find the other's
-- uncommitted row and wait for it: a deadlock that PostgreSQL breaks only after
-- deadlock_timeout (1 s), one victim at a time. Eight users on one seat and slot took up to 9 s
-- on a busy machine, past the request deadline, so every one of them was told DEADLINE_EXCEEDED
-- and nobody got the seat. carrel_book now takes a transaction advisory lock on the seat just
-- before its INSERT (after the per-user lock and checks, always in that order, so the two locks
-- cannot deadlock each other): the first booker inserts and commits, and each next one finds the
-- committed row and gets 23P01 at once. The exclusion constraint still decides every clash; the
-- lock only orders the racers. Different seats never wait for each other.
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

  -- Racing inserts of one seat queue here instead of in the exclusion constraint, where each
  -- waits for the others' uncommitted rows and they deadlock (40P01, after deadlock_timeout).
  PERFORM pg_advisory_xact_lock(1936025972, p_seat);  -- 'seat'

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

