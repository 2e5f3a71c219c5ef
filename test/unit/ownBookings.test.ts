import { describe, expect, it } from 'vitest';
import { OwnBookings } from '../../src/core/ownBookings.js';
import type { CoreEvent } from '../../src/core/events.js';

describe('OwnBookings: what an instance remembers of the bookings it made', () => {
  const at = (now: { ms: number }) => new OwnBookings({ maxEntries: 100, keepMs: 10_000, now: () => now.ms });

  it('a thousand accounts cannot grow it past maxEntries users, nor one user past four bookings', () => {
    const now = { ms: 0 };
    const own = at(now);
    for (let u = 1; u <= 1_000; u++) own.remember(u, { id: u, startMs: 0, endMs: 3_600_000 });
    expect(own.size).toBe(100);
    // The least recently booked went first.
    expect(own.overlapping(1, 0, 3_600_000)).toBeUndefined();
    expect(own.overlapping(1_000, 0, 3_600_000)).toMatchObject({ id: 1_000 });
    for (let i = 0; i < 50; i++) own.remember(7, { id: 10_000 + i, startMs: i * 3_600_000, endMs: (i + 1) * 3_600_000 });
    expect(own.overlapping(7, 0, 46 * 3_600_000)).toBeUndefined();
    expect(own.overlapping(7, 46 * 3_600_000, 50 * 3_600_000)).toMatchObject({ id: 10_046 });
  });

  it('answers only overlaps, forgets after keepMs, and at once on news that the booking no longer holds', () => {
    const now = { ms: 0 };
    const own = at(now);
    own.remember(1, { id: 5, startMs: 1_000, endMs: 2_000 });
    expect(own.overlapping(1, 2_000, 3_000)).toBeUndefined(); // back to back
    expect(own.overlapping(1, 1_500, 2_500)).toMatchObject({ id: 5 });
    const event = (status: 'CHECKED_IN' | 'CANCELLED'): CoreEvent => ({
      type: 'reservation',
      cause: status === 'CHECKED_IN' ? 'checkIn' : 'reservation.cancelled',
      reservation: { id: 5, seatId: 1, branchId: 1, userId: 1, start: '', end: '', status },
      at: '',
    });
    own.onCoreEvent(event('CHECKED_IN'));
    expect(own.overlapping(1, 1_500, 2_500)).toMatchObject({ id: 5 });
    own.onCoreEvent(event('CANCELLED'));
    expect(own.overlapping(1, 1_500, 2_500)).toBeUndefined();
    own.remember(1, { id: 6, startMs: 1_000, endMs: 2_000 });
    now.ms = 10_000;
    expect(own.overlapping(1, 1_500, 2_500)).toBeUndefined();
  });
});
