// How a peer names a branch (docs/protocol.md, "Branch references"), the one rule for every
// method, the subscriber port and the CLI:
//
//   - a number, or a string of digits only, is the branch's id ("2", "002" and 2 are branch 2);
//   - any other string is a name, compared ignoring case; when two names differ only in case,
//     the one spelt exactly as given wins, else the lower id.
//
// So a branch whose name is all digits is reached by its id. parseBranchRef reads a reference;
// findBranch applies it to branches in memory (the subscriber hub, the CLI); branchIdSql
// (src/core/branchRef.ts) is the same rule in SQL, and test/integration/branchRef.test.ts holds
// the two to each other.

export type BranchRef = { id: number } | { name: string };

/** Branch ids are PostgreSQL serials: positive 32-bit integers. */
export const MAX_BRANCH_ID = 2_147_483_647;
/** The longest name a reference may carry. */
export const MAX_BRANCH_NAME_CHARS = 200;

const DIGITS = /^\d+$/;

/** A reference, or why the value is none (a message naming what is wrong, for INVALID_ARGUMENT). */
export function parseBranchRef(value: unknown): BranchRef | string {
  if (typeof value === 'number') return isBranchId(value) ? { id: value } : `a branch id is an integer from 1 to ${MAX_BRANCH_ID}`;
  if (typeof value !== 'string') return 'must be a branch id or name';
  if (value.length === 0 || value.length > MAX_BRANCH_NAME_CHARS) return `a branch name has 1-${MAX_BRANCH_NAME_CHARS} characters`;
  if (!DIGITS.test(value)) return { name: value };
  const id = Number(value);
  return isBranchId(id) ? { id } : `a branch id is an integer from 1 to ${MAX_BRANCH_ID}`;
}

function isBranchId(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= MAX_BRANCH_ID;
}

/** The form two names are compared in: lower case (SQL: lower()). */
export function foldBranchName(name: string): string {
  return name.toLowerCase();
}

/** The branch a reference names among these, or undefined. */
export function findBranch<B extends { id: number; name: string }>(ref: BranchRef, branches: Iterable<B>): B | undefined {
  if ('id' in ref) {
    for (const b of branches) if (b.id === ref.id) return b;
    return undefined;
  }
  const folded = foldBranchName(ref.name);
  let best: B | undefined;
  for (const b of branches) {
    if (b.name === ref.name) return b;
    if ((best === undefined || b.id < best.id) && foldBranchName(b.name) === folded) best = b;
  }
  return best;
}
