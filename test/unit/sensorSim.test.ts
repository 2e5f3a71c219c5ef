import { describe, expect, it } from 'vitest';
import { SeatClock, simulate, subscriberPortFor } from '../../clients/sensorSim.js';

describe('sensor simulator', () => {
  it("stamps each seat's readings strictly later than its last, however many share a millisecond", () => {
    const clock = new SeatClock();
    const stamps = [clock.stamp(1, 1000), clock.stamp(1, 1000), clock.stamp(2, 1000), clock.stamp(1, 999), clock.stamp(1, 1500), clock.stamp(2, 1001)];
    expect(stamps).toEqual([1000, 1001, 1000, 1002, 1500, 1001]);
  });

  it('looks for the subscriber port on the port after the sensor port, on its host', () => {
    expect(subscriberPortFor('127.0.0.1:9001')).toBe('127.0.0.1:9002');
    expect(subscriberPortFor('10.0.0.5:15001')).toBe('10.0.0.5:15002');
    expect(subscriberPortFor('gateway.local')).toBe('gateway.local:9002');
  });

  it('refuses a rate above one reading per seat per millisecond, before connecting anywhere', async () => {
    const run = simulate({ server: '127.0.0.1:1', seats: 2, rate: 2001, pattern: 'random', periodSec: 60, key: 'k', sensorId: 's', quiet: true });
    await expect(run).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('use at most 2000/s') });
  });
});
