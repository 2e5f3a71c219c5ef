// A branch reference in SQL: the rule of src/wire/branchRef.ts (docs/protocol.md, "Branch
// references") for the statements that look a branch up. An id is itself; a name is the branch
// spelt exactly so, else the lowest id among those equal to it ignoring case — findBranch's rule,
// with PostgreSQL's lower() for JavaScript's toLowerCase(). Kept in step with findBranch by
// test/integration/branchRef.test.ts.
import type { BranchRef } from '../wire/branchRef.js';

/**
 * SQL for the id of the branch `ref` names (NULL when none) and the value to bind to `param`:
 * `WHERE b.id = ${sql}` finds it.
 */
export function branchIdSql(ref: BranchRef, param: string): { sql: string; value: number | string } {
  if ('id' in ref) return { sql: `${param}::int`, value: ref.id };
  return { sql: branchIdByNameSql(param), value: ref.name };
}

/** SQL for the id of the branch a name parameter names (NULL when none). */
export function branchIdByNameSql(param: string): string {
  return `(SELECT id FROM branches WHERE lower(name) = lower(${param}::text) ORDER BY name <> ${param}::text, id LIMIT 1)`;
}
