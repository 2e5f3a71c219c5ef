// What the CLI says and reads, without a server: RPC names turned into commands, typed times in
// the branch's zone, the open window suggested after an openingHours refusal, and the seat map.
import { describe, expect, it } from 'vitest';
import { cliWords, shellWord } from '../../clients/cliIo.js';
import { openWindowNear } from '../../clients/nextSteps.js';
import { parseTimeInput, typedTime } from '../../clients/timeInput.js';
import { liveOffers, offerText, render, type BranchView, type OfferView } from '../../clients/watch.js';
import type { BranchHours } from '../../src/wire/hours.js';
import type { LiveState, SnapshotSeat } from '../../src/wire/types.js';

const NY = 'America/New_York';
const t = (iso: string): number => Date.parse(iso);
const daily = (open: string, close: string): BranchHours => Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, { open, close }]));

describe('the words of the command line', () => {
  it('names commands where the server named RPC methods, and leaves other dotted words alone', () => {
    expect(cliWords('a seat is free for that window; book it with reservations.create')).toBe('a seat is free for that window; book it with `carrel reserve`');
    expect(cliWords('reservations.mine needs a token (auth.login)')).toBe('`carrel mine` needs a token (`carrel login`)');
    expect(cliWords('admin.sensors.addKey is for admins')).toBe('`carrel admin sensor-keys add` is for admins');
    expect(cliWords('seats.availability is public; limits.maxFrameBytes is 1048576')).toBe('seats.availability is public; limits.maxFrameBytes is 1048576');
  });

  it('quotes a shell word only when it must, and quotes a quote', () => {
    expect(shellWord('G-13')).toBe('G-13');
    expect(shellWord('Main Library')).toBe("'Main Library'");
    expect(shellWord("O'Neill Library")).toBe("'O'\\''Neill Library'");
  });
});

describe('typed times in the branch\'s zone', () => {
  const mondayNoonUtc = new Date('2030-01-07T12:00:00Z'); // 07:00 in New York, 21:00 in Tokyo

  it('reads wall-clock forms in the zone given, whatever this machine\'s zone; an offset passes through', () => {
    expect(parseTimeInput('2030-01-07 09:00', mondayNoonUtc, NY)).toBe('2030-01-07T14:00:00.000Z');
    expect(parseTimeInput('2030-07-08T09:00', mondayNoonUtc, NY)).toBe('2030-07-08T13:00:00.000Z');
    expect(parseTimeInput('2030-01-07T09:00:00+01:00', mondayNoonUtc, NY)).toBe('2030-01-07T08:00:00.000Z');
    // "today" and "tomorrow" are the branch's: at 23:30 in New York it is already Tuesday in UTC.
    const lateMonday = new Date('2030-01-08T04:30:00Z');
    expect(parseTimeInput('today 9:00', lateMonday, NY)).toBe('2030-01-07T14:00:00.000Z');
    expect(parseTimeInput('tomorrow 9:00', lateMonday, NY)).toBe('2030-01-08T14:00:00.000Z');
    expect(parseTimeInput('tomorrow 9:00', lateMonday, 'Asia/Tokyo')).toBe('2030-01-09T00:00:00.000Z');
  });

  it('a time the clocks skip resolves forward; a date that does not exist is refused', () => {
    // New York skips 02:00-03:00 on 2030-03-10.
    expect(parseTimeInput('2030-03-10 02:30', mondayNoonUtc, NY)).toBe('2030-03-10T07:30:00.000Z');
    expect(() => parseTimeInput('2030-02-30 09:00', mondayNoonUtc, NY)).toThrow('is not a real time');
    expect(() => parseTimeInput('2030-01-07 24:30', mondayNoonUtc, NY)).toThrow('is not a real time');
  });

  it('typedTime writes back what parseTimeInput reads', () => {
    for (const iso of ['2030-01-07T14:00:00.000Z', '2030-07-08T13:15:00.000Z']) expect(parseTimeInput(typedTime(iso, NY), mondayNoonUtc, NY)).toBe(iso);
  });
});

describe('the open window suggested after an openingHours refusal', () => {
  const now = t('2030-01-07T12:00:00Z'); // Monday 07:00 in New York

  it('before opening: the same length from the opening; past closing: the same length up to the closing', () => {
    expect(openWindowNear(t('2030-01-08T10:00:00Z'), t('2030-01-08T12:00:00Z'), now, NY, daily('07:00', '23:00'))).toEqual([t('2030-01-08T12:00:00Z'), t('2030-01-08T14:00:00Z')]);
    expect(openWindowNear(t('2030-01-08T03:00:00Z'), t('2030-01-08T05:00:00Z'), now, NY, daily('07:00', '23:00'))).toEqual([t('2030-01-08T02:00:00Z'), t('2030-01-08T04:00:00Z')]);
  });

  it('a closed day moves to the next open one; nothing in the past; nothing when the branch never opens', () => {
    const weekdays: BranchHours = { mon: { open: '08:00', close: '22:00' }, tue: { open: '08:00', close: '22:00' }, wed: { open: '08:00', close: '22:00' }, thu: { open: '08:00', close: '22:00' }, fri: { open: '08:00', close: '22:00' } };
    // Saturday 2030-01-12 10:00 New York → Monday 08:00.
    expect(openWindowNear(t('2030-01-12T15:00:00Z'), t('2030-01-12T16:00:00Z'), now, NY, weekdays)).toEqual([t('2030-01-14T13:00:00Z'), t('2030-01-14T14:00:00Z')]);
    // Monday 06:00-07:00 asked at 07:00: today's opening (08:00) still lies ahead; it is chosen.
    expect(openWindowNear(t('2030-01-07T11:00:00Z'), t('2030-01-07T12:00:00Z'), now, NY, weekdays)).toEqual([t('2030-01-07T13:00:00Z'), t('2030-01-07T14:00:00Z')]);
    expect(openWindowNear(t('2030-01-07T16:00:00Z'), t('2030-01-07T17:00:00Z'), now, NY, {})).toBeUndefined();
  });
});

describe('the seat map', () => {
  const seat = (seatId: number, label: string, state: LiveState, flags: SnapshotSeat['flags'] = {}): SnapshotSeat => ({ seatId, area: 'Group Study', label, state, flags });
  const branch: BranchView = {
    id: 1,
    name: 'Main Library',
    seq: 9,
    seats: new Map([
      [1, seat(1, 'G-01', 'free')],
      [2, seat(2, 'G-02', 'occupied', { sensorOffline: true })],
      [3, seat(3, 'G-03', 'reserved', { sensorOffline: true })],
    ]),
  };
  const view = { columns: 100, labels: false, offers: [] as OfferView[], zoneOf: () => NY };
  const strip = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

  it('a seat whose sensor is offline keeps its last state\'s glyph, on grey; the header says so', () => {
    const text = render([branch], 'live', '', view);
    expect(text).toContain('\x1b[31;100m■\x1b[0m');
    expect(text).toContain('\x1b[33;100mr\x1b[0m');
    expect(strip(text)).toMatch(/^ {2}Group Study {2}·■r$/m);
    expect(strip(text)).toContain('sensors offline 2 (last known state, on grey)');
  });

  it('with labels, each seat is its label in its state\'s colour, wrapped to the terminal', () => {
    const text = strip(render([branch], 'live', '', { ...view, labels: true }));
    expect(text).toMatch(/^ {2}Group Study {2}G-01 G-02 G-03$/m);
    expect(text).toContain('l: glyphs');
    const narrow = strip(render([branch], 'live', '', { ...view, labels: true, columns: 26 }));
    expect(narrow).toMatch(/^ {2}Group Study {2}G-01 G-02\n {15}G-03$/m);
  });

  it('an offer is listed with its entry id, seat label, claim-by time in the branch\'s zone and the command; a lapsed one is dropped', () => {
    const offer: OfferView = { waitlistId: 7, reservationId: 88, seatId: 2, branchId: 1, start: '2030-01-07T15:00:00Z', end: '2030-01-07T16:00:00Z', expiresAt: '2030-01-07T14:52:00Z', lapsesAtMs: 2_000 };
    const text = strip(render([branch], 'live', 'last thing', { ...view, offers: [offer] }));
    expect(text).toContain('your offers (claim before they lapse):\n  offer on waitlist entry 7: seat G-02 (Main Library), 2030-01-07 10:00 → 11:00 EST; claim by 09:52 EST: carrel waitlist claim 7\n');
    expect(text).toMatch(/last: last thing\n$/);
    expect(offerText(offer, 'seat 2', undefined)).toContain('carrel waitlist claim 7');
    const offers = new Map([[7, offer]]);
    expect(liveOffers(offers, 1_999)).toHaveLength(1);
    expect(liveOffers(offers, 2_000)).toEqual([]);
    expect(offers.size).toBe(0);
  });
});
