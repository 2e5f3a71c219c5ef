// The request walk that refuses text which is not well-formed Unicode (src/rpc/wellFormed.ts).
import { describe, expect, it } from 'vitest';
import { CarrelError } from '../../src/errors.js';
import { malformedStringPath, refuseMalformedStrings } from '../../src/rpc/wellFormed.js';

const LONE_HIGH = JSON.parse('"\\ud800"') as string;
const LONE_LOW = JSON.parse('"\\udc00"') as string;

describe('malformedStringPath', () => {
  it('passes well-formed text, including astral characters written as surrogate pairs', () => {
    const request = JSON.parse('{"rpcId":"r-\\ud83d\\ude00","method":"PING","args":[{"q":"ユーザー 😀","n":[1,null,true,"x"]}]}');
    expect(malformedStringPath(request)).toBeNull();
    expect(malformedStringPath(undefined)).toBeNull();
  });

  it.each([
    ['a lone high surrogate in an argument', { rpcId: 1, method: 'reservations.create', args: [{ idempotencyKey: `k${LONE_HIGH}` }] }, 'args[0].idempotencyKey'],
    ['a lone low surrogate', { rpcId: 1, method: 'x', args: [{ idempotencyKey: LONE_LOW }] }, 'args[0].idempotencyKey'],
    ['a low surrogate before its high one', { rpcId: 1, method: 'x', args: [`${LONE_LOW}${LONE_HIGH}`] }, 'args[0]'],
    ['the rpcId', { rpcId: LONE_HIGH, method: 'PING' }, 'rpcId'],
    ['the token', { rpcId: 1, method: 'PING', token: `a.b.${LONE_HIGH}` }, 'token'],
    ['an array item deep inside', { rpcId: 1, method: 'x', args: [{ a: [1, 2, { b: ['ok', LONE_LOW] }] }] }, 'args[0].a[2].b[1]'],
    ['an envelope field no method reads', { rpcId: 1, method: 'PING', extra: LONE_HIGH }, 'extra'],
  ])('finds %s', (_name, request, path) => {
    expect(malformedStringPath(request)).toBe(`.${path}`);
    const err = (() => {
      try {
        refuseMalformedStrings(request);
      } catch (e) {
        return e;
      }
      return undefined;
    })() as CarrelError;
    expect(err).toBeInstanceOf(CarrelError);
    expect(err.toWire()).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(new RegExp(`^${path.replace(/[[\].]/g, '\\$&')}: `)), details: { path } });
  });

  it('finds a malformed key, and names it with U+FFFD so the answer itself is well-formed', () => {
    const request = { rpcId: 1, method: 'x', args: [{ [`k${LONE_HIGH}`]: 1 }] };
    const path = malformedStringPath(request)!;
    expect(path).toBe('.args[0].k\ufffd (a key)');
    let wire: ReturnType<CarrelError['toWire']> | undefined;
    try {
      refuseMalformedStrings(request);
    } catch (e) {
      wire = (e as CarrelError).toWire();
    }
    expect(wire).toMatchObject({ code: 'INVALID_ARGUMENT', details: { path: 'args[0].k\ufffd (a key)' } });
    expect((wire!.message as unknown as { isWellFormed(): boolean }).isWellFormed()).toBe(true);
  });

  it('walks as deep as the decoder lets JSON nest (limits.maxJsonDepth, at most 512)', () => {
    let nested: unknown = [LONE_HIGH];
    for (let i = 0; i < 511; i++) nested = { a: nested };
    expect(malformedStringPath({ args: [nested] })).toBe(`.args[0]${'.a'.repeat(511)}[0]`);
  });

  it('the biggest frame allowed (1 MiB) made of 48,000 strings is walked in a few milliseconds', () => {
    const args = [Array.from({ length: 48_000 }, (_, i) => `string number ${i}`)];
    const request = { rpcId: 1, method: 'PING', args };
    expect(JSON.stringify(request).length).toBeGreaterThan(0.95 * 1024 * 1024);
    expect(JSON.stringify(request).length).toBeLessThanOrEqual(1024 * 1024);
    expect(malformedStringPath(request)).toBeNull(); // warm-up
    const started = performance.now();
    for (let i = 0; i < 10; i++) expect(malformedStringPath(request)).toBeNull();
    const perWalkMs = (performance.now() - started) / 10;
    // JSON.parse of the same frame takes longer than this; the bound is loose for a busy CI machine.
    expect(perWalkMs).toBeLessThan(50);
    args[0]![47_999] = LONE_LOW;
    expect(malformedStringPath(request)).toBe('.args[0][47999]');
  });
});
