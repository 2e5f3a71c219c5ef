-- carrel_utc_days: stated in this file alone; migrate applies it after the numbered migrations, every
-- time (docs/operations.md, "The database"). The tables it uses are migration 013's.
-- [since, until) cut at every midnight UTC it crosses: the rows occupancy_history takes.
CREATE OR REPLACE FUNCTION carrel_utc_days(p_since timestamptz, p_until timestamptz)
RETURNS TABLE (since timestamptz, until timestamptz) LANGUAGE sql IMMUTABLE AS $$
  SELECT greatest(p_since, d AT TIME ZONE 'UTC'), least(p_until, (d + interval '1 day') AT TIME ZONE 'UTC')
    FROM generate_series(date_trunc('day', p_since AT TIME ZONE 'UTC'), p_until AT TIME ZONE 'UTC', interval '1 day') AS d
   WHERE d AT TIME ZONE 'UTC' < p_until AND p_since < p_until
$$;
