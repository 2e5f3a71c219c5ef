// Two instances' live models merging each other's sensor evidence (docs/sensors.md): a seat shows
// the reading received last, and every instance, and every subscriber, ends with the same state.
// Audit: two readings of one seat received in the same millisecond on two instances (a Redis outage
// test, 2 runs in 5) left one instance's model on its own reading and its subscribers on the other's,
// and nothing published a correction.
import { describe, expect, it } from 'vitest';
import { LiveSeats, type LiveSeatsData, type SeatChange } from '../../src/core/liveSeats.js';

const T = Date.UTC(2030, 0, 7, 15);
const SEAT = 10;

function data(): LiveSeatsData {
  return {
    branches: [{ id: 1, name: 'Main Library' }],
    seats: [{ id: SEAT, branchId: 1, area: 'A', label: '1', outOfService: false }],
    bookings: [],
    sensors: [],
  };
}

/** Two models joined by an in-order stream, as the bus joins instances: each sees every change. */
function pair() {
  const stream: SeatChange[] = [];
  const make = (instanceId: string) => {
    const model = new LiveSeats(
      { instanceId, offlineAfterMs: 120_000, awayEndingMs: 300_000, autoCheckIn: false, autoRelease: false, checkInWindow: { opensBeforeMs: 0, graceMs: 0 } },
      { changes: { publishSeat: (c) => stream.push(c) } },
    );
    model.load(data(), T);
    return model;
  };
  const a = make('instance-a');
  const b = make('instance-b');
  /** Delivers the stream to both until nothing new is published (bounded: a loop would fail here). */
  const settle = () => {
    for (let i = 0; i < stream.length; i++) {
      if (i > 20) throw new Error('the instances kept correcting each other');
      a.applyRemote(stream[i]!, T + 5);
      b.applyRemote(stream[i]!, T + 5);
    }
  };
  const last = () => stream.at(-1)?.state;
  return { a, b, stream, settle, last };
}

describe('LiveSeats.applyRemote', () => {
  it.each([
    ['gw-a', 'gw-b', 'free'],
    ['gw-z', 'gw-b', 'occupied'],
  ])('readings received in the same millisecond on two instances (%s on A, %s on B): both models and the last published state agree', (sensorA, sensorB, winner) => {
    const { a, b, settle, last } = pair();
    expect(a.applyReading(SEAT, true, T - 119_000, T, sensorA)).toBe('applied');
    // Free on a free seat: B's evidence changes, its state does not, so B publishes nothing yet.
    expect(b.applyReading(SEAT, false, T - 115_000, T, sensorB)).toBe('applied');
    settle();
    expect(a.seat(SEAT)!.state).toBe(winner);
    expect(b.seat(SEAT)!.state).toBe(winner);
    expect(last()).toBe(winner);
  });

  it('readings received a fraction of a millisecond apart: the later one wins on both, whichever arrives first by the bus', () => {
    for (const order of ['a-first', 'b-first'] as const) {
      const { a, b, settle, last, stream } = pair();
      // A hears "occupied" at T + 0.2 ms, B hears "free" at T + 0.7 ms.
      if (order === 'a-first') {
        a.applyReading(SEAT, true, T - 119_000, T + 0.2, 'gw-z');
        b.applyReading(SEAT, false, T - 115_000, T + 0.7, 'gw-a');
      } else {
        b.applyReading(SEAT, false, T - 115_000, T + 0.7, 'gw-a');
        a.applyReading(SEAT, true, T - 119_000, T + 0.2, 'gw-z');
      }
      settle();
      expect([a.seat(SEAT)!.state, b.seat(SEAT)!.state, last()]).toEqual(['free', 'free', 'free']);
      // One correction at most: evidence only gets newer, so nobody answers it.
      expect(stream.length).toBeLessThanOrEqual(2);
    }
  });

  it('the same reading stated by both (a repeat after a reconnect) changes nothing and publishes nothing', () => {
    const { a, b, settle, stream } = pair();
    a.applyReading(SEAT, true, T - 1_000, T, 'gw-a');
    settle();
    const n = stream.length;
    b.applyRemote({ ...stream[0]!, origin: 'instance-c' }, T + 10);
    a.applyRemote({ ...stream[0]!, origin: 'instance-c' }, T + 10);
    expect(stream.length).toBe(n);
    expect([a.seat(SEAT)!.state, b.seat(SEAT)!.state]).toEqual(['occupied', 'occupied']);
  });
});
