// A token outlives its account: it stays signed after the user row is deleted (or was minted
// for another database). Writes find out through the user_id foreign key (db/errors.ts maps it
// to UNAUTHENTICATED); this is for the outcomes that would otherwise say nothing about the
// account — "no such reservation", an empty list — so they too answer UNAUTHENTICATED instead
// of NOT_FOUND or a quiet [] (docs/rules.md, "Deleted accounts"). It runs only on those
// outcomes, never on a success that already proves the account (a row of the user's came back).
import type { Db } from '../db/db.js';
import { accountGone } from '../db/errors.js';
import type { Deadline } from '../deadline.js';

/** Throws UNAUTHENTICATED when the users table has no row `userId`. One primary-key probe. */
export async function refuseIfAccountGone(db: Db, userId: number, deadline?: Deadline): Promise<void> {
  const found = (await db.query('SELECT 1 FROM users WHERE id = $1', [userId], deadline)).rowCount !== 0;
  if (!found) throw accountGone();
}
