// The wire objects the pages read: the server's and its clients' own vocabulary (src/wire,
// docs/protocol.md), imported as types only, so nothing of it but its shapes reaches the bundle
// (test/unit/webImports.test.ts holds the pages to that).
export type {
  BranchSummaryFrame,
  BranchWire,
  ErrorFrame,
  LiveFlags,
  LiveState,
  PersonalFrame,
  ReservationFact,
  ReservationWire,
  SeatEventFrame,
  SeatWire,
  SnapshotFrame,
  SnapshotSeat,
  SubscribedFrame,
  SubscriberFrame,
  UserWire,
  WaitlistEntryWire,
  MethodResults,
} from '../../src/wire/types.js';
export type { WireError } from '../../src/wire/errors.js';
