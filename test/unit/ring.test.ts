import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameRing } from '../../src/pubsub/ring.js';

const buf = (s: string) => Buffer.from(s);

describe('FrameRing', () => {
  it('is FIFO and counts its bytes', () => {
    const r = new FrameRing(3);
    r.push(buf('a'), 1, 7);
    r.push(buf('bb'), 2, 7);
    expect(r.size).toBe(2);
    expect(r.bytes).toBe(3);
    expect(r.peekSeq()).toBe(1);
    expect(r.peekBranch()).toBe(7);
    expect(r.shift()!.toString()).toBe('a');
    expect(r.shift()!.toString()).toBe('bb');
    expect(r.shift()).toBeUndefined();
    expect(r.bytes).toBe(0);
  });

  it('drops the oldest when full and says so', () => {
    const r = new FrameRing(2);
    expect(r.push(buf('1'), 1)).toBe(false);
    expect(r.push(buf('2'), 2)).toBe(false);
    expect(r.push(buf('3'), 3)).toBe(true);
    expect(r.size).toBe(2);
    expect([r.seqAt(0), r.seqAt(1)]).toEqual([2, 3]);
    expect([r.shift()!.toString(), r.shift()!.toString()]).toEqual(['2', '3']);
  });

  it('gives random access to what it holds, oldest first', () => {
    const r = new FrameRing(3);
    for (let i = 1; i <= 5; i++) r.push(buf(String(i)), i);
    expect([0, 1, 2].map((i) => r.at(i)!.toString())).toEqual(['3', '4', '5']);
    expect(r.at(3)).toBeUndefined();
    expect(r.at(-1)).toBeUndefined();
  });

  it('clear() empties it and lets go of the buffers', () => {
    const r = new FrameRing(4);
    r.push(buf('x'));
    r.push(buf('y'));
    r.clear();
    expect(r.size).toBe(0);
    expect(r.bytes).toBe(0);
    expect(r.peek()).toBeUndefined();
    r.push(buf('z'), 9);
    expect(r.shift()!.toString()).toBe('z');
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new FrameRing(0)).toThrow(RangeError);
    expect(() => new FrameRing(1.5)).toThrow(RangeError);
  });

  it('behaves like "keep the last N" for any sequence of pushes and shifts (fixed seed)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 1000 })), { maxLength: 200 }), (cap, ops) => {
        const r = new FrameRing(cap);
        const model: number[] = [];
        for (const op of ops) {
          if (op < 0) {
            const got = r.shift();
            const want = model.shift();
            expect(got === undefined ? undefined : Number(got.toString())).toBe(want);
          } else {
            // A push drops exactly when the ring is already full, and then the oldest goes.
            expect(r.push(buf(String(op)), op)).toBe(model.length === cap);
            model.push(op);
            if (model.length > cap) model.shift();
          }
          expect(r.size).toBe(model.length);
          expect(r.bytes).toBe(model.reduce((n, v) => n + String(v).length, 0));
        }
        expect(Array.from({ length: r.size }, (_, i) => r.seqAt(i))).toEqual(model);
      }),
      { seed: 20260105, numRuns: 200 },
    );
  });
});
