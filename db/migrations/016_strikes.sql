-- No-show strikes (docs/rules.md, "Strikes and suspension"). One row per booking that earned one
-- (a NO_SHOW made by the lifecycle, a release after an away hold ran out): reservation_id is
-- unique, so a repeated or overlapping transition cannot strike twice. An admin's clear keeps the
-- row (cleared_at, cleared_by) for the record; only uncleared strikes count.
CREATE TABLE strikes (
  id             bigserial PRIMARY KEY,
  user_id        integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  reservation_id bigint NOT NULL UNIQUE REFERENCES reservations(id) ON DELETE CASCADE,
  reason         text NOT NULL CHECK (reason IN ('noShow', 'awayExpired')),
  at             timestamptz NOT NULL,
  cleared_at     timestamptz,
  cleared_by     integer REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX strikes_user_at ON strikes (user_id, at) WHERE cleared_at IS NULL;

-- The suspension the strikes earned, computed when a strike is given (carrel_strike) and lifted
-- when an admin clears them: the booking path reads this one column by primary key
-- (carrel_user_rules), under the per-user lock.
ALTER TABLE users ADD COLUMN suspended_until timestamptz;
