// What the reservation core tells the rest of carrel after a change has committed
// (docs/architecture.md, "The live-state model"). Core only emits these facts through a
// CoreEventSink; the live-seat model, the event bus and the subscriber hub decide what they mean
// for a seat's live state and who hears of it.
// The facts are wire shapes (src/wire/types.ts): a subscriber receives them as they are.
import type { ChangeCause, PersonalFrame, PersonalKind, ReservationFact, ReservationStatus } from '../wire/types.js';

export type { ChangeCause, ReservationFact, ReservationStatus } from '../wire/types.js';

/** Statuses that hold a seat: the exclusion constraint's WHERE clause, and the live model's bookings. */
export const ACTIVE_STATUSES: readonly ReservationStatus[] = ['CONFIRMED', 'CHECKED_IN', 'OFFERED'];

/** ACTIVE_STATUSES as an SQL list, for `status IN …`. */
export const ACTIVE_STATUSES_SQL = `(${ACTIVE_STATUSES.map((s) => `'${s}'`).join(', ')})`;

/** A reservation was created or moved between statuses (after commit). */
export interface ReservationEvent {
  type: 'reservation';
  cause: Exclude<ChangeCause, 'sensor' | 'admin'>;
  reservation: ReservationFact;
  at: string;
}

/** An admin took a seat in or out of service. */
export interface SeatStatusEvent {
  type: 'seatStatus';
  cause: 'admin';
  seatId: number;
  branchId: number;
  status: 'IN_SERVICE' | 'OUT_OF_SERVICE';
  at: string;
}

/** Something only one user should hear of (a waitlist offer, their booking became NO_SHOW). */
export interface PersonalEvent {
  type: 'personal';
  userId: number;
  kind: PersonalKind;
  reservation: ReservationFact;
  /** Waitlist kinds (offer, offerExpired): the entry, i.e. the id `waitlist.claim {id}` takes. */
  waitlistId?: number;
  /** kind offer: when the offer lapses unless claimed. */
  offerExpiresAt?: string;
  at: string;
}

/**
 * The personal frame a subscriber receives (docs/protocol.md, "`personal`"): the event without its
 * routing (userId). Defined here, next to the event, so the hub only encodes it.
 */
export function personalFrame(ev: PersonalEvent): PersonalFrame {
  return {
    type: 'personal',
    kind: ev.kind,
    reservation: ev.reservation,
    ...(ev.waitlistId === undefined ? {} : { waitlistId: ev.waitlistId }),
    ...(ev.offerExpiresAt === undefined ? {} : { offerExpiresAt: ev.offerExpiresAt }),
    at: ev.at,
  };
}

export type CoreEvent = ReservationEvent | SeatStatusEvent | PersonalEvent;

export interface CoreEventSink {
  emit(event: CoreEvent): void;
}

/**
 * The in-process hand-off of core events: core emits after commit, and each consumer (the live
 * seat model, the event bus, personal notifications) registers a listener. A listener that
 * throws is isolated so one consumer cannot break another or the request that emitted.
 */
export class CoreEventFanout implements CoreEventSink {
  private readonly listeners = new Set<(event: CoreEvent) => void>();

  constructor(private readonly onListenerError: (err: unknown) => void = () => undefined) {}

  on(listener: (event: CoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: CoreEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}

/** A sink for tools and tests that need none. */
export const discardEvents: CoreEventSink = { emit: () => undefined };
