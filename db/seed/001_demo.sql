-- Demo data for a new installation (carrel db seed). Idempotent: every insert skips rows
-- that already exist, so running it twice changes nothing. Separate from the schema on purpose.

INSERT INTO branches (name, timezone, hours, padding_minutes) VALUES
  ('Main Library', 'America/New_York',
   '{"mon":{"open":"07:00","close":"23:00"},"tue":{"open":"07:00","close":"23:00"},"wed":{"open":"07:00","close":"23:00"},"thu":{"open":"07:00","close":"23:00"},"fri":{"open":"07:00","close":"23:00"},"sat":{"open":"07:00","close":"23:00"},"sun":{"open":"07:00","close":"23:00"}}', 0),
  ('Engineering Library', 'America/Chicago',
   '{"mon":{"open":"00:00","close":"24:00"},"tue":{"open":"00:00","close":"24:00"},"wed":{"open":"00:00","close":"24:00"},"thu":{"open":"00:00","close":"24:00"},"fri":{"open":"00:00","close":"24:00"},"sat":{"open":"00:00","close":"24:00"},"sun":{"open":"00:00","close":"24:00"}}', 0),
  ('Medical Library', 'America/Los_Angeles',
   '{"mon":{"open":"08:00","close":"22:00"},"tue":{"open":"08:00","close":"22:00"},"wed":{"open":"08:00","close":"22:00"},"thu":{"open":"08:00","close":"22:00"},"fri":{"open":"08:00","close":"22:00"},"sat":{"open":"10:00","close":"20:00"},"sun":{"open":"10:00","close":"20:00"}}', 0)
ON CONFLICT (name) DO NOTHING;

-- Seats: areas of 18 (or 16) seats each; power on two seats in three, a monitor on one in four.
INSERT INTO seats (branch_id, area, label, has_power, has_monitor)
SELECT b.id, a.area, a.prefix || '-' || lpad(n::text, 2, '0'), n % 3 <> 0, n % 4 = 0
FROM branches b
JOIN (VALUES
  ('Main Library', 'Quiet Floor', 'Q', 18),
  ('Main Library', 'Reading Room', 'R', 18),
  ('Main Library', 'Group Study', 'G', 18),
  ('Engineering Library', 'Carrels', 'C', 18),
  ('Engineering Library', 'Maker Lab', 'M', 18),
  ('Engineering Library', 'Atrium', 'A', 18),
  ('Medical Library', 'Silent Study', 'S', 16),
  ('Medical Library', 'Anatomy Wing', 'W', 16),
  ('Medical Library', 'Commons', 'K', 16)
) AS a(branch, area, prefix, seat_count) ON a.branch = b.name
CROSS JOIN LATERAL generate_series(1, a.seat_count) AS n
ON CONFLICT (branch_id, label) DO NOTHING;

-- Demo users. Passwords (documented in the README): admin / admin-pass-2026,
-- s1001..s1003 / password123.
INSERT INTO users (student_id, name, password_hash, role) VALUES
  ('admin', 'Library Admin', '$2b$10$sUD1Mkh4Lf4ctVs6/zKad./0Rfis3mY1Xxbeqce2MWfjoMp3L5DaW', 'admin'),
  ('s1001', 'Ada Lovelace', '$2b$10$b3wxbyBc3M8tYXO.CkenLev/tCy5OP2STgJrWrVvAXnctK/XcVJ5i', 'student'),
  ('s1002', 'Grace Hopper', '$2b$10$b3wxbyBc3M8tYXO.CkenLev/tCy5OP2STgJrWrVvAXnctK/XcVJ5i', 'student'),
  ('s1003', 'Alan Turing', '$2b$10$b3wxbyBc3M8tYXO.CkenLev/tCy5OP2STgJrWrVvAXnctK/XcVJ5i', 'student')
ON CONFLICT (student_id) DO NOTHING;

-- The development sensor key 'dev-sensor-key' (SHA-256 below); production replaces it.
INSERT INTO sensor_keys (name, key_sha256) VALUES
  ('development', '33d18a5edbc164318c4c2f756df406aa08bb25ad515c1bedb6666b8d5fcef552')
ON CONFLICT (name) DO NOTHING;
