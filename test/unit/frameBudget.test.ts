import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameBudget } from '../../src/net/frameBudget.js';

/** A budget whose evict callback releases the holder, as Connection.evict does, and records who went. */
function budget(maxBytes: number) {
  const evicted: string[] = [];
  const b: FrameBudget<string> = new FrameBudget<string>(maxBytes, (h) => {
    evicted.push(h);
    b.set(h, 0);
  });
  return { b, evicted };
}

describe('unfinished-frame budget', () => {
  it('under the budget nobody is evicted and the total is the sum of what each holds', () => {
    const { b, evicted } = budget(1000);
    b.set('a', 400);
    b.set('b', 500);
    b.set('a', 100);
    expect(b.total).toBe(600);
    expect(b.holders).toBe(2);
    b.set('b', 0);
    expect(b.total).toBe(100);
    expect(b.holders).toBe(1);
    expect(evicted).toEqual([]);
  });

  it('going over evicts the largest holder, not the one receiving', () => {
    const { b, evicted } = budget(1000);
    b.set('big', 700);
    b.set('small', 200);
    b.set('small', 350);
    expect(evicted).toEqual(['big']);
    expect(b.total).toBe(350);
    expect(b.evictions).toBe(1);
  });

  it('the one receiving goes when it holds the most', () => {
    const { b, evicted } = budget(1000);
    b.set('a', 300);
    b.set('b', 900);
    expect(evicted).toEqual(['b']);
    expect(b.total).toBe(300);
  });

  it('evicts as many as it takes, largest first; on a tie the one holding longest', () => {
    const { b, evicted } = budget(1000);
    for (const h of ['p', 'q', 'r', 's']) b.set(h, 250);
    b.set('t', 900);
    // 1,900 > 1,000: t (900) goes first and that is enough.
    expect(evicted).toEqual(['t']);
    b.set('q', 240);
    b.set('q', 250); // still holding since it began: growing keeps its place
    b.set('u', 100);
    // 1,100: the 250s tie, and p has held its bytes longest.
    expect(evicted).toEqual(['t', 'p']);
    b.set('u', 500);
    // 1,250: u is now the largest.
    expect(evicted).toEqual(['t', 'p', 'u']);
    expect(b.total).toBe(750);
  });

  it('an evict callback that does not release the holder cannot spin the loop', () => {
    const calls: string[] = [];
    const b = new FrameBudget<string>(100, (h) => calls.push(h));
    b.set('a', 80);
    b.set('b', 90);
    expect(calls).toEqual(['b']);
    expect(b.total).toBe(80);
  });

  it('after any sequence of holdings the total stays within the budget and equals the sum held', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 6000 })), { maxLength: 200 }),
        (max, ops) => {
          const held = new Map<string, number>();
          const b: FrameBudget<string> = new FrameBudget<string>(max, (h) => {
            // The victim is the largest holder at the time.
            expect(held.get(h)).toBe(Math.max(...held.values()));
            held.delete(h);
            b.set(h, 0);
          });
          for (const [who, bytes] of ops) {
            const h = `c${who}`;
            if (bytes === 0) held.delete(h);
            else held.set(h, bytes);
            b.set(h, bytes);
            expect(b.total).toBeLessThanOrEqual(max);
            expect(b.total).toBe([...held.values()].reduce((x, y) => x + y, 0));
          }
          expect(b.peak).toBeLessThanOrEqual(max);
        },
      ),
      { seed: 20260301, numRuns: 300 },
    );
  });
});
