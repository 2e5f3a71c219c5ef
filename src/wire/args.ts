// The arguments every RPC method takes, and the subscriber port's subscribe, as zod schemas
// (docs/protocol.md, "RPC methods" and "`subscribe`"). The server parses args[0] with them
// (src/rpc/methods/*.ts take theirs from `methodArgs`); a client can check what it sends, and
// reads the types it may send from `MethodArgs`. Every string, number, array and record is
// bounded, and one piece is used wherever its thing appears: one time, one id, one branch
// reference. Imports nothing of carrel but src/wire.
import { z } from 'zod';
import { parseBranchRef, type BranchRef } from './branchRef.js';
import { DAY_KEYS, validateHours, type DayKey } from './hours.js';
import type { MethodName } from './types.js';

// ---- pieces ----------------------------------------------------------------------------------

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;
export const MAX_INSTANT_CHARS = 40;
const INSTANT_FORMAT = 'must be an ISO-8601 time with an offset, e.g. 2030-01-07T10:00:00Z';

/**
 * A time as every method takes it (docs/protocol.md, "Shapes used by many methods"): ISO-8601
 * with an offset, seconds and up to nine fraction digits optional, a day the calendar has and a
 * time the clock shows (no 2030-02-30, no 24:00); as ms since the epoch, fractions below the
 * millisecond dropped.
 */
export function parseInstant(text: string): number | undefined {
  const m = INSTANT.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second = 0, offHour = 0, offMinute = 0] = [m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]].map(
    (p) => (p === undefined ? undefined : Number(p)),
  ) as number[];
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysIn(year!, month!)) return undefined;
  if (hour! > 23 || minute! > 59 || second > 59 || offHour > 23 || offMinute > 59) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** A time argument (reservations, the waitlist, listings, availability): parseInstant, as ms. */
export const instant = z
  .string()
  .max(MAX_INSTANT_CHARS)
  .regex(INSTANT, INSTANT_FORMAT)
  .transform((text, ctx) => {
    const ms = parseInstant(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: 'is not a real time (no such day, or no such time of day)' });
      return z.NEVER;
    }
    return ms;
  });

/** A serial id (seats, branches, sensor keys): positive and within int4. */
export const serialId = z.number().int().min(1).max(2_147_483_647);

/** A bigserial id (reservations, waitlist entries): positive and exact in a JS number. */
export const bigId = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** A branch by id or name, read as src/wire/branchRef.ts says. */
export const branchRef = z.union([z.number(), z.string()], { error: 'must be a branch id or name' }).transform((value, ctx): BranchRef => {
  const ref = parseBranchRef(value);
  if (typeof ref === 'string') {
    ctx.addIssue({ code: 'custom', message: ref });
    return z.NEVER;
  }
  return ref;
});

/** The subscriber port's scope: a branch reference, or "*" for every branch. */
const branchOrAll = z.union([z.number(), z.string()], { error: 'must be a branch name, a branch id, or "*"' }).transform((value, ctx): BranchRef | '*' => {
  if (value === '*') return '*';
  const ref = parseBranchRef(value);
  if (typeof ref === 'string') {
    ctx.addIssue({ code: 'custom', message: ref });
    return z.NEVER;
  }
  return ref;
});

export const idArg = z.strictObject({ id: bigId });

/** Methods without options accept args left out, `[]` or `[{}]`. */
export const noArgs = z.union([z.undefined(), z.strictObject({})]);

/** The longest area name a filter may carry (seats.list, reservations.create). */
export const MAX_AREA_CHARS = 128;

/** Most reservations.mine returns in one page. */
export const MINE_MAX_LIMIT = 100;

/** A student id's longest form. */
export const STUDENT_ID_MAX_CHARS = 64;

/** What auth.register accepts before folding case: ASCII letters, digits and . _ @ - only (docs/accounts.md). */
export const REGISTRABLE_STUDENT_ID = /^[A-Za-z0-9._@-]{1,64}$/;

// A new id is plain ASCII already, so canonicalising it only folds its case: "VID1234" is
// registered (and answered) as "vid1234". Spaces and look-alike Unicode forms are refused here
// rather than silently folded into someone else's id.
const newStudentId = z
  .string()
  .min(1)
  .max(STUDENT_ID_MAX_CHARS)
  .regex(REGISTRABLE_STUDENT_ID, 'may hold letters, digits and . _ @ - only');

// bcrypt reads at most 72 bytes; a longer password would be silently truncated, so refuse it.
const newPassword = z
  .string()
  .min(8, 'must be at least 8 characters')
  .refine((p) => new TextEncoder().encode(p).length <= 72, 'must be at most 72 bytes');

const dayHours = z.strictObject({ open: z.string().max(5), close: z.string().max(5) }).nullable();
const hours = z
  .strictObject(Object.fromEntries(DAY_KEYS.map((d) => [d, dayHours.optional()])) as Record<DayKey, z.ZodOptional<typeof dayHours>>)
  .superRefine((value, ctx) => {
    const problem = validateHours(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** A sensor key's name: what the CLI revokes it by, so never all digits (those read as an id). */
/** A calendar date (YYYY-MM-DD) in a branch's zone. */
const localDate = z.string().max(10).regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date, YYYY-MM-DD');

const keyName = z
  .string()
  .max(64)
  .regex(/^[\w.:@/-]{1,64}$/, 'must be 1-64 characters of letters, digits and ._:@/-')
  .refine((v) => !/^\d+$/.test(v), 'must not be all digits (a number names a key by id)');

// ---- every method's args[0] ----------------------------------------------------------------

export const methodArgs = {
  PING: z.unknown(),
  'server.info': noArgs,
  'server.stats': noArgs,
  'auth.register': z.strictObject({ studentId: newStudentId, name: z.string().trim().min(1).max(128), password: newPassword }),
  'auth.login': z.strictObject({ studentId: z.string().min(1).max(64), password: z.string().min(1).max(256) }),
  'auth.use': z.strictObject({ token: z.string().min(1).max(4096) }),
  'auth.me': noArgs,
  'branches.list': noArgs,
  'seats.list': z
    .strictObject({
      branch: branchRef.optional(),
      area: z.string().min(1).max(MAX_AREA_CHARS).optional(),
      hasPower: z.boolean().optional(),
      hasMonitor: z.boolean().optional(),
      availableOnly: z.boolean().optional(),
      start: instant.optional(),
      end: instant.optional(),
    })
    .optional(),
  'seats.get': z.strictObject({ id: serialId }),
  'seats.availability': z.strictObject({ seatId: serialId, date: z.string().max(10).optional(), start: instant.optional(), end: instant.optional() }),
  // A seat (seatId), or the best free one of a branch that matches (branch and the filters).
  'reservations.create': z
    .strictObject({
      seatId: serialId.optional(),
      branch: branchRef.optional(),
      area: z.string().min(1).max(MAX_AREA_CHARS).optional(),
      hasPower: z.boolean().optional(),
      hasMonitor: z.boolean().optional(),
      near: serialId.optional(),
      start: instant,
      end: instant,
      idempotencyKey: z.string().min(1).max(128).optional(),
    })
    .refine((a) => (a.seatId === undefined) !== (a.branch === undefined), { message: 'give exactly one of seatId or branch' })
    .refine((a) => a.seatId === undefined || (a.area === undefined && a.hasPower === undefined && a.hasMonitor === undefined && a.near === undefined), {
      message: 'area, hasPower, hasMonitor and near choose a seat of a branch: give them with branch, not with seatId',
    }),
  'reservations.get': idArg,
  'reservations.walkIn': z.strictObject({ seatId: serialId }),
  'reservations.mine': z
    .strictObject({
      scope: z.enum(['upcoming', 'history']).default('upcoming'),
      limit: z.number().int().min(1).max(MINE_MAX_LIMIT).default(20),
      cursor: z.string().min(1).max(200).optional(),
    })
    .prefault({}),
  'reservations.cancel': idArg,
  'reservations.checkIn': idArg,
  'reservations.checkOut': idArg,
  'waitlist.join': z
    .strictObject({ seatId: serialId.optional(), branch: branchRef.optional(), start: instant, end: instant })
    .refine((a) => (a.seatId === undefined) !== (a.branch === undefined), { message: 'give exactly one of seatId or branch' }),
  'waitlist.mine': noArgs,
  'waitlist.leave': idArg,
  'waitlist.claim': idArg,
  'admin.seats.setStatus': z.strictObject({ seatId: serialId, status: z.enum(['IN_SERVICE', 'OUT_OF_SERVICE']) }),
  'admin.branches.setHours': z.strictObject({ branch: branchRef, hours }),
  'admin.sensors.addKey': z.strictObject({ name: keyName, branch: branchRef }),
  'admin.sensors.listKeys': z.strictObject({ branch: branchRef.optional(), includeRevoked: z.boolean().optional() }).optional(),
  'admin.users.strikes': z.strictObject({ userId: serialId }),
  'admin.users.clearStrikes': z.strictObject({ userId: serialId }),
  'admin.sensors.revokeKey': z.union([z.strictObject({ id: serialId, branch: branchRef.optional() }), z.strictObject({ name: keyName, branch: branchRef.optional() })]),
  // Dates in the branch's zone, both counted; whether they are real ones is checked with the range
  // (REPORT_LIMITS, src/reports/utilization.ts).
  'admin.reports.utilization': z.strictObject({
    branch: branchRef,
    from: localDate,
    to: localDate,
    by: z.enum(['hour', 'day', 'seat', 'area']).default('day'),
  }),
} satisfies Record<MethodName, z.ZodType>;

/** What a client may send as a method's args[0]. */
export type MethodArgs<M extends MethodName> = z.input<(typeof methodArgs)[M]>;

// ---- the subscriber port's subscribe ---------------------------------------------------------

const MAX_TOKEN_CHARS = 4096;
const MAX_SINCE_KEYS = 1000;
/** Epochs are a uuid-sized token or shorter; anything longer is not one the server gave out. */
const MAX_EPOCH_CHARS = 64;
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** null and absent are the same: nothing given. */
const absentOr = <T extends z.ZodType>(schema: T) => schema.nullish().transform((v) => v ?? undefined);

/**
 * `since`: one seq, or for "*" seqs keyed by branch reference, read as [key, seq] pairs in the
 * object's order (as pairs, so no key, `__proto__` included, is ever set on an object).
 */
const since = z.custom<number | Record<string, number>>(() => true).transform((value, ctx): number | Array<[string, number]> => {
  const fail = (message: string) => {
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  };
  if (typeof value === 'number') return seq.safeParse(value).success ? value : fail('must be a non-negative integer');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('must be a seq number, or an object of seq numbers by branch');
  const entries = Object.entries(value);
  if (entries.length > MAX_SINCE_KEYS) return fail(`may name at most ${MAX_SINCE_KEYS} branches`);
  for (const [key, n] of entries) if (!seq.safeParse(n).success) return fail(`${JSON.stringify(key.slice(0, 50))} must be a non-negative integer`);
  return entries as Array<[string, number]>;
});

export const subscribeArgs = z.object({
  type: z.literal('subscribe'),
  branch: branchOrAll,
  token: absentOr(z.string().min(1).max(MAX_TOKEN_CHARS)),
  since: absentOr(since),
  epoch: absentOr(z.string().min(1).max(MAX_EPOCH_CHARS)),
});

export type SubscribeArgs = z.input<typeof subscribeArgs>;
export type SubscribeRequest = z.output<typeof subscribeArgs>;

