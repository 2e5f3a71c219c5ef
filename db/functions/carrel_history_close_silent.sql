-- carrel_history_close_silent: stated in this file alone; migrate applies it after the numbered migrations, every
-- time (docs/operations.md, "The database"). The tables it uses are migration 013's.
-- Closes the open intervals of writers silent since before p_stale_before at their last mark
-- (their process died), and forgets writers with nothing open last alive before
-- p_forget_before. Returns the intervals closed.
CREATE OR REPLACE FUNCTION carrel_history_close_silent(p_stale_before timestamptz, p_forget_before timestamptz) RETURNS integer
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
