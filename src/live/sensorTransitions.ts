// Bookings moved by sensors (docs/sensors.md): sitting down in one's booked seat inside its
// check-in window checks in; a checked-in seat empty for sensors.releaseAfterMs is released. The
// live model says when; the booking core does it, with the same guarded updates as the RPC
// methods, and its committed change comes back to the model like any other.
import type { Logger } from '../obs/log.js';
import type { ReservationFact } from '../core/events.js';

export interface SensorTransitions {
  checkInBySensor(seatId: number, atMs: number): Promise<ReservationFact | null>;
  releaseBySensor(seatId: number, atMs: number): Promise<ReservationFact | null>;
}

export class SensorTransitionRunner {
  readonly counters = { autoCheckIns: 0, autoReleases: 0 };
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly reservations: SensorTransitions,
    private readonly log: Logger,
  ) {}

  checkIn(seatId: number, atMs: number): void {
    this.track(this.reservations.checkInBySensor(seatId, atMs).then((fact) => void (fact && this.counters.autoCheckIns++)));
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
