-- Daily and hourly sums of the utilization figures (docs/reports.md, "Where the figures come
-- from"), so that a report over months reads one row per seat and day, or per branch and hour,
-- instead of every booking and sensor interval again. Written by the hourly maintenance
-- (src/reports/rollup.ts) for each local day of a branch an hour after it ends, and again every
-- hour until two days after (late flushes, late no-shows); a report computes the days not summed
-- yet from the intervals themselves, the same way.
--
-- Sums are in seconds. The names follow the report's inputs: booked time, the booked time a sensor
-- observed, and of it the time it saw occupied; the same from check-in on (`_in`); occupied and
-- observed time, and their parts within opening hours.

-- Per seat and local day of its branch.
CREATE TABLE occupancy_seat_days (
  seat_id              integer NOT NULL,
  day                  date NOT NULL,
  bookings             integer NOT NULL,
  no_shows             integer NOT NULL,
  booked               double precision NOT NULL,
  booked_observed      double precision NOT NULL,
  attended             double precision NOT NULL,
  booked_observed_in   double precision NOT NULL,
  attended_in          double precision NOT NULL,
  occupied             double precision NOT NULL,
  observed             double precision NOT NULL,
  open_occupied        double precision NOT NULL,
  open_observed        double precision NOT NULL,
  PRIMARY KEY (seat_id, day)
);

-- Per branch and local hour (its first instant), with the most seats occupied at a whole minute.
CREATE TABLE occupancy_branch_hours (
  branch_id            integer NOT NULL,
  hour                 timestamptz NOT NULL,
  bookings             integer NOT NULL,
  no_shows             integer NOT NULL,
  booked               double precision NOT NULL,
  booked_observed      double precision NOT NULL,
  attended             double precision NOT NULL,
  booked_observed_in   double precision NOT NULL,
  attended_in          double precision NOT NULL,
  occupied             double precision NOT NULL,
  observed             double precision NOT NULL,
  open_occupied        double precision NOT NULL,
  open_observed        double precision NOT NULL,
  peak                 integer NOT NULL,
  PRIMARY KEY (branch_id, hour)
);

-- The most seats of an area occupied at a whole minute, per local day.
CREATE TABLE occupancy_area_days (
  branch_id  integer NOT NULL,
  area       text NOT NULL,
  day        date NOT NULL,
  peak       integer NOT NULL,
  PRIMARY KEY (branch_id, area, day)
);

-- Which local days of a branch are summed up; delete a row to have that day summed again.
CREATE TABLE occupancy_rolled_days (
  branch_id  integer NOT NULL,
  day        date NOT NULL,
  rolled_at  timestamptz NOT NULL,
  PRIMARY KEY (branch_id, day)
);
