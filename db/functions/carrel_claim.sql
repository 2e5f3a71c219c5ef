-- carrel_claim: a waitlist claim in one statement (docs/protocol.md, "`waitlist.claim`"). It turns
-- the user's OFFERED reservation into a CONFIRMED one, passing the per-user rules a booking
-- passes, like carrel_book:
--
--   1. p_lock_timeout_ms (what is left of the request's deadline, NULL without one) becomes this
--      transaction's lock_timeout: a lock wait past the deadline is cancelled (55P03) and the
--      claim rolled back;
--   2. the per-user lock (p_lock_class = LockClass.userBooking, src/db/lockKeys.ts), the one
--      carrel_book takes, so a claim and a booking of one user, or two claims, take turns and
--      each sees what the other committed;
--   3. carrel_user_rules over the offered time (one seat at a time included, when p_one_seat);
--   4. the guarded UPDATEs of the reservation, then of the waitlist entry (the order the
--      lifecycle's expiry takes them in).
--
-- Outcomes, as rows (src/core/waitlist.ts turns them into answers):
--   'claimed'               the reservation as it is now;
--   'overlapsOwnBooking' / 'maxActive' / 'quota'
--                           as carrel_user_rules says (other_id: the overlapping booking); the
--                           offer is left as it is, holding the slot until it lapses, so the user
--                           may make room and claim again;
--   'noOffer'               no live offer for this entry and user: the caller explains why
--                           (claimed already, lapsed, left, someone else's).
CREATE OR REPLACE FUNCTION carrel_claim(
  p_waitlist bigint,
  p_user integer,
  p_now timestamptz,
  p_lock_class integer,
  p_max_active integer,
  p_one_seat boolean,
  p_period_start timestamptz[],
  p_period_end timestamptz[],
  p_period_quota integer[],
  p_lock_timeout_ms integer
) RETURNS TABLE (
  outcome text, period integer, used integer, other_id bigint,
  id bigint, seat_id integer, user_id integer, branch_id integer, start_at timestamptz, end_at timestamptz,
  status text, created_at timestamptz, checked_in_at timestamptz, offer_expires_at timestamptz, waitlist_id bigint
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  v_offer record;
  v_rules record;
BEGIN
  IF p_lock_timeout_ms IS NOT NULL THEN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms::text, true);
  END IF;
  PERFORM pg_advisory_xact_lock(p_lock_class, p_user);

  SELECT r.id, lower(r.during) AS start_at, upper(r.during) AS end_at INTO v_offer
  FROM reservations r
  WHERE r.waitlist_id = p_waitlist AND r.user_id = p_user AND r.status = 'OFFERED' AND r.offer_expires_at > p_now;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'noOffer'::text, NULL::integer, NULL::integer, NULL::bigint, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
      NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
    RETURN;
  END IF;

  SELECT * INTO v_rules FROM carrel_user_rules(p_user, v_offer.start_at, v_offer.end_at, p_now, p_max_active, p_one_seat,
                                               p_period_start, p_period_end, p_period_quota);
  IF v_rules.outcome IS NOT NULL THEN
    RETURN QUERY SELECT v_rules.outcome, v_rules.period, v_rules.used, v_rules.reservation_id, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
      NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
    RETURN;
  END IF;

  -- Reservation first, then the entry: the order the lifecycle's expiry takes them in. The
  -- guard re-checks the offer, which the lifecycle may have lapsed since the read above.
  UPDATE reservations r SET status = 'CONFIRMED', offer_expires_at = NULL, updated_at = p_now
  WHERE r.id = v_offer.id AND r.status = 'OFFERED' AND r.offer_expires_at > p_now
  RETURNING r.id, r.seat_id, r.user_id, lower(r.during) AS start_at, upper(r.during) AS end_at, r.status, r.created_at,
            r.checked_in_at, r.offer_expires_at, r.waitlist_id
  INTO v_offer;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'noOffer'::text, NULL::integer, NULL::integer, NULL::bigint, NULL::bigint, NULL::integer, NULL::integer, NULL::integer,
      NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
    RETURN;
  END IF;
  UPDATE waitlist w SET status = 'CLAIMED', updated_at = p_now WHERE w.id = p_waitlist AND w.status = 'OFFERED';
  RETURN QUERY SELECT 'claimed'::text, NULL::integer, NULL::integer, NULL::bigint, v_offer.id, v_offer.seat_id, v_offer.user_id,
    (SELECT s.branch_id FROM seats s WHERE s.id = v_offer.seat_id), v_offer.start_at, v_offer.end_at, v_offer.status,
    v_offer.created_at, v_offer.checked_in_at, v_offer.offer_expires_at, v_offer.waitlist_id;
END
$$;

-- The 9-argument form the previous release calls: the same claim without one seat at a time, and
-- without the other_id column.
CREATE OR REPLACE FUNCTION carrel_claim(
  p_waitlist bigint,
  p_user integer,
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
) LANGUAGE sql VOLATILE AS $$
  SELECT c.outcome, c.period, c.used, c.id, c.seat_id, c.user_id, c.branch_id, c.start_at, c.end_at,
         c.status, c.created_at, c.checked_in_at, c.offer_expires_at, c.waitlist_id
  FROM carrel_claim(p_waitlist, p_user, p_now, p_lock_class, p_max_active, false,
                    p_period_start, p_period_end, p_period_quota, p_lock_timeout_ms) c;
$$;
