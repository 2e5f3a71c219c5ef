-- The identity of this database, which binds the state kept in Redis to it (docs/redis.md).
--
-- Every Redis key carrel uses carries this id (<redis.keyPrefix>:<id>:…), so instances share
-- Redis state only with instances of the same database. A database created from nothing gets a
-- new id here, and with it empty counters, streams and seat states: what another database (an
-- earlier one that was dropped, or a second deployment on the same Redis and key prefix) left in
-- Redis is never read. Without it, a reading that changed a seat was dropped as a repeat of the
-- other database's last published state. A backup restored keeps its id, and so its Redis state:
-- docs/redis.md says why that is safe.
--
-- Exactly one row: `one` is the primary key and can only be true.
CREATE TABLE deployment (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO deployment DEFAULT VALUES;
