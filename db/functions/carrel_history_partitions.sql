-- carrel_history_partitions: stated in this file alone; migrate applies it after the numbered migrations, every
-- time (docs/operations.md, "The database"). The tables it uses are migration 013's.
-- The monthly partitions of occupancy_history covering [p_from, p_to), made where missing.
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
