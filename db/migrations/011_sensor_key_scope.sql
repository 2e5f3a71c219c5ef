-- Sensor state is ordered by the server's receipt time (docs/sensors.md).
--
-- seat_live.received_at: when the server received the reading the row holds. Instances write
-- their latest reading per seat in batches, and the newest by received_at wins; reading_at is the
-- gateway's own claim, kept for people to read. Rows from before: received about when written.
ALTER TABLE seat_live ADD COLUMN received_at timestamptz;
UPDATE seat_live SET received_at = updated_at;
ALTER TABLE seat_live ALTER COLUMN received_at SET NOT NULL, ALTER COLUMN received_at SET DEFAULT now();
