// What a clash with another booking's hold means for the user: CONFLICT when the times overlap,
// the padding rule when only a cleaning buffer is in the way (core/bufferClash.ts).
import { describe, expect, it } from 'vitest';
import { onlyBufferClashes, paddingRuleError } from '../../src/core/bufferClash.js';

// The other booking is 10:00-11:00 (UTC), held until 11:15 by a 15-minute buffer.
const held = { start: '2030-01-07T10:00:00.000Z', end: '2030-01-07T11:15:00.000Z' };
const booking = (start: string, end: string) => ({ startMs: Date.parse(start), endMs: Date.parse(end) });

describe('a clash with a cleaning buffer', () => {
  it('is only the buffer when the times themselves do not overlap, on either side', () => {
    expect(onlyBufferClashes(held, booking('2030-01-07T11:00:00Z', '2030-01-07T12:00:00Z'), 15)).toBe(true);
    // Our own buffer running into its start is the same rule.
    expect(onlyBufferClashes(held, booking('2030-01-07T09:00:00Z', '2030-01-07T10:00:00Z'), 15)).toBe(true);
  });

  it('is a double booking when the times overlap, or when the branch keeps no buffer', () => {
    expect(onlyBufferClashes(held, booking('2030-01-07T10:45:00Z', '2030-01-07T11:45:00Z'), 15)).toBe(false);
    expect(onlyBufferClashes(held, booking('2030-01-07T09:00:00Z', '2030-01-07T10:15:00Z'), 15)).toBe(false);
    expect(onlyBufferClashes(held, booking('2030-01-07T11:00:00Z', '2030-01-07T12:00:00Z'), 0)).toBe(false);
  });

  it('is refused as FAILED_PRECONDITION rule padding, naming the buffer and the clashing hold', () => {
    expect(paddingRuleError(held, 15).toWire()).toEqual({
      code: 'FAILED_PRECONDITION',
      message: expect.stringContaining('15-minute cleaning buffer'),
      details: { rule: 'padding', paddingMinutes: 15, conflict: held },
    });
  });
});
