// The rules that read a user's other rows — one seat at a time, the active limit and the daily /
// weekly quotas (docs/rules.md) — as every writer that gives a user a booking applies them: a new
// booking (carrel_book_batch) and a claimed waitlist offer (carrel_claim). Both run carrel_user_rules
// (db/functions/carrel_user_rules.sql) in one statement after the same per-user advisory lock
// (LockClass.userBooking, db/lockKeys.ts), so a user's racing bookings and claims cannot
// together get past a limit. Node owns the rules and the time zones: it computes the periods
// and limits passed in, and turns the outcome into the FAILED_PRECONDITION the user hears.
import type { CarrelError } from '../errors.js';
import { Rule, quotaPeriods, ruleError, type BookingWindow, type RulesConfig } from './rules.js';

/** What carrel_user_rules is asked to check for one booking window. */
export interface UserRuleInputs {
  /** The local days, then the local weeks, the window touches ([start, end) instants). */
  periods: Array<[number, number]>;
  /** The quota of each period, in minutes. */
  quotas: number[];
  /** How many of the periods are days (the rest are weeks). */
  dayCount: number;
}

export function userRuleInputs(w: BookingWindow, timeZone: string, rules: RulesConfig): UserRuleInputs {
  const { days, weeks } = quotaPeriods(w, timeZone);
  const periods = [...days, ...weeks];
  return {
    periods,
    quotas: periods.map((_, i) => (i < days.length ? rules.dailyQuotaMinutes : rules.weeklyQuotaMinutes)),
    dayCount: days.length,
  };
}

/** The statement parameters for the periods: starts, ends, quotas. */
export function periodParams(inputs: UserRuleInputs): [Date[], Date[], number[]] {
  return [inputs.periods.map(([s]) => new Date(s)), inputs.periods.map(([, e]) => new Date(e)), inputs.quotas];
}

/** What carrel_user_rules refuses with. */
export type UserRuleOutcome = 'overlapsOwnBooking' | 'maxActive' | 'quota';

/** One seat at a time (rules.oneSeatAtATime): reservationId names the user's booking in the way. */
export function overlapsOwnBookingError(otherId: number | string | null | undefined, extra: Record<string, unknown> = {}): CarrelError {
  return ruleError(Rule.overlapsOwnBooking, 'you already hold a seat for part of that time; one seat at a time', {
    ...(otherId != null ? { reservationId: Number(otherId) } : {}),
    ...extra,
  });
}

/**
 * The refusal for a carrel_user_rules outcome: overlapsOwnBooking (otherId = the user's booking
 * in the way), maxActive (used = active reservations) or quota (period = 1-based index into
 * inputs.periods, used = minutes already booked there).
 */
export function userRuleError(
  outcome: { outcome: UserRuleOutcome; period: number | null; used: number | null; otherId?: number | null },
  inputs: UserRuleInputs,
  rules: RulesConfig,
  extra: Record<string, unknown> = {},
): CarrelError {
  if (outcome.outcome === 'overlapsOwnBooking') return overlapsOwnBookingError(outcome.otherId, extra);
  if (outcome.outcome === 'maxActive') {
    return ruleError(Rule.maxActive, `at most ${rules.maxActivePerUser} active reservations at a time`, {
      maxActivePerUser: rules.maxActivePerUser,
      ...extra,
    });
  }
  const i = outcome.period! - 1;
  const [s, e] = inputs.periods[i]!;
  const isDay = i < inputs.dayCount;
  const quota = inputs.quotas[i]!;
  return ruleError(isDay ? Rule.dailyQuota : Rule.weeklyQuota, `that would exceed ${quota} booked minutes per ${isDay ? 'day' : 'week'}`, {
    quotaMinutes: quota,
    usedMinutes: outcome.used,
    period: { start: new Date(s).toISOString(), end: new Date(e).toISOString() },
    ...extra,
  });
}
