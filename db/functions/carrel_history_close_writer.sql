-- carrel_history_close_writer: stated in this file alone; migrate applies it after the numbered migrations, every
-- time (docs/operations.md, "The database"). The tables it uses are migration 013's.
-- Closes every open interval of one writer at p_at: its process stops (graceful shutdown) or was
-- last known alive then. What comes after is unknown. Returns the intervals closed.
CREATE OR REPLACE FUNCTION carrel_history_close_writer(p_writer integer, p_at timestamptz) RETURNS integer
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
