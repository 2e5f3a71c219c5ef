-- carrel_canonical_student_id: the canonical form of a student id in SQL (docs/accounts.md,
-- "Student ids"), for admins resolving the rows migration 010 renamed. Must agree with
-- canonicalStudentId() in src/auth/studentId.ts on every input whose result is a valid id
-- (test/integration/canonicalStudentId.test.ts): NFKC (when the database is UTF8; elsewhere
-- non-ASCII ids simply end up invalid), then the white space JavaScript's trim() removes, then
-- ASCII lower case. Migration 010 created it with this definition to fold the ids stored then.
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
