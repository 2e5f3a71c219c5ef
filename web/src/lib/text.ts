// What the pages say: states, flags and error codes in words (docs/protocol.md names them).
import type { CellValue, KnownState } from './board.js';
import { RpcError } from './rpc.js';

const STATE_WORDS: Record<KnownState | 'unknown', string> = {
  free: 'free',
  reserved: 'reserved',
  occupied: 'occupied',
  away: 'away (held)',
  unavailable: 'unavailable',
  unknown: 'unknown',
};

export function stateLabel(s: KnownState | 'unknown'): string {
  return STATE_WORDS[s];
}

export function describeCell(label: string, v: CellValue): string {
  const parts = [`${label}: ${STATE_WORDS[v.state]}`];
  if (v.sensorOffline) parts.push('sensor offline');
  if (v.unbookedOccupancy) parts.push('occupied without a booking');
  return parts.join(', ');
}

const RULES: Record<string, string> = {
  slotGranularity: 'Times must fall on the slot boundaries (every {slotMinutes} minutes).',
  minDuration: 'That is too short: at least {minDurationMinutes} minutes.',
  maxDuration: 'That is too long: at most {maxDurationMinutes} minutes.',
  inThePast: 'That time has already passed.',
  maxDaysAhead: 'You can book at most {maxDaysAhead} days ahead.',
  openingHours: 'The library is not open for the whole of that time.',
  seatOutOfService: 'That seat is out of service.',
  padding: 'The seat is being cleaned right after another booking; try a little later.',
  maxActive: 'You already hold {maxActivePerUser} bookings: cancel one first.',
  dailyQuota: 'That would pass your daily limit of {quotaMinutes} minutes.',
  weeklyQuota: 'That would pass your weekly limit of {quotaMinutes} minutes.',
  idempotencyKeyReused: 'That request was already used for another booking; try again.',
  status: 'That booking can no longer be changed (it is {status}).',
  checkInWindow: 'Check-in is open from {opensAt} to {closesAt}.',
  ended: 'That booking has ended.',
  seatAvailable: 'A seat is free for that time: book it instead of waiting.',
  waitlistLimit: 'You are already waiting for {limit} things: leave one first.',
  alreadyClaimed: 'That offer was already claimed.',
  offerExpired: 'The offer has expired.',
  noOffer: 'There is no offer yet: you are still waiting.',
  entryLeft: 'You left that waitlist.',
  overlapsOwnBooking: 'You already have a booking at that time.',
  bookingNotOpen: 'Booking for that time opens at {opensAt}.',
  suspended: 'Booking is suspended for your account until {until}.',
};

const CODES: Record<string, string> = {
  UNAUTHENTICATED: 'Please log in again.',
  PERMISSION_DENIED: 'Your account may not do that.',
  NOT_FOUND: 'Not found (it may have been removed).',
  CONFLICT: 'Someone else just took it. Try another seat or time.',
  RESOURCE_EXHAUSTED: 'The server is busy; try again in a moment.',
  UNAVAILABLE: 'The server cannot be reached right now; try again shortly.',
  DEADLINE_EXCEEDED: 'The server took too long; try again.',
  INTERNAL: 'Something went wrong on the server.',
};

function fill(template: string, details: Record<string, unknown>, format: (key: string, v: unknown) => string): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => (details[k] === undefined ? '…' : format(k, details[k])));
}

/** A sentence for an error; `formatTime` renders times of details (opensAt, until) in the branch's zone. */
export function errorText(err: unknown, formatTime: (iso: string) => string = (iso) => new Date(iso).toLocaleString()): string {
  if (!(err instanceof RpcError)) return err instanceof Error ? err.message : String(err);
  const format = (k: string, v: unknown) => (typeof v === 'string' && /At$|until/.test(k) ? formatTime(v) : String(v));
  const rule = typeof err.details.rule === 'string' ? err.details.rule : undefined;
  if (rule && RULES[rule]) return fill(RULES[rule], err.details, format);
  if (err.code === 'CONFLICT' && err.details.reason === 'noSeatFree') return 'No seat matching that is free for that time. You can join the waitlist.';
  if (err.code === 'RESOURCE_EXHAUSTED' && err.details.reason === 'bookingInFlight') return 'A booking of yours is already being made; wait a moment.';
  if (err.code === 'INVALID_ARGUMENT') return `The server refused the request: ${err.message}`;
  return CODES[err.code] ?? err.message;
}
