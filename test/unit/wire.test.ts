// The wire vocabulary (src/wire, docs/protocol.md): one time for every method, one way to name a
// branch, the subscribe request's arguments, and one encoder for the error frames of the three
// ports. Each is checked on the inputs a person or an attacker would try, not only the good ones.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../../src/codec/index.js';
import { encodeErrorFrame } from '../../src/net/errorFrame.js';
import { methodArgs, parseInstant, subscribeArgs } from '../../src/wire/args.js';
import { findBranch, parseBranchRef } from '../../src/wire/branchRef.js';
import { ErrorCode, SLOW_CONSUMER } from '../../src/wire/errors.js';

/** Whether the method's schema takes `time` as a start (with a fixed, valid end). */
function takesStart(method: 'reservations.create' | 'waitlist.join', time: unknown): boolean {
  return methodArgs[method].safeParse({ seatId: 1, start: time, end: '2031-01-01T00:00:00Z' }).success;
}

const decode = (frame: Buffer): Record<string, unknown> => {
  const d = new FrameDecoder({ maxFrameBytes: 1 << 20, maxDepth: 32 });
  d.push(frame);
  const m = d.next();
  if (m?.kind !== 'message') throw new Error('not one frame');
  return m.value;
};

describe('a time argument', () => {
  // What a person types, what a careless client sends, and what an attacker tries.
  const TIMES: Array<[unknown, boolean, string]> = [
    ['2030-01-07T10:00:00Z', true, 'seconds, Z'],
    ['2030-01-07T10:00Z', true, 'no seconds (waitlist.join used to refuse this)'],
    ['2030-01-07T10:00:00.5+01:00', true, 'a fraction and an offset'],
    ['2030-01-07T10:00:00.123456789-05:30', true, 'nine fraction digits'],
    ['2030-01-07T10:00:00.1234567891Z', false, 'ten fraction digits'],
    ['2030-01-07T10:00:00-00:00', true, 'minus zero offset'],
    ['2028-02-29T10:00:00Z', true, 'a leap day'],
    ['2030-02-29T10:00:00Z', false, 'no leap day that year (was read as March 1)'],
    ['2030-02-30T10:00:00Z', false, 'February 30 (was read as March 2)'],
    ['2030-04-31T10:00:00Z', false, 'April 31 (was read as May 1)'],
    ['2100-02-29T10:00:00Z', false, 'a century without a leap day'],
    ['2000-02-29T10:00:00Z', true, 'a century with one'],
    ['2030-01-07T24:00:00Z', false, 'hour 24 (was read as the next midnight)'],
    ['2030-01-07T23:59:59Z', true, 'the last second of a day'],
    ['2030-01-07T10:60:00Z', false, 'minute 60'],
    ['2030-01-07T10:00:60Z', false, 'second 60'],
    ['2030-13-07T10:00:00Z', false, 'month 13'],
    ['2030-00-07T10:00:00Z', false, 'month 0'],
    ['2030-01-00T10:00:00Z', false, 'day 0'],
    ['2030-01-07T10:00:00+24:00', false, 'an offset of 24 hours'],
    ['2030-01-07T10:00:00+0100', false, 'an offset without a colon'],
    ['2030-01-07T10:00:00', false, 'no offset'],
    ['2030-01-07 10:00:00Z', false, 'a space for T'],
    ['2030-01-07t10:00:00z', false, 'lower-case t and z'],
    ['2030-1-7T10:00:00Z', false, 'unpadded month and day'],
    ['+02030-01-07T10:00:00Z', false, 'an expanded year'],
    [' 2030-01-07T10:00:00Z', false, 'a leading space'],
    ['2030-01-07T10:00:00Z\n', false, 'a trailing newline'],
    ['２０３０-01-07T10:00:00Z', false, 'full-width digits'],
    ['', false, 'empty'],
    ['x'.repeat(1 << 20), false, 'a megabyte of text'],
    [`2030-01-07T10:00:00.${'1'.repeat(40)}Z`, false, 'over 40 characters'],
    [1894010400000, false, 'an epoch number'],
    [null, false, 'null'],
    [{ toString: '2030-01-07T10:00:00Z' }, false, 'an object'],
    [['2030-01-07T10:00:00Z'], false, 'an array'],
  ];

  it.each(TIMES)('%#: %s is accepted (%s) by reservations.create and waitlist.join alike', (time, accepted, _why) => {
    expect(takesStart('reservations.create', time), 'reservations.create').toBe(accepted);
    expect(takesStart('waitlist.join', time), 'waitlist.join').toBe(accepted);
  });

  it('reads an accepted time as the instant it names, to the millisecond', () => {
    expect(parseInstant('2030-01-07T10:00+01:00')).toBe(Date.UTC(2030, 0, 7, 9));
    expect(parseInstant('2030-01-07T10:00:00.123456789Z')).toBe(Date.UTC(2030, 0, 7, 10, 0, 0, 123));
    expect(parseInstant('2028-02-29T23:30:00-01:00')).toBe(Date.UTC(2028, 2, 1, 0, 30));
  });

  it('is the same rule for both methods on any text at all, and never throws', () => {
    const timeLike = fc.tuple(
      fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 14 }), fc.integer({ min: 0, max: 33 }),
      fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 }), fc.option(fc.integer({ min: 0, max: 61 })),
      fc.constantFrom('Z', '+01:00', '-23:59', '+24:00', '', 'z'),
    ).map(([y, mo, d, h, mi, s, off]) => {
      const p = (n: number, w = 2) => String(n).padStart(w, '0');
      return `${p(y, 4)}-${p(mo)}-${p(d)}T${p(h)}:${p(mi)}${s === null ? '' : `:${p(s)}`}${off}`;
    });
    fc.assert(
      fc.property(fc.oneof(timeLike, fc.string(), fc.anything()), (time) => {
        expect(takesStart('waitlist.join', time)).toBe(takesStart('reservations.create', time));
        if (typeof time === 'string' && takesStart('reservations.create', time)) expect(Number.isFinite(parseInstant(time))).toBe(true);
      }),
      { seed: 424242, numRuns: 3000 },
    );
  });
});

describe('a branch reference', () => {
  it('reads a number or a string of digits as an id, anything else as a name', () => {
    expect(parseBranchRef(2)).toEqual({ id: 2 });
    expect(parseBranchRef('2')).toEqual({ id: 2 });
    expect(parseBranchRef('002')).toEqual({ id: 2 });
    expect(parseBranchRef('2147483647')).toEqual({ id: 2147483647 });
    expect(parseBranchRef('Main Library')).toEqual({ name: 'Main Library' });
    expect(parseBranchRef(' 2')).toEqual({ name: ' 2' });
    expect(parseBranchRef('2.0')).toEqual({ name: '2.0' });
    expect(parseBranchRef('-2')).toEqual({ name: '-2' });
    expect(parseBranchRef('*')).toEqual({ name: '*' });
  });

  it('refuses what names nothing at all, with a reason', () => {
    for (const bad of [0, -1, 1.5, 2 ** 31, 2 ** 53, Number.NaN, '0', '2147483648', '9'.repeat(400), '', 'x'.repeat(201), null, true, [], {}]) {
      expect(typeof parseBranchRef(bad), JSON.stringify(bad)).toBe('string');
    }
    expect(parseBranchRef('x'.repeat(200))).toEqual({ name: 'x'.repeat(200) });
  });

  it('finds a name in any case; the exact spelling first, else the lowest id', () => {
    const branches = [
      { id: 1, name: 'Main Library' },
      { id: 2, name: 'Law' },
      { id: 3, name: 'LAW' },
      { id: 4, name: 'law' },
      { id: 5, name: '42' },
    ];
    const find = (v: string | number) => {
      const ref = parseBranchRef(v);
      return typeof ref === 'string' ? ref : findBranch(ref, branches)?.id;
    };
    expect(find('main library')).toBe(1);
    expect(find('MAIN LIBRARY')).toBe(1);
    expect(find('Main Library')).toBe(1);
    expect(find('law')).toBe(4);
    expect(find('LAW')).toBe(3);
    expect(find('Law')).toBe(2);
    expect(find('lAw')).toBe(2);
    // Digits are an id, even where a branch is called that.
    expect(find('42')).toBeUndefined();
    expect(find(5)).toBe(5);
    expect(find('5')).toBe(5);
    expect(find('Main Library ')).toBeUndefined();
  });

  it('is read by every method that takes one the same way (seats.list, waitlist.join, admin.*)', () => {
    const take = (value: unknown) => [
      methodArgs['seats.list'].safeParse({ branch: value }),
      methodArgs['waitlist.join'].safeParse({ branch: value, start: '2031-01-01T10:00Z', end: '2031-01-01T11:00Z' }),
      methodArgs['admin.sensors.addKey'].safeParse({ name: 'k1', branch: value }),
      methodArgs['admin.sensors.listKeys'].safeParse({ branch: value }),
      methodArgs['admin.branches.setHours'].safeParse({ branch: value, hours: {} }),
    ];
    for (const value of [2, '2', '002', 'Main Library', 'main library', '0', 0, '99999999999', '', 'x'.repeat(201), true, null, { id: 2 }]) {
      const expected = parseBranchRef(value);
      for (const r of take(value)) {
        expect(r.success, JSON.stringify(value)).toBe(typeof expected !== 'string');
        if (r.success) expect((r.data as { branch: unknown }).branch).toEqual(expected);
      }
    }
  });
});

describe('the subscribe request', () => {
  it('reads branch as a branch reference, or "*"', () => {
    expect(subscribeArgs.parse({ type: 'subscribe', branch: '*' }).branch).toBe('*');
    expect(subscribeArgs.parse({ type: 'subscribe', branch: '7' }).branch).toEqual({ id: 7 });
    expect(subscribeArgs.parse({ type: 'subscribe', branch: 'main library' }).branch).toEqual({ name: 'main library' });
    for (const bad of ['', '0', 0, 2 ** 53, 'b'.repeat(201), null, [], {}]) expect(subscribeArgs.safeParse({ type: 'subscribe', branch: bad }).success, JSON.stringify(bad)).toBe(false);
  });

  it('takes null as absent, and reads since for "*" as pairs, so no key reaches an object prototype', () => {
    const r = subscribeArgs.parse(JSON.parse('{"type":"subscribe","branch":"*","token":null,"epoch":null,"since":{"__proto__":4,"constructor":5,"1":6}}'));
    expect(r.token).toBeUndefined();
    expect(r.epoch).toBeUndefined();
    expect(r.since).toEqual([['1', 6], ['__proto__', 4], ['constructor', 5]]);
    expect(subscribeArgs.parse({ type: 'subscribe', branch: 2, since: 41 }).since).toBe(41);
  });

  it('refuses a since too large, negative, fractional or of the wrong shape', () => {
    const since = (v: unknown) => subscribeArgs.safeParse({ type: 'subscribe', branch: '*', since: v });
    expect(since(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [String(i + 1), 0]))).success).toBe(true);
    expect(since(Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [String(i + 1), 0]))).success).toBe(false);
    for (const bad of [-1, 1.5, 2 ** 53, 'x', [], [1], { a: -1 }, { a: '1' }, { a: null }, true]) expect(since(bad).success, JSON.stringify(bad)).toBe(false);
  });
});

describe('the error frame of every port', () => {
  it('is a reply on the RPC port, carrying the request it answers', () => {
    const wire = { code: ErrorCode.CONFLICT, message: 'taken', details: { conflict: { start: 'a', end: 'b' } } };
    expect(decode(encodeErrorFrame('rpc', wire, 7))).toEqual({ rpcId: 7, result: null, error: wire });
    expect(decode(encodeErrorFrame('rpc', { code: ErrorCode.BAD_FRAME, message: 'x' }, null))).toEqual({ rpcId: null, result: null, error: { code: 'BAD_FRAME', message: 'x' } });
  });

  it('is a frame of its own on the sensor and subscriber ports, details beside the code, ref on the sensor port', () => {
    const refused = { code: ErrorCode.RESOURCE_EXHAUSTED, message: 'later', details: { retryAfterMs: 1500 } };
    expect(decode(encodeErrorFrame('sensor', refused))).toEqual({ type: 'error', code: 'RESOURCE_EXHAUSTED', message: 'later', retryAfterMs: 1500 });
    expect(decode(encodeErrorFrame('sensor', { code: ErrorCode.INVALID_ARGUMENT, message: 'no' }, 'frame-17'))).toEqual({ type: 'error', code: 'INVALID_ARGUMENT', message: 'no', ref: 'frame-17' });
    expect(decode(encodeErrorFrame('pubsub', { code: SLOW_CONSUMER, message: 'behind' }))).toEqual({ type: 'error', code: 'SLOW_CONSUMER', message: 'behind' });
  });

  it('never lets a detail overwrite the type, code, message or ref', () => {
    const sly = { code: ErrorCode.NOT_FOUND, message: 'real', details: { type: 'ack', code: 'OK', message: 'fake', ref: 9, extra: 1 } };
    expect(decode(encodeErrorFrame('sensor', sly, 3))).toEqual({ type: 'error', code: 'NOT_FOUND', message: 'real', ref: 3, extra: 1 });
  });
});
