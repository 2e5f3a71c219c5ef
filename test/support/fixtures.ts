// Rows written straight into a test database: users, bookings and seats, for tests of code
// that sits beside (not on top of) the booking methods.
import type pg from 'pg';
import type { AuthUser } from '../../src/auth/tokens.js';
import type { CoreEvent } from '../../src/core/events.js';
import type { TestServer } from './server.js';

let userSeq = 0;

export async function insertUser(db: pg.Pool, name = 'Test User'): Promise<AuthUser> {
  const studentId = `t${process.pid}-${++userSeq}-${Math.random().toString(36).slice(2, 8)}`;
  const res = await db.query<{ id: number }>(
    `INSERT INTO users (student_id, name, password_hash) VALUES ($1, $2, 'not-a-real-hash') RETURNING id`,
    [studentId, name],
  );
  return { id: res.rows[0]!.id, studentId, name, role: 'student' };
}

export type BookingStatus = 'CONFIRMED' | 'CHECKED_IN' | 'COMPLETED' | 'CANCELLED' | 'NO_SHOW' | 'OFFERED';

/** A reservation row with during = hold, as the booking code would write it. */
export async function insertBooking(
  db: pg.Pool,
  b: { seatId: number; userId: number; start: string; end: string; status?: BookingStatus },
): Promise<number> {
  const res = await db.query<{ id: number }>(
    `INSERT INTO reservations (seat_id, user_id, during, hold, status)
     VALUES ($1, $2, tstzrange($3, $4, '[)'), tstzrange($3, $4, '[)'), $5) RETURNING id`,
    [b.seatId, b.userId, b.start, b.end, b.status ?? 'CONFIRMED'],
  );
  return res.rows[0]!.id;
}

export async function statusOf(db: pg.Pool, reservationId: number): Promise<string> {
  const res = await db.query<{ status: string }>('SELECT status FROM reservations WHERE id = $1', [reservationId]);
  return res.rows[0]!.status;
}

/** Seats of a seeded branch (id, branch id, label), lowest id first. */
export async function seatsOf(db: pg.Pool, branch: string): Promise<{ id: number; branchId: number; label: string }[]> {
  const res = await db.query<{ id: number; branch_id: number; label: string }>(
    'SELECT s.id, s.branch_id, s.label FROM seats s JOIN branches b ON b.id = s.branch_id WHERE b.name = $1 ORDER BY s.id',
    [branch],
  );
  return res.rows.map((r) => ({ id: r.id, branchId: r.branch_id, label: r.label }));
}

/** Collects every core event the server emits until stopped. */
export function captureEvents(t: TestServer): { events: CoreEvent[]; stop: () => void; clear: () => void } {
  const events: CoreEvent[] = [];
  const stop = t.coreEvents.on((e) => events.push(e));
  return { events, stop: () => void stop(), clear: () => void events.splice(0) };
}
