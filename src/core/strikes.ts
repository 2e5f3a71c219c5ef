// No-show strikes and the suspension they earn (docs/rules.md, "Strikes and suspension").
//
// - Given in the same transaction as the transition that earned it, by carrel_strike
//   (db/functions/carrel_strike.sql): the lifecycle's NO_SHOW ('noShow') and the release of an away
//   hold that ran out ('awayExpired'). A booking strikes at most once.
// - rules.strikes.limit uncleared strikes within windowDays suspend booking for suspendDays from
//   the strike that reached the limit: carrel_strike stores users.suspended_until, and
//   carrel_user_rules (under the per-user lock, in every booking and claim) refuses with outcome
//   'suspended', which the callers turn into FAILED_PRECONDITION rule `suspended` with `until`.
// - A user sees their own strikes (auth.me); admins list and clear anyone's (admin.users.*).
//   Clearing lifts the suspension.
import type { Db } from '../db/db.js';
import type { Deadline } from '../deadline.js';
import { CarrelError, ErrorCode } from '../errors.js';
import { Rule, ruleError, type RulesConfig } from './rules.js';

import type { StrikesWire, StrikeWire } from '../wire/types.js';

export type StrikeReason = StrikeWire['reason'];

/** The SQL call that gives strikes for the reservation ids in `ids` at nowMs (one id or an array). */
export function strikeCall(p: { add(v: unknown): string }, ids: string, reason: StrikeReason, nowMs: number, rules: RulesConfig): string {
  const s = rules.strikes;
  return `carrel_strike(${ids.includes('[') || ids.startsWith('$') ? ids : `ARRAY[${ids}]::bigint[]`}, ${p.add(reason)}, ${p.add(new Date(nowMs))}::timestamptz, ${p.add(s.limit)}::integer, ${p.add(s.windowDays)}::integer, ${p.add(s.suspendDays)}::integer)`;
}

/** The refusal for carrel_user_rules' 'suspended': the rule, and until when (read back, on this path only). */
export async function suspendedError(db: Db, userId: number, deadline?: Deadline): Promise<CarrelError> {
  const res = await db.query<{ suspended_until: Date | null }>('SELECT suspended_until FROM users WHERE id = $1', [userId], deadline);
  const until = res.rows[0]?.suspended_until;
  return ruleError(Rule.suspended, `booking is suspended${until ? ` until ${until.toISOString()}` : ''} after repeated no-shows`, {
    until: until ? until.toISOString() : null,
  });
}

export class StrikeService {
  constructor(private readonly opts: { db: Db; rules: RulesConfig; now: () => number }) {}

  /** A user's strikes as they count now (auth.me; admin.users.strikes). NOT_FOUND for no such user. */
  async of(userId: number, deadline?: Deadline): Promise<StrikesWire> {
    const nowMs = this.opts.now();
    const { windowDays, limit } = this.opts.rules.strikes;
    const res = await this.opts.db.query<{ suspended_until: Date | null; strikes: Array<{ id: number; reservation_id: number; reason: StrikeReason; at: string }> | null }>(
      `SELECT u.suspended_until,
              (SELECT json_agg(json_build_object('id', k.id, 'reservation_id', k.reservation_id, 'reason', k.reason, 'at', k.at) ORDER BY k.at DESC, k.id DESC)
                 FROM strikes k WHERE k.user_id = u.id AND k.cleared_at IS NULL AND k.at > $2) AS strikes
         FROM users u WHERE u.id = $1`,
      [userId, new Date(nowMs - windowDays * 86_400_000)],
      deadline,
    );
    const row = res.rows[0];
    if (!row) throw new CarrelError(ErrorCode.NOT_FOUND, `no user ${userId}`);
    const until = row.suspended_until && row.suspended_until.getTime() > nowMs ? row.suspended_until.toISOString() : null;
    return {
      strikes: (row.strikes ?? []).map((k) => ({ id: Number(k.id), reservationId: Number(k.reservation_id), reason: k.reason, at: new Date(k.at).toISOString() })),
      limit,
      windowDays,
      suspendedUntil: until,
    };
  }

  /** Clears every uncleared strike of the user and lifts the suspension (admins). Returns how many. */
  async clear(userId: number, adminId: number, deadline?: Deadline): Promise<{ cleared: number }> {
    const res = await this.opts.db.transaction(async (c) => {
      const u = await c.query('UPDATE users SET suspended_until = NULL WHERE id = $1 RETURNING id', [userId]);
      if (u.rowCount === 0) throw new CarrelError(ErrorCode.NOT_FOUND, `no user ${userId}`);
      return c.query('UPDATE strikes SET cleared_at = $2, cleared_by = $3 WHERE user_id = $1 AND cleared_at IS NULL', [userId, new Date(this.opts.now()), adminId]);
    }, deadline);
    return { cleared: res.rowCount ?? 0 };
  }
}
