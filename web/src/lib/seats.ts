// Seats and branches the student page has looked up, by id: a booking names only its seat, so its
// label, area and branch (for the branch's time zone) come from here. Bounded: a student sees a
// few dozen seats; past 500 the cache starts over.
import type { BranchWire, SeatWire } from '../wire.js';
import type { RpcClient } from './rpc.js';

export class SeatDirectory {
  private readonly seats = new Map<number, Promise<SeatWire>>();
  constructor(private readonly rpc: RpcClient) {}

  remember(seat: SeatWire): void {
    if (this.seats.size >= 500) this.seats.clear();
    this.seats.set(seat.id, Promise.resolve(seat));
  }

  get(id: number): Promise<SeatWire> {
    let p = this.seats.get(id);
    if (!p) {
      if (this.seats.size >= 500) this.seats.clear();
      p = this.rpc.call<SeatWire>('seats.get', { id });
      p.catch(() => this.seats.delete(id));
      this.seats.set(id, p);
    }
    return p;
  }
}

export const DAY_KEYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** Minutes since local midnight of "HH:MM" ("24:00" is 1440). */
export function minutesOf(hm: string): number {
  const [h, m] = hm.split(':').map(Number) as [number, number];
  return h * 60 + m;
}

export function hm(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** The opening hours of a branch on a local date, in minutes, or null when closed. */
export function hoursOn(branch: BranchWire, date: string): { open: number; close: number } | null {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const day = DAY_KEYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()]!;
  const h = branch.hours[day];
  return h ? { open: minutesOf(h.open), close: minutesOf(h.close) } : null;
}
