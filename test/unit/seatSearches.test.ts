// What an instance remembers of best-available searches (src/core/seatSearches.ts): full
// windows and where the last walk found its seat, forgotten on any news that frees seat time in
// the branch, never kept from a walk that began before such news, lapsing, and bounded.
import { describe, expect, it } from 'vitest';
import type { CoreEvent } from '../../src/core/events.js';
import { SeatSearches, freesSeatTime, type SearchShape } from '../../src/core/seatSearches.js';

const shape = (branchId: number, extra: Partial<SearchShape> = {}): SearchShape => ({ branchId, startMs: 1_000, endMs: 2_000, ...extra });
const reservation = (branchId: number, cause: string): CoreEvent =>
  ({
    type: 'reservation',
    cause,
    reservation: { id: 1, seatId: 1, branchId, userId: 1, start: '', end: '', status: 'CONFIRMED' },
    at: '',
  }) as CoreEvent;

function searches(maxEntries = 100, keepMs = 10_000) {
  let now = 0;
  const s = new SeatSearches({ maxEntries, keepMs, now: () => now });
  return { s, advance: (ms: number) => (now += ms) };
}

describe('SeatSearches', () => {
  it('keys a search by branch, window and filters; near is not part of it', () => {
    const keys = new Set([
      SeatSearches.key(shape(1)),
      SeatSearches.key(shape(2)),
      SeatSearches.key(shape(1, { endMs: 3_000 })),
      SeatSearches.key(shape(1, { hasPower: true })),
      SeatSearches.key(shape(1, { hasPower: false })),
      SeatSearches.key(shape(1, { hasMonitor: true })),
      SeatSearches.key(shape(1, { area: 'A' })),
    ]);
    expect(keys.size).toBe(7);
  });

  it('remembers a full search and where a walk found its seat', () => {
    const { s } = searches();
    const k = SeatSearches.key(shape(1));
    expect(s.isFull(k)).toBe(false);
    s.learn(k, 1, s.generation(1), { from: { area: 'A', label: 'A-3', seatId: 7 } });
    expect(s.walkStart(k)).toEqual({ area: 'A', label: 'A-3', seatId: 7 });
    expect(s.isFull(k)).toBe(false);
    s.learn(k, 1, s.generation(1), { full: true });
    expect(s.isFull(k)).toBe(true);
    expect(s.walkStart(k)).toBeNull();
  });

  it('forgets a branch on news that frees seat time in it, and only that branch', () => {
    const { s } = searches();
    const [k1, k2] = [SeatSearches.key(shape(1)), SeatSearches.key(shape(2))];
    s.learn(k1, 1, s.generation(1), { full: true });
    s.learn(k2, 2, s.generation(2), { full: true });
    for (const cause of ['reservation.created', 'offer', 'checkIn']) s.onCoreEvent(reservation(1, cause));
    expect(s.isFull(k1)).toBe(true);
    s.onCoreEvent(reservation(1, 'reservation.cancelled'));
    expect(s.isFull(k1)).toBe(false);
    expect(s.isFull(k2)).toBe(true);
    s.onCoreEvent({ type: 'seatStatus', cause: 'admin', seatId: 1, branchId: 2, status: 'OUT_OF_SERVICE', at: '' });
    expect(s.isFull(k2)).toBe(true);
    s.onCoreEvent({ type: 'seatStatus', cause: 'admin', seatId: 1, branchId: 2, status: 'IN_SERVICE', at: '' });
    expect(s.isFull(k2)).toBe(false);
  });

  it('what frees seat time: a cancellation, check-out, no-show, completion, a seat back in service', () => {
    const frees = ['reservation.cancelled', 'checkOut', 'noShow', 'completed'].map((c) => freesSeatTime(reservation(1, c)));
    expect(frees).toEqual([true, true, true, true]);
    expect(['reservation.created', 'offer', 'checkIn'].map((c) => freesSeatTime(reservation(1, c)))).toEqual([false, false, false]);
  });

  it('does not keep a verdict from a walk that began before news from its branch', () => {
    const { s } = searches();
    const k = SeatSearches.key(shape(1));
    const gen = s.generation(1);
    s.onCoreEvent(reservation(1, 'checkOut'));
    s.learn(k, 1, gen, { full: true });
    expect(s.isFull(k)).toBe(false);
  });

  it('lets a verdict lapse after keepMs', () => {
    const { s, advance } = searches(100, 5_000);
    const k = SeatSearches.key(shape(1));
    s.learn(k, 1, s.generation(1), { full: true });
    advance(4_999);
    expect(s.isFull(k)).toBe(true);
    advance(1);
    expect(s.isFull(k)).toBe(false);
  });

  it('holds at most maxEntries shapes, the least recently learnt forgotten first', () => {
    const { s } = searches(50);
    const key = (i: number) => SeatSearches.key(shape(1, { area: `area-${i}` }));
    for (let i = 0; i < 10_000; i++) s.learn(key(i), 1, s.generation(1), { full: true });
    expect(s.size).toBe(50);
    expect(s.isFull(key(9_999))).toBe(true);
    expect(s.isFull(key(9_950))).toBe(true);
    expect(s.isFull(key(9_949))).toBe(false);
    // Learning a shape again moves it to the back.
    s.learn(key(9_950), 1, s.generation(1), { full: true });
    s.learn(key(10_000), 1, s.generation(1), { full: true });
    expect(s.isFull(key(9_950))).toBe(true);
    expect(s.isFull(key(9_951))).toBe(false);
  });
});
