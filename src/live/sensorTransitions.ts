// Bookings moved by sensors (docs/sensors.md; docs/rules.md, "Presence: the state machine"):
// sitting down in one's booked seat inside its check-in window checks in; a checked-in seat left
// empty becomes away, held for its owner; sitting down again ends the hold; the hold running out
// releases the booking. The live model says when; the booking core does it, with guarded updates
// like the RPC methods', and its committed change comes back to the model like any other.
import type { Logger } from '../obs/log.js';
import type { ReservationFact } from '../core/events.js';

export interface SensorTransitions {
  checkInBySensor(seatId: number, atMs: number): Promise<ReservationFact | null>;
  releaseBySensor(seatId: number, atMs: number): Promise<ReservationFact | null>;
}

export interface PresenceTransitions {
  awayBySensor(seatId: number, atMs: number): Promise<ReservationFact | null>;
  backBySensor(seatId: number, atMs: number): Promise<ReservationFact | null>;
  awayEndingBySensor(seatId: number, atMs: number): Promise<ReservationFact | null>;
}

export class SensorTransitionRunner {
  readonly counters = { autoCheckIns: 0, autoReleases: 0, awayHolds: 0, awayReturns: 0 };
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly reservations: SensorTransitions,
    private readonly presence: PresenceTransitions,
    private readonly log: Logger,
  ) {}

  checkIn(seatId: number, atMs: number): void {
    this.track(this.reservations.checkInBySensor(seatId, atMs).then((fact) => void (fact && this.counters.autoCheckIns++)));
  }

  away(seatId: number, atMs: number): void {
    this.track(this.presence.awayBySensor(seatId, atMs).then((fact) => void (fact && this.counters.awayHolds++)));
  }

  back(seatId: number, atMs: number): void {
    this.track(this.presence.backBySensor(seatId, atMs).then((fact) => void (fact && this.counters.awayReturns++)));
  }

  awayEnding(seatId: number, atMs: number): void {
    this.track(this.presence.awayEndingBySensor(seatId, atMs));
  }

  release(seatId: number, atMs: number): void {
    this.track(this.reservations.releaseBySensor(seatId, atMs).then((fact) => void (fact && this.counters.autoReleases++)));
  }

  /** Resolves when the transitions started so far have finished. */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Also for other work the live half starts and shutdown must wait for (a reload after an outage). */
  track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'sensor-driven transition failed'));
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
  }
}
