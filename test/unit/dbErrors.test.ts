import { describe, expect, it } from 'vitest';
import { CarrelError } from '../../src/errors.js';
import { mapDbError, withRetry } from '../../src/db/errors.js';

const pgError = (code: string, detail?: string) => Object.assign(new Error('db'), { code, detail });

describe('database error mapping', () => {
  it.each([
    ['+00', '2030-01-07 15:00:00+00', '2030-01-07 16:15:00+00', '2030-01-07T15:00:00.000Z', '2030-01-07T16:15:00.000Z'],
    ['-05', '2030-01-07 10:00:00-05', '2030-01-07 11:00:00-05', '2030-01-07T15:00:00.000Z', '2030-01-07T16:00:00.000Z'],
    ['+05:30 with fractions', '2030-01-07 20:30:00.5+05:30', '2030-01-07 21:30:00+05:30', '2030-01-07T15:00:00.500Z', '2030-01-07T16:00:00.000Z'],
  ])('turns 23P01 on the hold column into CONFLICT with the clashing interval (%s)', (_name, a, b, start, end) => {
    const detail = `Key (seat_id, hold)=(12, ["${a}","${b}")) conflicts with existing key (seat_id, hold)=(12, ["${a}","${b}")).`;
    const mapped = mapDbError(pgError('23P01', detail)) as CarrelError;
    expect(mapped.toWire()).toEqual({
      code: 'CONFLICT',
      message: 'the seat is already booked for part of that time',
      details: { conflict: { start, end } },
    });
  });

  describe('with the booking that was tried and a 15-minute cleaning buffer', () => {
    // The other booking is 10:00-11:00 (UTC), held until 11:15 by its buffer.
    const detail =
      'Key (seat_id, hold)=(12, ["2030-01-07 11:00:00+00","2030-01-07 12:15:00+00")) conflicts with existing key (seat_id, hold)=(12, ["2030-01-07 10:00:00+00","2030-01-07 11:15:00+00")).';
    const tried = (start: string, end: string, paddingMinutes = 15) =>
      (mapDbError(pgError('23P01', detail), { startMs: Date.parse(start), endMs: Date.parse(end), paddingMinutes }) as CarrelError).toWire();
    const held = { start: '2030-01-07T10:00:00.000Z', end: '2030-01-07T11:15:00.000Z' };

    it('a clash with the buffer only is FAILED_PRECONDITION rule padding with the clashing hold', () => {
      expect(tried('2030-01-07T11:00:00Z', '2030-01-07T12:00:00Z')).toEqual({
        code: 'FAILED_PRECONDITION',
        message: expect.stringContaining('15-minute cleaning buffer'),
        details: { rule: 'padding', paddingMinutes: 15, conflict: held },
      });
      // Our own buffer running into its start is the same rule.
      expect(tried('2030-01-07T09:00:00Z', '2030-01-07T10:00:00Z').details?.rule).toBe('padding');
    });

    it('an overlap of the times themselves stays CONFLICT, as does any clash when the branch has no buffer', () => {
      expect(tried('2030-01-07T10:45:00Z', '2030-01-07T11:45:00Z')).toMatchObject({ code: 'CONFLICT', details: { conflict: held } });
      expect(tried('2030-01-07T09:00:00Z', '2030-01-07T10:15:00Z').code).toBe('CONFLICT');
      expect(tried('2030-01-07T11:00:00Z', '2030-01-07T12:00:00Z', 0).code).toBe('CONFLICT');
      expect((mapDbError(pgError('23P01', detail)) as CarrelError).code).toBe('CONFLICT');
    });
  });

  it('a row for a user who is gone (23503 on a user_id key) is UNAUTHENTICATED; any other foreign key stays ours (INTERNAL)', () => {
    const fk = (constraint: string) => Object.assign(pgError('23503', 'Key (user_id)=(7) is not present in table "users".'), { constraint });
    for (const constraint of ['reservations_user_id_fkey', 'waitlist_user_id_fkey']) {
      expect((mapDbError(fk(constraint)) as CarrelError).toWire()).toEqual({
        code: 'UNAUTHENTICATED',
        message: 'the account no longer exists; log in again',
      });
    }
    for (const constraint of ['reservations_seat_id_fkey', 'reservations_waitlist_id_fkey', 'user_id_fkey_audit']) {
      const err = fk(constraint);
      expect(mapDbError(err)).toBe(err); // left for the dispatcher: INTERNAL, detail to the log only
    }
    expect(mapDbError(pgError('23503'))).not.toBeInstanceOf(CarrelError);
  });

  it('retries a deadlock and then answers CONFLICT, never the raw error', async () => {
    let calls = 0;
    const err = await withRetry(async () => {
      calls++;
      throw pgError('40P01');
    }, 3).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect(err).toBeInstanceOf(CarrelError);
    expect((err as CarrelError).code).toBe('CONFLICT');
  });

  it('returns the result once a retried deadlock clears', async () => {
    let calls = 0;
    const value = await withRetry(async () => {
      if (++calls < 2) throw pgError('40P01');
      return 'booked';
    });
    expect([value, calls]).toEqual(['booked', 2]);
  });
});
