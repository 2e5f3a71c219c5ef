-- Occupancy history (docs/reports.md, "Where the figures come from"): what the sensors said about
-- each seat over time, kept as intervals, for the utilization report.
--
-- Two kinds of interval per seat, both half-open [since, until) in the server's receipt time
-- (docs/sensors.md, "Order: the server's receipt time"):
--
--   observed  the seat's sensor was reporting: its state was known (occupied or empty);
--   occupied  the seat was occupied. Every occupied interval lies inside an observed one.
--
-- Empty is observed minus occupied; a time in no observed interval is unknown (no sensor, a
-- sensor offline, no server listening), and the report says so instead of guessing.
--
-- Three tables:
--
-- * occupancy_open: the interval each seat is in now, one row per seat whose state is known,
--   written by the sensor coalescer in one statement per flush (src/sensors/coalescer.ts, never a
--   write per reading). `writer` is the server process that wrote it last.
-- * occupancy_history: closed intervals, append-only. Each row lies within one UTC day (longer
--   ones are cut at midnight UTC), so a query for [from, to) reads rows with since in
--   [from - 1 day, to) and nothing else. Partitioned by month of `since`: months past
--   history.retentionDays are dropped whole (no DELETE, no bloat), and a month's index serves
--   only that month. carrel_history_maintain below makes and drops the partitions.
-- * occupancy_writers: one row per server process that writes history, with the last time it
--   was known alive (each flush marks it). An open interval whose writer fell silent (the
--   process died) ended at that mark: what happened after it is unknown, not "still occupied".
CREATE TYPE occupancy_kind AS ENUM ('observed', 'occupied');

CREATE TABLE occupancy_writers (
  id          serial PRIMARY KEY,
  instance    text NOT NULL,
  started_at  timestamptz NOT NULL,
  alive_at    timestamptz NOT NULL
);

CREATE TABLE occupancy_open (
  seat_id         integer PRIMARY KEY REFERENCES seats(id),
  observed_since  timestamptz NOT NULL,
  -- Set while the seat is occupied: when it became so.
  occupied_since  timestamptz CHECK (occupied_since >= observed_since),
  writer          integer NOT NULL REFERENCES occupancy_writers(id)
);
CREATE INDEX occupancy_open_writer ON occupancy_open (writer);

CREATE TABLE occupancy_history (
  seat_id  integer NOT NULL,
  kind     occupancy_kind NOT NULL,
  since    timestamptz NOT NULL,
  until    timestamptz NOT NULL,
  CHECK (since < until),
  -- Within one UTC day (see above): the report's range condition relies on it.
  CHECK (until <= (date_trunc('day', since AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC')
) PARTITION BY RANGE (since);
-- A seat's rows in time order, with what the report reads, so a seat's day is an index-only range.
CREATE INDEX occupancy_history_seat ON occupancy_history (seat_id, since) INCLUDE (kind, until);

-- [since, until) cut at every midnight UTC it crosses: the rows occupancy_history takes.
CREATE FUNCTION carrel_utc_days(p_since timestamptz, p_until timestamptz)
RETURNS TABLE (since timestamptz, until timestamptz) LANGUAGE sql IMMUTABLE AS $$
  SELECT greatest(p_since, d AT TIME ZONE 'UTC'), least(p_until, (d + interval '1 day') AT TIME ZONE 'UTC')
    FROM generate_series(date_trunc('day', p_since AT TIME ZONE 'UTC'), p_until AT TIME ZONE 'UTC', interval '1 day') AS d
   WHERE d AT TIME ZONE 'UTC' < p_until AND p_since < p_until
$$;

-- The monthly partitions of occupancy_history covering [p_from, p_to), made where missing.
CREATE FUNCTION carrel_history_partitions(p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  m timestamp;
  made integer := 0;
  name text;
BEGIN
  FOR m IN SELECT generate_series(date_trunc('month', p_from AT TIME ZONE 'UTC'), p_to AT TIME ZONE 'UTC', interval '1 month') LOOP
    name := 'occupancy_history_' || to_char(m, 'YYYY_MM');
    IF to_regclass(name) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF occupancy_history FOR VALUES FROM (%L) TO (%L)',
                     name, (m AT TIME ZONE 'UTC'), ((m + interval '1 month') AT TIME ZONE 'UTC'));
      made := made + 1;
    END IF;
  END LOOP;
  RETURN made;
END $$;

-- Closes every open interval of one writer at p_at: its process stops (graceful shutdown) or was
-- last known alive then. What comes after is unknown. Returns the intervals closed.
CREATE FUNCTION carrel_history_close_writer(p_writer integer, p_at timestamptz) RETURNS integer
LANGUAGE sql AS $$
  WITH gone AS (
    DELETE FROM occupancy_open o WHERE o.writer = p_writer
    RETURNING o.seat_id, o.observed_since, o.occupied_since
  ), ins AS (
    INSERT INTO occupancy_history (seat_id, kind, since, until)
    SELECT g.seat_id, k.kind, d.since, d.until
      FROM gone g
     CROSS JOIN LATERAL (VALUES ('observed'::occupancy_kind, g.observed_since), ('occupied'::occupancy_kind, g.occupied_since)) AS k(kind, since)
     CROSS JOIN LATERAL carrel_utc_days(k.since, p_at) AS d
     WHERE k.since IS NOT NULL
  )
  SELECT count(*)::integer FROM gone
$$;

-- Closes the open intervals of writers silent since before p_stale_before at their last mark
-- (their process died), and forgets writers with nothing open last alive before
-- p_forget_before. Returns the intervals closed.
CREATE FUNCTION carrel_history_close_silent(p_stale_before timestamptz, p_forget_before timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  w record;
  closed integer := 0;
BEGIN
  FOR w IN SELECT id, alive_at FROM occupancy_writers WHERE alive_at < p_stale_before
             AND EXISTS (SELECT 1 FROM occupancy_open o WHERE o.writer = occupancy_writers.id) LOOP
    closed := closed + carrel_history_close_writer(w.id, w.alive_at);
  END LOOP;
  DELETE FROM occupancy_writers x
   WHERE x.alive_at < p_forget_before AND NOT EXISTS (SELECT 1 FROM occupancy_open o WHERE o.writer = x.id);
  RETURN closed;
END $$;

-- The hourly chore (src/history/maintenance.ts): partitions for this month and the next two,
-- months wholly older than the retention dropped, silent writers' intervals closed. One
-- instance at a time (the others find the lock taken and skip); DDL waits for locks at most
-- 2 s, so a long report never makes the sensor flushes queue behind a DROP.
CREATE FUNCTION carrel_history_maintain(p_now timestamptz, p_retention_days integer, p_stale_before timestamptz)
RETURNS TABLE (made integer, dropped integer, closed integer) LANGUAGE plpgsql AS $$
DECLARE
  part record;
  cutoff timestamptz := p_now - make_interval(days => p_retention_days);
BEGIN
  made := 0; dropped := 0; closed := 0;
  IF NOT pg_try_advisory_xact_lock(hashtext('carrel_history_maintain')) THEN
    RETURN NEXT;
    RETURN;
  END IF;
  PERFORM set_config('lock_timeout', '2s', true);
  made := carrel_history_partitions(p_now, p_now + interval '2 months');
  FOR part IN
    SELECT c.oid::regclass AS rel
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'occupancy_history'::regclass
       AND c.relname ~ '^occupancy_history_\d{4}_\d{2}$'
       AND (to_date(substr(c.relname, 19), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC' <= cutoff
  LOOP
    EXECUTE format('DROP TABLE %s', part.rel);
    dropped := dropped + 1;
  END LOOP;
  closed := carrel_history_close_silent(p_stale_before, cutoff);
  RETURN NEXT;
END $$;

SELECT carrel_history_partitions(now() - interval '1 month', now() + interval '2 months');

-- The report reads a branch's bookings by start time (docs/reports.md); no other index orders
-- the finished ones (COMPLETED, NO_SHOW) by time. Bookings are at most a day long
-- (rules.maxDurationMinutes), so [from - 1 day, to) of starts holds every booking that overlaps.
CREATE INDEX reservations_start ON reservations (lower(during));
