-- One canonical form of a student id (docs/accounts.md, "Student ids"). Ids used to be stored
-- as typed, so "VID1234" and "vid1234" could be two accounts while the login throttle took them
-- for one. From here on users.student_id holds only canonical ids: NFKC, trimmed, lower case,
-- 1-64 of [a-z0-9._@-] (src/auth/studentId.ts does the same in the server).
--
-- Existing rows:
--   * a row whose id folds to a canonical id nobody else folds to gets that id;
--   * rows that fold to the same canonical id: the oldest (created_at, then id) keeps it; each
--     other one is renamed '!collision-<its user id>';
--   * a row whose id folds to no valid id (spaces inside, other characters, too long) is
--     renamed '!invalid-<its user id>'.
-- '!' is never in a canonical id, so no login reaches a renamed row until an admin gives it a
-- canonical id (UPDATE users SET student_id = ... WHERE id = ...). Nothing is merged or
-- deleted: a renamed user keeps its id, its bookings and its waitlist entries. Each rename is
-- recorded in student_id_renames with the id it had, for the admin who resolves it.

-- The canonical form in SQL. Must agree with canonicalStudentId() in src/auth/studentId.ts on
-- every input whose result is a valid id (test/integration/canonicalStudentId.test.ts):
-- NFKC (when the database is UTF8; elsewhere non-ASCII ids simply end up invalid), then the
-- white space JavaScript's trim() removes, then ASCII lower case. Stated here because this
-- migration folds with it; the function that stays in the database is the one in
-- db/functions/carrel_canonical_student_id.sql, applied after the numbered migrations (and so
-- possibly before this one, on a database an earlier migrate brought only part of the way).
CREATE OR REPLACE FUNCTION carrel_canonical_student_id(raw text) RETURNS text
LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
  s text := raw;
BEGIN
  IF current_setting('server_encoding') = 'UTF8' THEN
    s := normalize(s, NFKC);
  END IF;
  s := regexp_replace(
    s,
    '^[\t\n\u000b\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+|[\t\n\u000b\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+$',
    '', 'g');
  RETURN lower(s COLLATE "C");
END
$$;

CREATE TABLE student_id_renames (
  user_id             integer PRIMARY KEY REFERENCES users(id),
  -- The id the row had before this migration.
  original_student_id text NOT NULL,
  -- What it folds to; null when that is no valid id.
  canonical_student_id text,
  reason              text NOT NULL CHECK (reason IN ('collision', 'invalid')),
  -- For a collision: the user who kept the canonical id.
  kept_by_user_id     integer REFERENCES users(id),
  renamed_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TEMP TABLE student_id_fold ON COMMIT DROP AS
SELECT id, student_id AS original, canonical,
       canonical ~ '^[a-z0-9._@-]{1,64}$' AS valid,
       first_value(id) OVER (PARTITION BY canonical ORDER BY created_at, id) AS keeper
FROM (SELECT id, student_id, created_at, carrel_canonical_student_id(student_id) AS canonical FROM users) u;

INSERT INTO student_id_renames (user_id, original_student_id, canonical_student_id, reason, kept_by_user_id)
SELECT id, original,
       CASE WHEN valid THEN canonical END,
       CASE WHEN valid THEN 'collision' ELSE 'invalid' END,
       CASE WHEN valid THEN keeper END
FROM student_id_fold
WHERE NOT valid OR id <> keeper;

-- Renames first, so the canonical ids they held are free before the keepers take theirs.
UPDATE users u SET student_id = '!' || r.reason || '-' || u.id
FROM student_id_renames r WHERE r.user_id = u.id;

UPDATE users u SET student_id = f.canonical
FROM student_id_fold f
WHERE f.id = u.id AND f.valid AND f.id = f.keeper AND u.student_id <> f.canonical;

-- From now on the database itself refuses a non-canonical id, whoever writes it.
ALTER TABLE users ADD CONSTRAINT users_student_id_canonical
  CHECK (student_id ~ '^[a-z0-9._@-]{1,64}$' OR student_id ~ '^!(collision|invalid)-[0-9]+$');
