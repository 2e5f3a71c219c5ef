// What travels on the three TCP ports, as types both sides compile against (docs/protocol.md):
// the shapes RPC methods answer with, the frames of the subscriber and sensor ports, and the
// vocabularies inside them (statuses, live states, causes). The server builds these values in
// core, pubsub and sensors; the clients (clients/, loadtest/) read them. Imports nothing of carrel
// but src/wire (docs/architecture.md, "Import rules").
import type { FrameErrorCode } from './errors.js';
import type { BranchHours } from './hours.js';

// ---- vocabularies --------------------------------------------------------------------------

export type Role = 'student' | 'admin';

/** docs/protocol.md, "Reservation and waitlist statuses". */
export type ReservationStatus = 'CONFIRMED' | 'CHECKED_IN' | 'COMPLETED' | 'CANCELLED' | 'NO_SHOW' | 'OFFERED';

export type WaitlistStatus = 'WAITING' | 'OFFERED' | 'CLAIMED' | 'LEFT' | 'EXPIRED';

export type SeatStatus = 'IN_SERVICE' | 'OUT_OF_SERVICE';

/** docs/protocol.md, "Live states and flags". */
export type LiveState = 'free' | 'reserved' | 'occupied' | 'away' | 'unavailable';

/** Only true flags are sent; `{}` when none. */
export interface LiveFlags {
  unbookedOccupancy?: true;
  sensorOffline?: true;
}

/** The `cause` of a seat event (docs/protocol.md, "`seat`"). */
export type ChangeCause =
  | 'sensor'
  | 'reservation.created'
  | 'reservation.cancelled'
  | 'checkIn'
  | 'checkOut'
  | 'noShow'
  | 'completed'
  | 'offer'
  | 'away'
  | 'back'
  | 'admin';

/** The `kind` of a personal event (docs/protocol.md, "`personal`"). */
export type PersonalKind = 'offer' | 'offerExpired' | 'noShow' | 'released' | 'away' | 'awayEnding';

// ---- RPC results ---------------------------------------------------------------------------

export interface UserWire {
  id: number;
  studentId: string;
  name: string;
  role: Role;
}

export interface SeatCounts {
  total: number;
  free: number;
  reserved: number;
  occupied: number;
  /** Checked in, the owner away and the seat held for them (docs/protocol.md). */
  away: number;
  unavailable: number;
}

export interface BranchWire {
  id: number;
  name: string;
  timezone: string;
  hours: BranchHours;
  paddingMinutes: number;
  counts: SeatCounts;
}

export interface SeatWire {
  id: number;
  /** The branch's name. */
  branch: string;
  area: string;
  label: string;
  hasPower: boolean;
  hasMonitor: boolean;
  status: SeatStatus;
  available: boolean;
  live: LiveState;
}

export interface ReservationWire {
  id: number;
  seatId: number;
  userId: number;
  start: string;
  end: string;
  status: ReservationStatus;
  createdAt: string;
  checkedInAt?: string;
  offerExpiresAt?: string;
  /** Present while the owner is away: when the booking is released unless they sit down again. */
  holdUntil?: string;
}

export interface WaitlistEntryWire {
  id: number;
  /** 1 = next in line among WAITING entries for the same seat (or branch) and an overlapping window; null once not waiting. */
  position: number | null;
  seatId?: number;
  /** A branch-wide entry's branch name. */
  branch?: string;
  branchId: number;
  start: string;
  end: string;
  status: WaitlistStatus;
  createdAt: string;
  /** Present while OFFERED: the reservation that holds the slot and when the offer lapses. */
  offer?: { reservationId: number; seatId: number; offerExpiresAt: string };
  /** Present once CLAIMED: the reservation the offer became. */
  reservationId?: number;
}

/** A sensor key as admins see it: never the key, never its digest. */
export interface SensorKeyWire {
  id: number;
  name: string;
  /** The only branch the key may write; null: every branch. */
  branchId: number | null;
  branch: string | null;
  fingerprint: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface ServerInfo {
  name: string;
  version: string;
  instanceId: string;
  startedAt: string;
  ports: Record<string, number>;
  limits: Record<string, number>;
}

export interface Availability {
  seatId: number;
  start: string;
  end: string;
  /** The holds (booking plus cleaning buffer) of active bookings that overlap the window. */
  booked: Array<{ start: string; end: string }>;
}

/** A no-show strike (docs/rules.md, "Strikes and suspension"). */
export interface StrikeWire {
  id: number;
  reservationId: number;
  reason: 'noShow' | 'awayExpired';
  at: string;
}

/** A user's strikes as they count now: auth.me, admin.users.strikes. */
export interface StrikesWire {
  /** Uncleared strikes within rules.strikes.windowDays, newest first. */
  strikes: StrikeWire[];
  limit: number;
  windowDays: number;
  /** Booking is suspended until then; null when it is not. */
  suspendedUntil: string | null;
}

/** What each RPC method answers (docs/protocol.md, "RPC methods"). */
export interface MethodResults {
  PING: 'PONG';
  'server.info': ServerInfo;
  'server.stats': Record<string, unknown>;
  'auth.register': { user: UserWire };
  'auth.login': { token: string; expiresAt: string; user: UserWire };
  'auth.use': { user: UserWire };
  'auth.me': { user: UserWire; strikes: StrikesWire };
  'branches.list': BranchWire[];
  'seats.list': SeatWire[];
  'seats.get': SeatWire;
  'seats.availability': Availability;
  'reservations.create': ReservationWire;
  'reservations.get': ReservationWire;
  'reservations.walkIn': ReservationWire;
  'reservations.mine': { reservations: ReservationWire[]; nextCursor: string | null };
  'reservations.cancel': ReservationWire;
  'reservations.checkIn': ReservationWire;
  'reservations.checkOut': ReservationWire;
  'waitlist.join': WaitlistEntryWire;
  'waitlist.mine': WaitlistEntryWire[];
  'waitlist.leave': Record<string, never>;
  'waitlist.claim': ReservationWire;
  'admin.seats.setStatus': SeatWire;
  'admin.branches.setHours': BranchWire;
  'admin.sensors.addKey': SensorKeyWire & { key: string };
  'admin.sensors.listKeys': SensorKeyWire[];
  'admin.sensors.revokeKey': SensorKeyWire;
  'admin.reports.utilization': UtilizationReportWire;
  'admin.users.strikes': StrikesWire;
  'admin.users.clearStrikes': { cleared: number };
}

export type MethodName = keyof MethodResults;

// ---- the subscriber port ---------------------------------------------------------------------

/** A reservation as events carry it: what a subscriber may know, its branch included. */
export interface ReservationFact {
  id: number;
  seatId: number;
  branchId: number;
  userId: number;
  start: string;
  end: string;
  status: ReservationStatus;
  /** While the owner is away (docs/rules.md, presence): when the hold runs out. */
  holdUntil?: string;
}

export interface SubscribedFrame {
  type: 'subscribed';
  /** The branch's name as stored, or "*". */
  branch: string;
  branches: Array<{ id: number; name: string; seq: number; epoch: string; resumed?: boolean }>;
  personal: boolean;
  resumed?: boolean;
  epoch?: string;
}

export interface SnapshotSeat {
  seatId: number;
  area: string;
  label: string;
  state: LiveState;
  flags: LiveFlags;
  /** state away: when the seat is released unless its owner sits down again. */
  holdUntil?: string;
}

export interface SnapshotFrame {
  type: 'snapshot';
  branch: string;
  branchId: number;
  seq: number;
  epoch: string;
  /** With `reason`: replaces everything the subscriber knew of the branch. */
  fresh?: true;
  reason?: string;
  seats: SnapshotSeat[];
}

export interface SeatEventFrame {
  type: 'seat';
  branch: string;
  branchId: number;
  seq: number;
  seatId: number;
  state: LiveState;
  flags: LiveFlags;
  /** state away: when the seat is released unless its owner sits down again. */
  holdUntil?: string;
  cause: ChangeCause;
  at: string;
}

export interface BranchSummaryFrame extends SeatCounts {
  type: 'branch';
  branch: string;
  branchId: number;
  seq: number;
  sensorOffline: number;
  unbookedOccupancy: number;
  at: string;
}

export interface PersonalFrame {
  type: 'personal';
  kind: PersonalKind;
  reservation: ReservationFact;
  /** offer, offerExpired: the entry, the id waitlist.claim takes. */
  waitlistId?: number;
  /** offer: when it lapses unless claimed. */
  offerExpiresAt?: string;
  at: string;
}

/**
 * An error on the sensor or subscriber port: the error's code and message, the answered frame's
 * `ref` on the sensor port, and the error's details as fields of their own (`retryAfterMs`).
 */
export interface ErrorFrame {
  type: 'error';
  code: FrameErrorCode;
  message: string;
  ref?: unknown;
  [detail: string]: unknown;
}

export type SubscriberFrame = SubscribedFrame | SnapshotFrame | SeatEventFrame | BranchSummaryFrame | PersonalFrame | { type: 'pong' } | ErrorFrame;

// ---- the sensor port -------------------------------------------------------------------------

/** Why one reading of a frame was refused: the keys of the ack's `refused` (docs/sensors.md). */
export const ReadingCode = {
  /** Not {seatId: positive integer, occupied: boolean, at: string}. */
  INVALID_READING: 'INVALID_READING',
  /** `at` is not an RFC 3339 date-time with seconds and a Z or numeric offset. */
  AT_NOT_RFC3339: 'AT_NOT_RFC3339',
  /** `at` is older than now - sensors.maxAgeMs. */
  AT_TOO_OLD: 'AT_TOO_OLD',
  /** `at` is later than now + sensors.maxClockSkewMs. */
  AT_IN_FUTURE: 'AT_IN_FUTURE',
  UNKNOWN_SEAT: 'UNKNOWN_SEAT',
  /** The seat belongs to a branch this connection's key may not write. */
  OUT_OF_SCOPE: 'OUT_OF_SCOPE',
} as const;

export type ReadingCode = (typeof ReadingCode)[keyof typeof ReadingCode];

export interface Reading {
  seatId: number;
  occupied: boolean;
  at: string;
}

export interface HelloFrame {
  type: 'hello';
  sensorId: string;
  key: string;
}

export interface OccupancyFrame {
  type: 'occupancy';
  ref?: number | string;
  readings: Reading[];
}

export interface WelcomeFrame {
  type: 'welcome';
  sensorId: string;
  /** The only branch the key may write; null: every branch. */
  branchId: number | null;
  maxReadingsPerFrame: number;
  offlineAfterMs: number;
  maxAgeMs: number;
  maxClockSkewMs: number;
  serverTime: string;
}

export interface AckFrame {
  type: 'ack';
  ref: number | string | null;
  applied: number;
  stale: number;
  /** Code → indexes into the frame's readings. */
  refused: Partial<Record<ReadingCode, number[]>>;
  unknownSeats: number[];
}

export type SensorReplyFrame = WelcomeFrame | AckFrame | ErrorFrame;

// ---- admin.reports.utilization (docs/reports.md) ------------------------------------------------

export type ReportBy = 'hour' | 'day' | 'seat' | 'area';

/** The figures of one bucket (docs/reports.md, "The figures"). Minutes to a tenth. */
export interface UtilizationFigures {
  bookings: number;
  noShows: number;
  bookedMinutes: number;
  /** null where no sensor reported (a seat without one): see docs/reports.md. */
  attendedMinutes: number | null;
  ghostMinutes: number | null;
  awayMinutes: number | null;
  unobservedBookedMinutes: number;
  occupiedMinutes: number | null;
  unbookedOccupiedMinutes: number | null;
  observedMinutes: number;
  openObservedMinutes: number;
  openOccupiedMinutes: number | null;
  peakOccupancy: number | null;
  utilizationPct: number | null;
}

export type UtilizationBucket = UtilizationFigures &
  (
    | { day: string; start: string; end: string }
    | { hour: string; start: string; end: string }
    | { seatId: number; label: string; area: string; sensor: boolean }
    | { area: string; seats: number; seatsWithSensor: number }
  );

export interface UtilizationReportWire {
  branch: { id: number; name: string; timezone: string };
  from: string;
  to: string;
  by: ReportBy;
  /** The instants covered: from's midnight to the midnight after `to`, or now if earlier. */
  start: string;
  end: string;
  generatedAt: string;
  seats: number;
  /** Seats of the branch no sensor reported on in the range: their figures are not guessed. */
  seatsWithoutSensor: { count: number; labels: string[] };
  buckets: UtilizationBucket[];
  total: UtilizationFigures;
}
