// Argument pieces shared by the method schemas: every string, number and array is bounded
// (STYLE §3), and times are ISO-8601 instants with an explicit offset (docs/protocol.md, "Shapes
// used by many methods").
import { z } from 'zod';

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** An ISO-8601 instant with offset ("2030-01-07T10:00:00Z", "…+01:00"), as ms since the epoch. */
export const instant = z
  .string()
  .max(40)
  .regex(ISO_INSTANT, 'must be an ISO-8601 time with an offset, e.g. 2030-01-07T10:00:00Z')
  .transform((text, ctx) => {
    const ms = Date.parse(text);
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: 'is not a real time' });
      return z.NEVER;
    }
    return ms;
  });

/** A serial id (seats, branches): positive and within int4. */
export const serialId = z.number().int().min(1).max(2_147_483_647);

/** A bigserial id (reservations): positive and exact in a JS number. */
export const bigId = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** A branch by id (a number, or a string of digits) or by name. */
export const branchRef = z
  .union([serialId, z.string().min(1).max(128)])
  .transform((v): { id: number } | { name: string } =>
    typeof v === 'number' ? { id: v } : /^\d{1,9}$/.test(v) ? { id: Number(v) } : { name: v },
  );

export const idArg = z.strictObject({ id: bigId });
