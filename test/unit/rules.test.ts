import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { CarrelError } from '../../src/errors.js';
import {
  ceilToSlot,
  checkBookingWindow,
  fitsOpeningHours,
  floorToSlot,
  parseClock,
  quotaPeriods,
  validateHours,
  type BranchHours,
} from '../../src/core/rules.js';
import { intlParts, localDayStart, localParts, localWeekStart, parseLocalDate, zonedInstant } from '../../src/core/zonedTime.js';

const rules = configSchema.parse({}).rules;
const NY = 'America/New_York';
const week = (open: string, close: string): BranchHours =>
  Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, { open, close }]));
const main = { timezone: NY, hours: week('07:00', '23:00') };
const t = (iso: string): number => Date.parse(iso);
const NOW = t('2030-01-07T15:00:00Z'); // Monday 10:00 in New York

function ruleOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof CarrelError && err.code === 'FAILED_PRECONDITION') return err.details?.rule as string;
    throw err;
  }
  return undefined;
}

describe('zoned time', () => {
  it('maps wall-clock readings in a zone to instants, across DST', () => {
    expect(zonedInstant(2030, 1, 7, 7 * 60, NY)).toBe(t('2030-01-07T12:00:00Z'));
    expect(zonedInstant(2030, 7, 8, 7 * 60, NY)).toBe(t('2030-07-08T11:00:00Z'));
    expect(zonedInstant(2030, 1, 7, 24 * 60, NY)).toBe(t('2030-01-08T05:00:00Z'));
    expect(localParts(t('2030-01-07T03:00:00Z'), NY)).toMatchObject({ year: 2030, month: 1, day: 6, hour: 22, weekday: 0 });
  });

  it('finds the local day and the Monday-based week, including the 23-hour DST day', () => {
    expect(localDayStart(t('2030-01-07T03:00:00Z'), NY)).toBe(t('2030-01-06T05:00:00Z'));
    // 2030-03-10 is the spring-forward Sunday in New York: 23 hours long.
    const day = localDayStart(t('2030-03-10T15:00:00Z'), NY);
    expect(localDayStart(day + 12 * 3600_000, NY, 1) - day).toBe(23 * 3600_000);
    expect(localWeekStart(t('2030-01-10T15:00:00Z'), NY)).toBe(t('2030-01-07T05:00:00Z'));
  });

  it('parses only real calendar dates', () => {
    expect(parseLocalDate('2030-02-28')).toEqual({ year: 2030, month: 2, day: 28 });
    expect(parseLocalDate('2030-02-30')).toBeNull();
    expect(parseLocalDate('2030-2-3')).toBeNull();
  });
});

describe('hours', () => {
  it('parses HH:MM up to 24:00', () => {
    expect(parseClock('07:30')).toBe(450);
    expect(parseClock('24:00')).toBe(1440);
    expect(parseClock('24:01')).toBeNull();
    expect(parseClock('7:30')).toBeNull();
  });

  it('validates an hours object and names the bad day', () => {
    expect(validateHours({ mon: { open: '08:00', close: '22:00' }, sun: null })).toBeNull();
    expect(validateHours({ mon: { open: '22:00', close: '08:00' } })).toMatch(/^mon/);
    expect(validateHours({ tue: { open: '8', close: '22:00' } })).toMatch(/^tue/);
    expect(validateHours({ funday: { open: '08:00', close: '09:00' } })).toMatch(/^funday/);
  });

  it('requires a booking to fit one day unless the branch is open around the clock', () => {
    expect(fitsOpeningHours(t('2030-01-07T12:00:00Z'), t('2030-01-07T16:00:00Z'), NY, main.hours)).toBe(true);
    expect(fitsOpeningHours(t('2030-01-07T11:45:00Z'), t('2030-01-07T13:00:00Z'), NY, main.hours)).toBe(false);
    expect(fitsOpeningHours(t('2030-01-08T03:00:00Z'), t('2030-01-08T04:30:00Z'), NY, main.hours)).toBe(false);
    const allDay = week('00:00', '24:00');
    expect(fitsOpeningHours(t('2030-01-08T04:00:00Z'), t('2030-01-08T07:00:00Z'), NY, allDay)).toBe(true);
    // Around the clock on Monday only: Monday 23:00 to Tuesday 01:00 does not fit.
    const mondayOnly: BranchHours = { mon: { open: '00:00', close: '24:00' } };
    expect(fitsOpeningHours(t('2030-01-08T04:00:00Z'), t('2030-01-08T06:00:00Z'), NY, mondayOnly)).toBe(false);
    expect(fitsOpeningHours(t('2030-01-08T03:00:00Z'), t('2030-01-08T05:00:00Z'), NY, mondayOnly)).toBe(true);
  });
});

describe('booking window rules', () => {
  const check = (start: string, end: string, now = NOW) => ruleOf(() => checkBookingWindow({ startMs: t(start), endMs: t(end) }, now, rules, main));

  it('accepts a slot-aligned booking inside opening hours', () => {
    expect(check('2030-01-07T16:00:00Z', '2030-01-07T17:00:00Z')).toBeUndefined();
  });

  it.each([
    ['2030-01-07T16:05:00Z', '2030-01-07T17:00:00Z', 'slotGranularity'],
    ['2030-01-07T16:00:00Z', '2030-01-07T16:15:00Z', 'minDuration'],
    ['2030-01-07T16:00:00Z', '2030-01-07T20:15:00Z', 'maxDuration'],
    ['2030-01-07T14:45:00Z', '2030-01-07T15:30:00Z', 'inThePast'],
    ['2030-01-22T16:00:00Z', '2030-01-22T17:00:00Z', 'maxDaysAhead'],
    ['2030-01-08T03:30:00Z', '2030-01-08T04:30:00Z', 'openingHours'],
  ])('%s → %s breaks %s', (start, end, rule) => {
    expect(check(start, end)).toBe(rule);
  });

  it('answers a window that ends at or before its start with INVALID_ARGUMENT, not a rule', () => {
    for (const [start, end] of [
      ['2030-01-07T16:00:00Z', '2030-01-07T16:00:00Z'],
      ['2030-01-07T17:00:00Z', '2030-01-07T16:00:00Z'],
    ]) {
      expect(() => checkBookingWindow({ startMs: t(start!), endMs: t(end!) }, NOW, rules, main)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', message: 'end must be after start' }),
      );
    }
  });

  it('allows the slot in progress, not the one before it', () => {
    const now = t('2030-01-07T15:07:00Z');
    expect(check('2030-01-07T15:00:00Z', '2030-01-07T16:00:00Z', now)).toBeUndefined();
    expect(check('2030-01-07T14:45:00Z', '2030-01-07T16:00:00Z', now)).toBe('inThePast');
  });

  it('rounds to slots', () => {
    expect(floorToSlot(t('2030-01-07T15:07:00Z'), 15)).toBe(t('2030-01-07T15:00:00Z'));
    expect(ceilToSlot(t('2030-01-07T15:07:00Z'), 15)).toBe(t('2030-01-07T15:15:00Z'));
    expect(ceilToSlot(t('2030-01-07T15:15:00Z'), 15)).toBe(t('2030-01-07T15:15:00Z'));
  });

  it('names every local day and week a booking touches for the quotas', () => {
    const overMidnight = quotaPeriods({ startMs: t('2030-01-07T04:00:00Z'), endMs: t('2030-01-07T06:00:00Z') }, NY);
    expect(overMidnight.days).toEqual([
      [t('2030-01-06T05:00:00Z'), t('2030-01-07T05:00:00Z')],
      [t('2030-01-07T05:00:00Z'), t('2030-01-08T05:00:00Z')],
    ]);
    // Sunday night into Monday crosses a week boundary too.
    expect(overMidnight.weeks.map(([s]) => s)).toEqual([t('2029-12-31T05:00:00Z'), t('2030-01-07T05:00:00Z')]);
    const plain = quotaPeriods({ startMs: t('2030-01-07T16:00:00Z'), endMs: t('2030-01-07T17:00:00Z') }, NY);
    expect(plain.days).toHaveLength(1);
    expect(plain.weeks).toEqual([[t('2030-01-07T05:00:00Z'), t('2030-01-14T05:00:00Z')]]);
  });
});

describe('localParts (cached offsets)', () => {
  const zones = ['America/New_York', 'America/St_Johns', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'Pacific/Chatham', 'Europe/London', 'Asia/Tehran', 'UTC', 'America/Chicago', 'America/Los_Angeles'];

  it('reads the same wall clock as Intl for any instant in any zone, DST changes included', () => {
    fc.assert(
      fc.property(fc.constantFrom(...zones), fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2036, 0, 1) }), (zone, ms) => {
        const s = Math.floor(ms / 1000) * 1000;
        expect(localParts(s, zone)).toEqual(intlParts(s, zone));
      }),
      { seed: 424242, numRuns: 20_000 },
    );
  });

  it('is exact on both sides of every change of 2026, in zones that change by 30 minutes or at half hours', () => {
    const offsetOf = (ms: number, zone: string): number => {
      const p = intlParts(ms, zone);
      return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - ms;
    };
    let changes = 0;
    for (const zone of ['Australia/Lord_Howe', 'America/St_Johns', 'America/New_York']) {
      let prev = offsetOf(Date.UTC(2026, 0, 1), zone);
      for (let ms = Date.UTC(2026, 0, 1); ms < Date.UTC(2027, 0, 1); ms += 15 * 60_000) {
        const off = offsetOf(ms, zone);
        if (off === prev) continue;
        changes++;
        prev = off;
        for (const probe of [ms - 1000, ms, ms + 14 * 60_000]) expect(localParts(probe, zone)).toEqual(intlParts(probe, zone));
      }
    }
    expect(changes).toBe(6);
  }, 60_000);
});
