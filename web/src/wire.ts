// The wire objects the pages read, as docs/protocol.md describes them. The browser bundle must not
// import server code (.dependency-cruiser.cjs), so these are declared here;
// test/unit/webWire.test.ts checks at compile time that the server's own wire types still fit them.

export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface User {
  id: number;
  studentId: string;
  name: string;
  role: 'student' | 'admin';
}

export type DayName = 'sun' | 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat';

export interface Counts {
  total: number;
  free: number;
  reserved: number;
  occupied: number;
  unavailable: number;
}

export interface Branch {
  id: number;
  name: string;
  timezone: string;
  hours: Partial<Record<DayName, { open: string; close: string } | null>>;
  paddingMinutes: number;
  counts: Counts;
}

/** A seat's live state (docs/protocol.md, "Live states and flags"); a newer server may add states. */
export type LiveState = 'free' | 'reserved' | 'occupied' | 'away' | 'unavailable';

export interface Seat {
  id: number;
  branch: string;
  area: string;
  label: string;
  hasPower: boolean;
  hasMonitor: boolean;
  status: 'IN_SERVICE' | 'OUT_OF_SERVICE';
  available: boolean;
  live: string;
}

export type ReservationStatus = 'CONFIRMED' | 'CHECKED_IN' | 'COMPLETED' | 'CANCELLED' | 'NO_SHOW' | 'OFFERED';

export interface Reservation {
  id: number;
  seatId: number;
  userId: number;
  start: string;
  end: string;
  status: ReservationStatus;
  createdAt: string;
  checkedInAt?: string | null;
  offerExpiresAt?: string | null;
}

export interface WaitlistEntry {
  id: number;
  position: number | null;
  seatId?: number | null;
  branch?: string | null;
  branchId: number;
  start: string;
  end: string;
  status: 'WAITING' | 'OFFERED' | 'CLAIMED' | 'LEFT' | 'EXPIRED';
  createdAt: string;
  offer?: { reservationId: number; seatId: number; offerExpiresAt: string } | null;
  reservationId?: number | null;
}

export interface LoginResult {
  token: string;
  expiresAt: string;
  user: User;
}

// Subscriber frames (docs/protocol.md, "Subscriber port"), as /ws/live carries them.

export interface SeatFlags {
  unbookedOccupancy?: boolean;
  sensorOffline?: boolean;
}

export interface SnapshotSeat {
  seatId: number;
  area: string;
  label: string;
  state: string;
  flags: SeatFlags;
  holdUntil?: string;
}

export interface SubscribedFrame {
  type: 'subscribed';
  branch: string;
  branches: { id: number; name: string; seq: number; epoch: string; resumed?: boolean }[];
  personal: boolean;
  epoch?: string;
  resumed?: boolean;
}

export interface SnapshotFrame {
  type: 'snapshot';
  branch: string;
  branchId: number;
  seq: number;
  epoch: string;
  fresh?: boolean;
  reason?: string;
  seats: SnapshotSeat[];
}

export interface SeatFrame {
  type: 'seat';
  branch: string;
  branchId: number;
  seq: number;
  seatId: number;
  state: string;
  flags: SeatFlags;
  cause: string;
  at: string;
  holdUntil?: string;
}

export interface BranchFrame {
  type: 'branch';
  branch: string;
  branchId: number;
  seq: number;
  free: number;
  reserved: number;
  occupied: number;
  unavailable: number;
  total: number;
  sensorOffline: number;
  unbookedOccupancy: number;
  at: string;
}

export interface PersonalFrame {
  type: 'personal';
  kind: string;
  reservation: Reservation;
  waitlistId?: number;
  offerExpiresAt?: string;
  at: string;
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
}

export type LiveFrame = SubscribedFrame | SnapshotFrame | SeatFrame | BranchFrame | PersonalFrame | ErrorFrame | { type: 'pong' };
