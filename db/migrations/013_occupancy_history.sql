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






-- The months around now get their partitions at once, so the history can be written before the
-- first upkeep: this migration states the function it uses (its file, db/functions/, is the same).
CREATE OR REPLACE FUNCTION carrel_history_partitions(p_from timestamptz, p_to timestamptz) RETURNS integer
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

SELECT carrel_history_partitions(now() - interval '1 month', now() + interval '2 months');

-- The report reads a branch's bookings by start time (docs/reports.md); no other index orders
-- the finished ones (COMPLETED, NO_SHOW) by time. Bookings are at most a day long
-- (rules.maxDurationMinutes), so [from - 1 day, to) of starts holds every booking that overlaps.
CREATE INDEX reservations_start ON reservations (lower(during));

-- The functions over these tables (carrel_utc_days, carrel_history_partitions,
-- carrel_history_close_writer, carrel_history_close_silent, carrel_history_maintain) are in
-- db/functions/, one file each, applied after the migrations by every migrate.
