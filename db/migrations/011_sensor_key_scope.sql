-- Sensor keys carry a branch scope, and sensor state is ordered by the server's receipt time
-- (docs/sensors.md).
--
-- sensor_keys.branch_id: a key with a branch may write only that branch's seats. NULL means every
-- branch: the development key `carrel db seed` stores, and keys made before scopes existed (an
-- admin replaces those with scoped ones: `carrel admin sensor-keys add <name> --branch …`). A
-- branch that still has keys cannot be deleted.
ALTER TABLE sensor_keys ADD COLUMN branch_id integer REFERENCES branches(id);
CREATE INDEX sensor_keys_branch ON sensor_keys (branch_id);

-- seat_live.received_at: when the server received the reading the row holds. Instances write
-- their latest reading per seat in batches, and the newest by received_at wins; reading_at is the
-- gateway's own claim, kept for people to read. Rows from before: received about when written.
ALTER TABLE seat_live ADD COLUMN received_at timestamptz;
UPDATE seat_live SET received_at = updated_at;
ALTER TABLE seat_live ALTER COLUMN received_at SET NOT NULL, ALTER COLUMN received_at SET DEFAULT now();
