-- carrel_book_seat: one seat tried for one booking, inside carrel_book_batch (which runs the user's
-- lock, key and rules first, and for a best-available walk (p_walk) has found the seat free in its
-- snapshot; db/functions/carrel_book_batch.sql). In order:
--
--   1. The seat's lock (LockClass.seatBooking), TRIED: held by another transaction → 'busy'.
--   2. The INSERT, in a subtransaction of its own, after lock_timeout p_wait_ms (a wait for another
--      transaction's row of this seat: one that writes without the seat's lock, or changes a
--      committed row). The exclusion constraint reservations_no_overlap decides:
--      'created' (id, seat_id, during, created_at); a clash → 'clash' with PostgreSQL's detail (one
--      seat) or 'taken' (p_walk: a hold the read above missed, longer than 28 hours); the seat out
--      of service or gone → 'outOfService' ('taken' for a walk); the key taken meanwhile (by a
--      writer without the user's lock) → 'existing'; a lock wait past p_wait_ms → 'deadline' when
--      that was all the booking's time (p_left_ms), else 'busy'; a deadlock → 'busy'; the user gone
--      (the user_id foreign key) → 'accountGone'.
CREATE OR REPLACE FUNCTION carrel_book_seat(
  p_seat integer,
  p_user integer,
  p_start timestamptz,
  p_end timestamptz,
  p_key text,
  p_now timestamptz,
  p_walk boolean,
  p_wait_ms integer,
  p_left_ms integer,
  OUT outcome text,
  OUT id bigint,
  OUT seat_id integer,
  OUT during tstzrange,
  OUT created_at timestamptz,
  OUT detail text
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  v_constraint text;
BEGIN
  IF NOT pg_try_advisory_xact_lock(1936025972, p_seat) THEN  -- LockClass.seatBooking (src/db/lockKeys.ts)
    outcome := 'busy';
    RETURN;
  END IF;
  PERFORM set_config('lock_timeout', p_wait_ms::text, true);
  BEGIN
    INSERT INTO reservations (seat_id, user_id, during, hold, status, idempotency_key, created_at, updated_at)
    SELECT s.id, p_user, tstzrange(p_start, p_end), tstzrange(p_start, p_end + make_interval(mins => b.padding_minutes)),
           'CONFIRMED', p_key, p_now, p_now
    FROM seats s JOIN branches b ON b.id = s.branch_id
    WHERE s.id = p_seat AND s.status = 'IN_SERVICE'
    ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING reservations.id, reservations.seat_id, reservations.during, reservations.created_at
    INTO id, seat_id, during, created_at;
    IF id IS NOT NULL THEN
      outcome := 'created';
    ELSIF p_key IS NOT NULL AND EXISTS (SELECT 1 FROM reservations r WHERE r.user_id = p_user AND r.idempotency_key = p_key) THEN
      outcome := 'existing';
    ELSE
      outcome := CASE WHEN p_walk THEN 'taken' ELSE 'outOfService' END;
    END IF;
  EXCEPTION
    WHEN exclusion_violation THEN
      GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
      outcome := CASE WHEN p_walk THEN 'taken' ELSE 'clash' END;
    WHEN foreign_key_violation THEN
      GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
      IF v_constraint NOT LIKE '%user_id_fkey' THEN RAISE; END IF;
      outcome := 'accountGone';
    WHEN lock_not_available THEN
      outcome := CASE WHEN p_left_ms IS NOT NULL AND p_wait_ms >= p_left_ms THEN 'deadline' ELSE 'busy' END;
    WHEN deadlock_detected THEN
      outcome := 'busy';
  END;
END
$$;
