-- carrel_book: a booking in one round trip (docs/architecture.md, "The path of a request";
-- called by ReservationService.create, src/core/reservations.ts). One statement, so one
-- transaction, runs every step of a booking in this order:
--
--   1. p_lock_timeout_ms (what is left of the request's deadline; NULL without one) becomes this
--      transaction's lock_timeout (set_config(..., true): gone at its end, no extra round trip).
--      A lock wait that would outlast the deadline — for either lock below, or for a concurrent
--      insert the exclusion constraint must wait for — is cancelled (55P03) and the booking
--      rolled back.
--   2. The per-user lock (p_lock_class = LockClass.userBooking, src/db/lockKeys.ts). A user's
--      racing bookings and waitlist claims (carrel_claim takes the same lock) take turns; users
--      never wait for each other. Every statement after it takes a fresh snapshot (a VOLATILE
--      PL/pgSQL function under READ COMMITTED does), so the checks see whatever the previous
--      holder committed.
--   3. The idempotency key: a booking this user made with it before is returned as it is.
--   4. The per-user rules, carrel_user_rules (active limit, daily and weekly quotas), over the
--      thresholds and periods the caller computed (Node owns the rules and the time zones).
--   5. The per-seat lock (LockClass.seatBooking), always after the user's, so the two cannot
--      deadlock each other. Racing inserts of one seat queue here: the first inserts and
--      commits, each next one finds the committed row and gets 23P01 at once. Without it, two
--      clashing inserts each wait inside the exclusion constraint for the other's uncommitted
--      row, a deadlock PostgreSQL breaks only after deadlock_timeout, one victim at a time. The
--      lock only orders racers; different seats never wait for each other.
--   6. The INSERT, which the exclusion constraint reservations_no_overlap accepts or refuses: its
--      23P01, whose detail names the clashing hold, reaches the caller unchanged (src/db/errors.ts
--      maps it; src/core/bufferClash.ts says what it means). The hold is the booking plus the
--      branch's cleaning buffer. The seat must be IN_SERVICE.
--
-- Outcomes the caller turns into answers come back as a row, not as exceptions:
--   'created'       the new reservation;
--   'existing'      the idempotency key was used before: that booking;
--   'maxActive'     used = the user's active bookings;
--   'quota'         period = 1-based index into the periods passed in, used = minutes booked there;
--   'outOfService'  the seat is out of service (or gone).
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
  -- 1. Lock waits end at the request's deadline.
  IF p_lock_timeout_ms IS NOT NULL THEN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms::text, true);
  END IF;

  -- 2. This user's bookings and claims take turns.
  PERFORM pg_advisory_xact_lock(p_lock_class, p_user);

  -- 3. A retry with the key gets the booking it made.
  IF p_key IS NOT NULL THEN
    RETURN QUERY
      SELECT 'existing'::text, NULL::integer, NULL::integer, r.id, r.seat_id, r.user_id, s.branch_id,
             lower(r.during), upper(r.during), r.status, r.created_at, r.checked_in_at, r.offer_expires_at, r.waitlist_id
      FROM reservations r JOIN seats s ON s.id = r.seat_id
      WHERE r.user_id = p_user AND r.idempotency_key = p_key;
    IF FOUND THEN RETURN; END IF;
  END IF;

  -- 4. The active limit and the quotas.
  SELECT * INTO v_rules FROM carrel_user_rules(p_user, p_start, p_end, p_now, p_max_active, p_period_start, p_period_end, p_period_quota);
  IF v_rules.outcome IS NOT NULL THEN
    RETURN QUERY SELECT v_rules.outcome, v_rules.period, v_rules.used, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
      NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
    RETURN;
  END IF;

  -- 5. Racing inserts of one seat queue here instead of deadlocking in the exclusion constraint.
  PERFORM pg_advisory_xact_lock(1936025972, p_seat);  -- LockClass.seatBooking (src/db/lockKeys.ts)

  -- 6. The insert; the exclusion constraint decides every clash.
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

-- The 11-argument form, without a deadline, that releases before migration 005 call; kept so that
-- such an instance goes on booking through a rolling upgrade. The same booking, no lock timeout.
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
