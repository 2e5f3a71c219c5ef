// The one canonical form of a student id (docs/accounts.md, "Student ids"): what is stored in
// users.student_id, what a login looks up, what the login throttle counts under, and what
// uniqueness is checked on. Two spellings that fold to the same canonical id are the same account.
//
// Canonical = Unicode NFKC (full-width and other compatibility forms become plain ones), then
// surrounding white space trimmed, then lower case; a canonical id is 1-64 of [a-z0-9._@-].
// Migration 010 stores every existing id in this form with the same steps in SQL
// (carrel_canonical_student_id), so the two must stay in step: test/integration/canonicalStudentId.test.ts
// compares them on awkward input.
//
// Registration is stricter than login: a new id must already be plain ASCII without spaces
// (REGISTRABLE_STUDENT_ID in src/wire/args.ts), so the only change canonicalisation makes to it
// is case. A login may be typed any way that folds to the account's id ("ADMIN", " admin",
// full-width letters).

/**
 * A canonical student id; nothing else is ever stored in users.student_id, except the form
 * migration 010 gave rows it could not keep under their canonical id (`!collision-<user id>`,
 * `!invalid-<user id>`): '!' is never in a canonical id, so no login reaches such a row until
 * an admin gives it a canonical id (docs/accounts.md, "Existing rows (migration 010)").
 */
export const CANONICAL_STUDENT_ID = /^[a-z0-9._@-]{1,64}$/;

/** NFKC, trimmed, lower case. The result may still not be a valid id: check isCanonicalStudentId. */
export function canonicalStudentId(raw: string): string {
  return raw.normalize('NFKC').trim().toLowerCase();
}

export function isCanonicalStudentId(id: string): boolean {
  return CANONICAL_STUDENT_ID.test(id);
}
