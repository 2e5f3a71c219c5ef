import { describe, expect, it } from 'vitest';
import { cryptoRandom } from '../../src/core/bookingQueue.js';

describe("the opening lottery's shuffle", () => {
  // The shipped default, not the seeded one the lottery's tests use: it once asked randomInt for
  // 2^48, one past its limit, and the first real draw threw in a timer and took the server down.
  it('draws numbers in [0, 1) from the crypto source, spread over the range', () => {
    const draws = Array.from({ length: 2_000 }, () => cryptoRandom());
    for (const x of draws) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
    const low = draws.filter((x) => x < 0.5).length;
    expect(low).toBeGreaterThan(800);
    expect(low).toBeLessThan(1_200);
  });
});
