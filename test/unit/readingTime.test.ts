// A reading's `at` is read as RFC 3339 with an offset and nothing else (docs/sensors.md);
// Date.parse, which the sensor port used before, accepts all of the refused forms below.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRfc3339 } from '../../src/sensors/readingTime.js';

describe('parseRfc3339', () => {
  it.each([
    ['2030-01-07T15:00:00Z', Date.UTC(2030, 0, 7, 15)],
    ['2030-01-07t15:00:00z', Date.UTC(2030, 0, 7, 15)],
    ['2030-01-07T16:30:00+01:30', Date.UTC(2030, 0, 7, 15)],
    ['2030-01-07T10:00:00-05:00', Date.UTC(2030, 0, 7, 15)],
    ['2030-01-07T15:00:00-00:00', Date.UTC(2030, 0, 7, 15)],
    ['2030-01-07T15:00:00.5Z', Date.UTC(2030, 0, 7, 15, 0, 0, 500)],
    ['2030-01-07T15:00:00.123456789Z', Date.UTC(2030, 0, 7, 15, 0, 0, 123)],
    ['2028-02-29T00:00:00Z', Date.UTC(2028, 1, 29)],
    ['2016-12-31T23:59:60Z', Date.UTC(2017, 0, 1)],
    ['0050-06-01T00:00:00Z', Date.parse('0050-06-01T00:00:00Z')],
  ])('reads %s', (text, ms) => {
    expect(parseRfc3339(text)).toBe(ms);
  });

  it.each([
    '1', // Date.parse: 2001-01-01
    '2030', '2030-01-07', '2030-01-07T15:00Z', // RFC 3339 needs the seconds
    'Mon, 07 Jan 2030 15:00:00 GMT', // RFC 1123
    '2030-01-07T15:00:00', // no offset
    '2030-01-07 15:00:00Z', '2030-01-07T15:00:00 Z', ' 2030-01-07T15:00:00Z', '2030-01-07T15:00:00Z ',
    '2030-02-30T10:00:00Z', '2029-02-29T00:00:00Z', '2030-13-01T00:00:00Z', '2030-00-01T00:00:00Z', '2030-01-00T00:00:00Z',
    '2030-01-07T24:00:00Z', '2030-01-07T15:60:00Z', '2030-01-07T15:00:61Z',
    '2030-01-07T15:00:00+24:00', '2030-01-07T15:00:00+01:60', '2030-01-07T15:00:00+0100', '2030-01-07T15:00:00+01',
    '2030-01-07T15:00:00.Z', '2030-01-07T15:00:00.1234567890Z', '+02030-01-07T15:00:00Z', '２030-01-07T15:00:00Z',
    `2030-01-07T15:00:00.${'1'.repeat(30)}Z`,
  ])('refuses %j', (text) => {
    expect(parseRfc3339(text)).toBeUndefined();
  });

  it('agrees with toISOString for any instant from 1000 to 9999 (fixed seed)', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1000, 0, 1), max: Date.UTC(9999, 11, 31) }), fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }), (ms, offsetMin) => {
        expect(parseRfc3339(new Date(ms).toISOString())).toBe(ms);
        // The same instant written in another zone.
        const local = new Date(ms + offsetMin * 60_000).toISOString().slice(0, -1);
        const abs = Math.abs(offsetMin);
        const offset = `${offsetMin < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
        expect(parseRfc3339(local + offset)).toBe(ms);
      }),
      { seed: 20260307, numRuns: 2000 },
    );
  });
});
