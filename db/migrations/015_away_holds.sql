-- Away holds (docs/rules.md, "Presence: the state machine"). A CHECKED_IN booking whose seat's
-- sensor turns empty is away: away_since is when the server heard of it, hold_until when the
-- booking is released unless its owner sits down again (both NULL while not away). They live on
-- the reservation, not in memory, so a restart does not forget a hold, and every instance (and
-- the occupancy history) can read them. away_warned: the owner was told `awayEnding` for this
-- hold (set by one guarded UPDATE, so one instance tells them once).
ALTER TABLE reservations
  ADD COLUMN away_since timestamptz,
  ADD COLUMN hold_until timestamptz,
  ADD COLUMN away_warned boolean NOT NULL DEFAULT false,
  ADD CONSTRAINT reservations_away_pair CHECK ((away_since IS NULL) = (hold_until IS NULL));
