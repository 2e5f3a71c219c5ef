// The report's calendar (src/reports/reportTime.ts): local days and hours as instants, across the
// days the clocks change, and the table of offsets the report's SQL uses instead of asking for the
// time zone row by row — checked against Intl.
import { describe, expect, it } from 'vitest';
import { offsetAt } from '../../src/core/zonedTime.js';
import { reportCalendar } from '../../src/reports/reportTime.js';

const allDay = Object.fromEntries(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'].map((d) => [d, { open: '00:00', close: '24:00' }]));
const H = 3600;

describe('reportCalendar', () => {
  it('a day the clocks go forward has 23 real hours: the skipped hour is a slice of no length', () => {
    const cal = reportCalendar({ year: 2030, month: 3, day: 10 }, 1, 'America/New_York', allDay);
    expect(cal.days).toEqual(['2030-03-10']);
    expect(cal.dayStarts[1]! - cal.dayStarts[0]!).toBe(23 * H);
    const lengths = cal.hourStarts.slice(1).map((s, k) => s - cal.hourStarts[k]!);
    expect(lengths).toHaveLength(24);
    expect(lengths.filter((l) => l === 0)).toHaveLength(1);
    expect(lengths[2]).toBe(0); // 02:00-03:00 does not exist that night
  });

  it('a day the clocks go back has 25: the repeated hour is one slice of two hours', () => {
    const cal = reportCalendar({ year: 2030, month: 11, day: 3 }, 1, 'America/New_York', allDay);
    expect(cal.dayStarts[1]! - cal.dayStarts[0]!).toBe(25 * H);
    const lengths = cal.hourStarts.slice(1).map((s, k) => s - cal.hourStarts[k]!);
    expect(lengths[1]).toBe(2 * H);
    expect(lengths.filter((l) => l === H)).toHaveLength(23);
  });

  it('opening hours per local day, closed days as empty windows', () => {
    const cal = reportCalendar({ year: 2030, month: 1, day: 5 }, 3, 'Europe/Berlin', { mon: { open: '08:00', close: '22:00' }, sat: { open: '10:00', close: '18:00' } });
    expect(cal.days).toEqual(['2030-01-05', '2030-01-06', '2030-01-07']); // Saturday, Sunday, Monday
    expect(new Date(cal.opens[0]! * 1000).toISOString()).toBe('2030-01-05T09:00:00.000Z');
    expect(new Date(cal.closes[0]! * 1000).toISOString()).toBe('2030-01-05T17:00:00.000Z');
    expect(cal.opens[1]).toBe(cal.closes[1]); // closed on Sunday
    expect(new Date(cal.opens[2]! * 1000).toISOString()).toBe('2030-01-07T07:00:00.000Z');
  });

  it('the offsets table gives every instant of the range its local time, as Intl does', () => {
    for (const zone of ['America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'America/St_Johns', 'Europe/London', 'UTC']) {
      const cal = reportCalendar({ year: 2030, month: 1, day: 1 }, 366, zone, allDay);
      // Every hour of the year, and a few odd minutes.
      for (let s = cal.dayStarts[0]!; s < cal.dayStarts[366]!; s += 3600 + 7 * 60) {
        const off = cal.offsets[Math.floor((s - cal.q0) / 900)]!;
        expect(off, `${zone} at ${new Date(s * 1000).toISOString()}`).toBe(offsetAt(s * 1000, zone) / 1000);
      }
      // And the local day numbers the SQL derives from it start at day 0.
      const first = cal.dayStarts[0]!;
      const localDay = Math.floor((first + cal.offsets[Math.floor((first - cal.q0) / 900)]!) / 86400) - cal.localDay0;
      expect(localDay).toBe(0);
    }
  });
});
