import { describe, expect, it } from 'vitest';
import { CarrelError } from '../../src/errors.js';
import { DbConflict, mapDbError } from '../../src/db/errors.js';

const pgError = (code: string, detail?: string) => Object.assign(new Error('db'), { code, detail });

describe('database error mapping', () => {
  it.each([
    ['+00', '2030-01-07 15:00:00+00', '2030-01-07 16:15:00+00', '2030-01-07T15:00:00.000Z', '2030-01-07T16:15:00.000Z'],
    ['-05', '2030-01-07 10:00:00-05', '2030-01-07 11:00:00-05', '2030-01-07T15:00:00.000Z', '2030-01-07T16:00:00.000Z'],
    ['+05:30 with fractions', '2030-01-07 20:30:00.5+05:30', '2030-01-07 21:30:00+05:30', '2030-01-07T15:00:00.500Z', '2030-01-07T16:00:00.000Z'],
  ])('turns 23P01 on the hold column into an overlap CONFLICT with the clashing interval (%s)', (_name, a, b, start, end) => {
    const detail = `Key (seat_id, hold)=(12, ["${a}","${b}")) conflicts with existing key (seat_id, hold)=(12, ["${a}","${b}")).`;
    const mapped = mapDbError(pgError('23P01', detail)) as DbConflict;
    expect(mapped).toBeInstanceOf(DbConflict);
    expect([mapped.reason, mapped.clash]).toEqual(['overlap', { start, end }]);
    expect(mapped.toWire()).toEqual({
      code: 'CONFLICT',
      message: 'the seat is already booked for part of that time',
      details: { conflict: { start, end } },
    });
  });

  it('a 23P01 whose detail names no interval is still an overlap, without one', () => {
    const mapped = mapDbError(pgError('23P01', 'something else')) as DbConflict;
    expect([mapped.reason, mapped.clash, mapped.toWire().details]).toEqual(['overlap', undefined, undefined]);
  });

  it('says which conflict it was: a unique key, or contention the retries did not clear', () => {
    expect(mapDbError(pgError('23505'))).toMatchObject({ code: 'CONFLICT', reason: 'duplicate' });
    expect(mapDbError(pgError('40P01'))).toMatchObject({ code: 'CONFLICT', reason: 'contention' });
    expect(mapDbError(pgError('40001'))).toMatchObject({ code: 'CONFLICT', reason: 'contention' });
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
});
