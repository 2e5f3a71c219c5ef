import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { CarrelError } from '../../src/errors.js';
import {
  bookingOpensAt,
  ceilToSlot,
  checkBookingWindow,
  fitsOpeningHours,
  floorToSlot,
  quotaPeriods,
} from '../../src/core/rules.js';
import { parseClock, validateHours, type BranchHours } from '../../src/wire/hours.js';
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

describe('clocks that skip or repeat a reading (zonedInstant and its callers)', () => {
  const SCL = 'America/Santiago';
  const LORD_HOWE = 'Australia/Lord_Howe';
  /** A wall-clock reading as if it were UTC, for comparing readings as numbers. */
  const reading = (ms: number, zone: string): number => {
    const p = intlParts(ms, zone);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  };

  // 2026-09-06 (a Sunday): Santiago's clocks jump from 00:00 to 01:00, at 04:00Z.
  it('a day whose midnight is skipped starts at its 01:00, not at 23:00 of the day before', () => {
    const start = zonedInstant(2026, 9, 6, 0, SCL);
    expect(start).toBe(t('2026-09-06T04:00:00Z'));
    expect(intlParts(start, SCL)).toMatchObject({ month: 9, day: 6, hour: 1, minute: 0 });
    expect(zonedInstant(2026, 9, 5, 24 * 60, SCL)).toBe(start); // the day before ends where it begins
    expect(localDayStart(t('2026-09-06T15:00:00Z'), SCL)).toBe(start);
    // Saturday 23:30 belongs to Saturday, a whole 24-hour day; Sunday has 23 hours.
    const saturday = localDayStart(t('2026-09-06T03:30:00Z'), SCL);
    expect(saturday).toBe(t('2026-09-05T04:00:00Z'));
    expect(localDayStart(saturday + 12 * 3600_000, SCL, 1) - saturday).toBe(24 * 3600_000);
    expect(localDayStart(start + 12 * 3600_000, SCL, 1) - start).toBe(23 * 3600_000);
  });

  it('its callers follow: quota days, weeks and opening hours put Saturday 23:00 in Saturday', () => {
    const lateSaturday = { startMs: t('2026-09-06T03:00:00Z'), endMs: t('2026-09-06T03:45:00Z') }; // 23:00-23:45 local
    const periods = quotaPeriods(lateSaturday, SCL);
    expect(periods.days).toEqual([[t('2026-09-05T04:00:00Z'), t('2026-09-06T04:00:00Z')]]);
    expect(periods.weeks).toEqual([[t('2026-08-31T04:00:00Z'), t('2026-09-07T03:00:00Z')]]);
    // Open on Sundays only, around the clock: Saturday 23:00 is not Sunday, Sunday 01:00 is.
    const sundays: BranchHours = { sun: { open: '00:00', close: '24:00' } };
    expect(fitsOpeningHours(lateSaturday.startMs, lateSaturday.endMs, SCL, sundays)).toBe(false);
    expect(fitsOpeningHours(t('2026-09-06T04:00:00Z'), t('2026-09-06T05:00:00Z'), SCL, sundays)).toBe(true);
  });

  it('a skipped reading moves forward by the gap; a repeated one is its first showing', () => {
    // New York, 2030-03-10: 02:00 → 03:00, so 02:30 is 03:30 EDT. 2030-11-03: 01:30 happens twice.
    expect(zonedInstant(2030, 3, 10, 150, NY)).toBe(t('2030-03-10T07:30:00Z'));
    expect(zonedInstant(2030, 11, 3, 90, NY)).toBe(t('2030-11-03T05:30:00Z'));
    // Lord Howe, 2026-10-04: 02:00 → 02:30 (a half-hour gap), so 02:15 is 02:45.
    expect(intlParts(zonedInstant(2026, 10, 4, 135, LORD_HOWE), LORD_HOWE)).toMatchObject({ day: 4, hour: 2, minute: 45 });
    // Santiago, 2026-04-05: 24:00 → 23:00, so Saturday 23:30 happens twice; the first is at -03.
    expect(zonedInstant(2026, 4, 4, 23 * 60 + 30, SCL)).toBe(t('2026-04-05T02:30:00Z'));
    expect(zonedInstant(2026, 4, 5, 0, SCL)).toBe(t('2026-04-05T04:00:00Z'));
  });

  /** Checks zonedInstant for the reading `wall` (a wall-clock time as if UTC) against Intl. */
  const checkReading = (zone: string, wall: number): 'exact' | 'skipped' => {
    const d = new Date(wall);
    const dayStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    const at = zonedInstant(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), (wall - dayStart) / 60_000, zone);
    const read = reading(at, zone);
    if (read === wall) {
      // The first showing: half an hour or an hour earlier the clock read something else.
      expect(reading(at - 1_800_000, zone)).not.toBe(wall);
      expect(reading(at - 3_600_000, zone)).not.toBe(wall);
      return 'exact';
    }
    // Skipped: neither offset in use around it gives this reading, and the answer is past it by the gap.
    const before = reading(at - 3 * 3_600_000, zone) - (at - 3 * 3_600_000);
    const after = reading(at + 3 * 3_600_000, zone) - (at + 3 * 3_600_000);
    for (const off of [before, after]) expect(reading(wall - off, zone)).not.toBe(wall);
    expect(read - wall).toBe(after - before);
    return 'skipped';
  };
  const zones = [SCL, LORD_HOWE, NY, 'America/St_Johns', 'Asia/Kathmandu', 'Pacific/Chatham', 'Europe/London', 'America/Havana', 'Asia/Tehran', 'UTC'];

  it('agrees with Intl for any reading in any zone: exact when it exists, else forward by the gap', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.UTC(2020, 0, 1) / 86_400_000, max: Date.UTC(2036, 0, 1) / 86_400_000 }),
        fc.integer({ min: 0, max: 1440 }),
        (zone, dayNumber, minute) => {
          checkReading(zone, dayNumber * 86_400_000 + minute * 60_000);
        },
      ),
      { seed: 90_601, numRuns: 10_000 },
    );
  });

  it('and for every minute within two hours of every offset change of 2026 in those zones', () => {
    const outcomes = { exact: 0, skipped: 0 };
    let changes = 0;
    for (const zone of zones) {
      let prevAt = Date.UTC(2026, 0, 1);
      let prevOff = reading(prevAt, zone) - prevAt;
      for (let at = prevAt + 3_600_000; at < Date.UTC(2027, 0, 1); at += 3_600_000) {
        const off = reading(at, zone) - at;
        if (off !== prevOff) {
          changes++;
          // The readings from two hours before the change (old offset) to two hours after (new).
          for (let wall = prevAt + prevOff - 2 * 3_600_000; wall <= at + off + 2 * 3_600_000; wall += 60_000) outcomes[checkReading(zone, wall)]++;
        }
        prevAt = at;
        prevOff = off;
      }
    }
    // Two changes a year in the seven zones that keep DST; 30 skipped minutes at Lord Howe, 60 elsewhere.
    expect(changes).toBe(14);
    expect(outcomes.skipped).toBe(6 * 60 + 30);
  }, 60_000);

  it('every day of 2026 in Santiago starts at a reading of that day, at 00:00 or (once) 01:00', () => {
    for (let day = Date.UTC(2026, 0, 1); day < Date.UTC(2027, 0, 1); day += 86_400_000) {
      const d = new Date(day);
      const start = zonedInstant(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), 0, SCL);
      const p = intlParts(start, SCL);
      expect([p.month, p.day]).toEqual([d.getUTCMonth() + 1, d.getUTCDate()]);
      expect(p.hour * 60 + p.minute).toBe(d.getUTCMonth() === 8 && d.getUTCDate() === 6 ? 60 : 0);
    }
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

  it('an openingHours refusal says the asked window and the hours of its days on the branch\'s clock; details stay {rule, timezone}', () => {
    const refusal = (start: string, end: string, branch = main): CarrelError => {
      try {
        checkBookingWindow({ startMs: t(start), endMs: t(end) }, NOW, rules, branch);
      } catch (err) {
        return err as CarrelError;
      }
      throw new Error('no refusal');
    };
    // 22:00 → 00:00 New York time on a machine in any zone; the server's own zone plays no part.
    const late = refusal('2030-01-08T03:00:00Z', '2030-01-08T05:00:00Z');
    expect(late.message).toBe('the branch is not open for the whole booking: it asks Mon 2030-01-07 22:00 → Tue 2030-01-08 00:00 (America/New_York); open Mon 07:00-23:00');
    expect(late.details).toEqual({ rule: 'openingHours', timezone: NY });
    // Across midnight into a closed day, both days are named.
    const overnight = refusal('2030-01-08T04:00:00Z', '2030-01-08T06:00:00Z', { timezone: NY, hours: { mon: { open: '00:00', close: '24:00' } } });
    expect(overnight.message).toMatch(/it asks Mon 2030-01-07 23:00 → Tue 2030-01-08 01:00 \(America\/New_York\); open Mon 00:00-24:00, Tue closed$/);
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

describe('when bookings open (rules.bookingOpensAt)', () => {
  const opening = { ...rules, bookingOpensAt: '08:00', maxDaysAhead: 14 };

  it('a day opens at bookingOpensAt on the branch\'s clock, maxDaysAhead days before; without it, never a fixed time', () => {
    // Monday 2030-01-21 in New York opens on Monday 2030-01-07 at 08:00 EST.
    expect(bookingOpensAt(t('2030-01-21T15:00:00Z'), NY, opening)).toBe(t('2030-01-07T13:00:00Z'));
    // Every booking that day, whatever its hour (23:30 New York is already the 22nd in UTC).
    expect(bookingOpensAt(t('2030-01-22T04:30:00Z'), NY, opening)).toBe(t('2030-01-07T13:00:00Z'));
    expect(bookingOpensAt(t('2030-01-21T15:00:00Z'), NY, rules)).toBeNull();
  });

  it('across a clock change, in the opening day\'s own offset', () => {
    // Sunday 2030-03-24 opens on Sunday 2030-03-10, the spring-forward day: 08:00 EDT (12:00Z).
    expect(bookingOpensAt(t('2030-03-24T14:00:00Z'), NY, opening)).toBe(t('2030-03-10T12:00:00Z'));
    // A day before the change opens at 08:00 EST.
    expect(bookingOpensAt(t('2030-03-23T14:00:00Z'), NY, opening)).toBe(t('2030-03-09T13:00:00Z'));
  });

  it('before the opening: bookingNotOpen with opensAt; from it on the booking passes; maxDaysAhead no longer refuses alone', () => {
    const monday = { startMs: t('2030-01-21T15:00:00Z'), endMs: t('2030-01-21T16:00:00Z') };
    const before = t('2030-01-07T12:59:00Z');
    let err: CarrelError | undefined;
    try {
      checkBookingWindow(monday, before, opening, main);
    } catch (e) {
      err = e as CarrelError;
    }
    expect(err?.details).toEqual({ rule: 'bookingNotOpen', opensAt: '2030-01-07T13:00:00.000Z' });
    expect(ruleOf(() => checkBookingWindow(monday, t('2030-01-07T13:00:00Z'), opening, main))).toBeUndefined();
    // 14 days and 2 hours ahead: open, since its day opened this morning.
    expect(ruleOf(() => checkBookingWindow(monday, t('2030-01-07T13:30:00Z'), opening, main))).toBeUndefined();
    expect(ruleOf(() => checkBookingWindow(monday, t('2030-01-07T13:30:00Z'), rules, main))).toBe('maxDaysAhead');
  });
});

describe('localParts (cached offsets)', () => {
  const zones = ['America/New_York', 'America/St_Johns', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'Pacific/Chatham', 'Europe/London', 'Asia/Tehran', 'UTC', 'America/Chicago', 'America/Los_Angeles', 'America/Santiago'];

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
