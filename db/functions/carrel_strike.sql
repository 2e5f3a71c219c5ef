-- carrel_strike: gives strikes for bookings that earned one (docs/rules.md, "Strikes and
-- suspension") and renews the suspension of each user struck. Called in the same transaction as
-- the transition that earned it: the lifecycle's NO_SHOW (reason 'noShow') and the release of an
-- away hold that ran out (reason 'awayExpired'). A booking strikes at most once (strikes'
-- reservation_id is unique). Node owns the rules: p_limit strikes within p_window_days suspend
-- booking for p_suspend_days from the strike that reached the limit. users.suspended_until, which
-- the booking path reads (carrel_user_rules), only ever moves later here; an admin's clear lifts
-- it (src/core/strikes.ts). Returns the number of strikes given.
CREATE OR REPLACE FUNCTION carrel_strike(
  p_reservations bigint[],
  p_reason text,
  p_at timestamptz,
  p_limit integer,
  p_window_days integer,
  p_suspend_days integer
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_given integer;
BEGIN
  WITH ins AS (
    INSERT INTO strikes (user_id, reservation_id, reason, at)
    SELECT r.user_id, r.id, p_reason, p_at FROM reservations r WHERE r.id = ANY (p_reservations)
    ON CONFLICT (reservation_id) DO NOTHING
    RETURNING user_id
  )
  SELECT count(*)::integer INTO v_given FROM ins;
  IF v_given = 0 THEN
    RETURN 0;
  END IF;
  -- A second statement, which sees the strikes just inserted. For each uncleared strike, the one
  -- limit-1 strikes before it: when both lie within the window, that strike reached the limit and
  -- suspends from its own time. Only strikes that can still suspend are read (strikes_user_at).
  UPDATE users u SET suspended_until = greatest(u.suspended_until, d.until)
  FROM (
    SELECT s.user_id, max(s.at + make_interval(days => p_suspend_days)) AS until
    FROM (
      SELECT k.user_id, k.at, lag(k.at, p_limit - 1) OVER (PARTITION BY k.user_id ORDER BY k.at, k.id) AS first_at
      FROM strikes k
      WHERE k.user_id IN (SELECT r.user_id FROM reservations r WHERE r.id = ANY (p_reservations))
        AND k.cleared_at IS NULL AND k.at > p_at - make_interval(days => p_window_days + p_suspend_days)
    ) s
    WHERE s.first_at IS NOT NULL AND s.at - s.first_at <= make_interval(days => p_window_days)
    GROUP BY s.user_id
  ) d
  WHERE u.id = d.user_id AND (u.suspended_until IS NULL OR u.suspended_until < d.until);
  RETURN v_given;
END
$$;
