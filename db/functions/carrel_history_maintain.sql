-- carrel_history_maintain: stated in this file alone; migrate applies it after the numbered migrations, every
-- time (docs/operations.md, "The database"). The tables it uses are migration 013's.
-- The hourly chore (src/history/maintenance.ts): partitions for this month and the next two,
-- months wholly older than the retention dropped, silent writers' intervals closed. One
-- instance at a time (the others find the lock taken and skip); DDL waits for locks at most
-- 2 s, so a long report never makes the sensor flushes queue behind a DROP.
CREATE OR REPLACE FUNCTION carrel_history_maintain(p_now timestamptz, p_retention_days integer, p_stale_before timestamptz, p_lock_key bigint)
RETURNS TABLE (made integer, dropped integer, closed integer) LANGUAGE plpgsql AS $$
DECLARE
  part record;
  cutoff timestamptz := p_now - make_interval(days => p_retention_days);
BEGIN
  made := 0; dropped := 0; closed := 0;
  IF NOT pg_try_advisory_xact_lock(p_lock_key) THEN
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
