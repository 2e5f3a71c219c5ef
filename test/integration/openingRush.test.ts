// The opening rush (docs/rules.md "Booking any free seat", docs/fairness.md "The opening rush"):
// best-available bookings, one seat at a time, one booking in flight per user, the known-full
// fast refusal, and a smaller rush whose outcome is checked exactly in SQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RpcClient, RpcReply } from '../../clients/rpcClient.js';
import { FakeClock } from '../../src/core/clock.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { MONDAY_10_NY, connect, errorOf, iso, makeUsers, seatIdOf, type TestUser } from '../support/core.js';

const T0 = MONDAY_10_NY;
const ALL_DAY = JSON.stringify(Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, { open: '00:00', close: '24:00' }])));

interface Reservation {
  id: number;
  seatId: number;
  userId: number;
  start: string;
  end: string;
  status: string;
}

/** A branch open around the clock in UTC with `n` seats: areas of ten, labels in order, power on even seats. */
async function addBranch(t: TestServer, name: string, n: number): Promise<{ id: number; seats: Array<{ id: number; area: string; label: string }> }> {
  const b = await t.db.pool.query<{ id: number }>(`INSERT INTO branches (name, timezone, hours) VALUES ($1, 'UTC', $2) RETURNING id`, [name, ALL_DAY]);
  const id = b.rows[0]!.id;
  // Inserted in reverse, so ids run against the stable order (area, label): the walk's order is the labels'.
  const seats = await t.db.pool.query<{ id: number; area: string; label: string }>(
    `INSERT INTO seats (branch_id, area, label, has_power, has_monitor)
     SELECT $1, 'Area ' || chr(65 + i / 10), 'S-' || lpad(i::text, 3, '0'), i % 2 = 0, false
     FROM generate_series($2 - 1, 0, -1) i
     RETURNING id, area, label`,
    [id, n],
  );
  return { id, seats: seats.rows.sort((x, y) => (x.area + x.label < y.area + y.label ? -1 : 1)) };
}

const codes = (replies: RpcReply[]) => {
  const out: Record<string, number> = {};
  for (const r of replies) {
    const k = r.error ? `${r.error.code}${r.error.details?.reason ? `:${String(r.error.details.reason)}` : r.error.details?.rule ? `:${String(r.error.details.rule)}` : ''}` : 'OK';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
};

/** No two active holds of one seat overlap; no user holds two overlapping bookings. */
async function overlaps(t: TestServer): Promise<{ seats: number; users: number }> {
  const seat = await t.db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM reservations a JOIN reservations b ON a.seat_id = b.seat_id AND a.id < b.id AND a.hold && b.hold
      WHERE a.status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED') AND b.status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED')`,
  );
  const user = await t.db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM reservations a JOIN reservations b ON a.user_id = b.user_id AND a.id < b.id AND a.during && b.during
      WHERE a.status IN ('CONFIRMED', 'CHECKED_IN') AND b.status IN ('CONFIRMED', 'CHECKED_IN')`,
  );
  return { seats: seat.rows[0]!.n, users: user.rows[0]!.n };
}

describe('best-available booking', () => {
  const clock = new FakeClock(Date.parse(T0));
  let t: TestServer;
  let hall: Awaited<ReturnType<typeof addBranch>>;
  const clients: RpcClient[] = [];
  const as = async (u: TestUser) => {
    const c = await connect(t, u);
    clients.push(c);
    return c;
  };
  const one = async (prefix: string) => (await makeUsers(t, 1, prefix))[0]!;

  beforeAll(async () => {
    // Memories kept ten minutes of the fake clock and five-minute slots, so that a test can move
    // the clock past a slot and still meet them.
    t = await startTestServer({ rateLimit: { enabled: false }, booking: { knownFullMs: 600_000 }, rules: { slotMinutes: 5 } }, { clock });
    hall = await addBranch(t, 'Best Hall', 30);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await t.close();
  });

  it('books the first free seat in the stable order (area, label), and the reply names it', async () => {
    const window = { start: iso(T0, 60), end: iso(T0, 120) };
    const first = await (await as(await one('best-a'))).call<Reservation>('reservations.create', { branch: 'Best Hall', ...window });
    expect(first).toMatchObject({ seatId: hall.seats[0]!.id, start: window.start, end: window.end, status: 'CONFIRMED' });
    // By name in another case, or by id: the same branch; the next seat in the order.
    const second = await (await as(await one('best-b'))).call<Reservation>('reservations.create', { branch: 'best hall', ...window });
    expect(second.seatId).toBe(hall.seats[1]!.id);
    const third = await (await as(await one('best-c'))).call<Reservation>('reservations.create', { branch: hall.id, ...window });
    expect(third.seatId).toBe(hall.seats[2]!.id);
    // A seat freed before the others comes first again.
    await (await as(await one('best-d'))).call('reservations.create', { branch: 'Best Hall', ...window });
    const owner = clients[0]!;
    await owner.call('reservations.cancel', { id: first.id });
    const again = await (await as(await one('best-e'))).call<Reservation>('reservations.create', { branch: 'Best Hall', ...window });
    expect(again.seatId).toBe(hall.seats[0]!.id);
  });

  it('keeps to the filters: area, power; none that matches is CONFLICT noSeatFree', async () => {
    const window = { start: iso(T0, 180), end: iso(T0, 240) };
    const powered = await (await as(await one('flt-a'))).call<Reservation>('reservations.create', { branch: 'Best Hall', hasPower: false, ...window });
    expect(hall.seats.find((s) => s.id === powered.seatId)).toMatchObject({ label: 'S-001' });
    const inB = await (await as(await one('flt-b'))).call<Reservation>('reservations.create', { branch: 'Best Hall', area: 'Area B', hasPower: true, ...window });
    expect(hall.seats.find((s) => s.id === inB.seatId)).toMatchObject({ area: 'Area B', label: 'S-010' });
    const none = await errorOf((await as(await one('flt-c'))).call('reservations.create', { branch: 'Best Hall', area: 'No Such Area', ...window }));
    expect([none.code, none.details]).toEqual(['CONFLICT', { reason: 'noSeatFree' }]);
    const monitor = await errorOf((await as(await one('flt-d'))).call('reservations.create', { branch: 'Best Hall', hasMonitor: true, ...window }));
    expect(monitor.details).toEqual({ reason: 'noSeatFree' });
  });

  it('near: the closest free label in the near seat\'s area first, then the other areas in order', async () => {
    const window = { start: iso(T0, 300), end: iso(T0, 360) };
    const near = hall.seats.find((s) => s.label === 'S-015')!;
    const got: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await (await as(await one(`near-${i}`))).call<Reservation>('reservations.create', { branch: 'Best Hall', near: near.id, ...window });
      got.push(hall.seats.find((s) => s.id === r.seatId)!.label);
    }
    // Area B is S-010..S-019: S-015 itself, then by distance (earlier label first on a tie), then Area A from its start.
    expect(got).toEqual(['S-015', 'S-014', 'S-016', 'S-013', 'S-017', 'S-012', 'S-018', 'S-011', 'S-019', 'S-010', 'S-000', 'S-001']);
  });

  it('refuses what is not a best-available booking: both or neither of seatId and branch, filters with a seat, a near seat of another branch, huge filters', async () => {
    const c = await as(await one('bad'));
    const window = { start: iso(T0, 60), end: iso(T0, 120) };
    const q01 = await seatIdOf(t, 'Q-01');
    for (const args of [
      { ...window },
      { seatId: q01, branch: 'Best Hall', ...window },
      { seatId: q01, hasPower: true, ...window },
      { seatId: q01, near: q01, ...window },
      { branch: 'Best Hall', area: 'x'.repeat(129), ...window },
      { branch: 'Best Hall', area: 'x'.repeat(100_000), ...window },
      { branch: 'Best Hall', near: 2 ** 31, ...window },
      { branch: 'Best Hall', near: -1, ...window },
      { branch: 'Best Hall', hasPower: 'yes', ...window },
      { branch: 'x'.repeat(201), ...window },
      { branch: 'Best Hall', seats: [1, 2, 3], ...window },
    ]) {
      expect((await errorOf(c.call('reservations.create', args))).code, JSON.stringify(args).slice(0, 80)).toBe('INVALID_ARGUMENT');
    }
    // A near seat that is not the branch's, or no seat at all.
    for (const near of [q01, 2 ** 31 - 1]) {
      const err = await errorOf(c.call('reservations.create', { branch: 'Best Hall', near, ...window }));
      expect([err.code, err.details]).toEqual(['INVALID_ARGUMENT', { field: 'near' }]);
    }
    expect((await errorOf(c.call('reservations.create', { branch: 'No Such Branch', ...window }))).code).toBe('NOT_FOUND');
    // Nothing was booked by any of it, and the server still answers.
    expect(await c.call('reservations.mine')).toEqual({ reservations: [], nextCursor: null });
  });

  it('one seat at a time: a second booking overlapping your own is refused, naming it; back to back is fine', async () => {
    const u = await one('solo');
    const c = await as(u);
    const mine = await c.call<Reservation>('reservations.create', { branch: 'Best Hall', start: iso(T0, 420), end: iso(T0, 480) });
    const err = await errorOf(c.call('reservations.create', { seatId: await seatIdOf(t, 'Q-05'), start: iso(T0, 450), end: iso(T0, 510) }));
    expect([err.code, err.details]).toEqual(['FAILED_PRECONDITION', { rule: 'overlapsOwnBooking', reservationId: mine.id }]);
    const alsoBest = await errorOf(c.call('reservations.create', { branch: 'Best Hall', start: iso(T0, 420), end: iso(T0, 480) }));
    expect(alsoBest.details).toMatchObject({ rule: 'overlapsOwnBooking' });
    await expect(c.call('reservations.create', { branch: 'Best Hall', start: iso(T0, 480), end: iso(T0, 540) })).resolves.toMatchObject({ status: 'CONFIRMED' });
    // Once cancelled, it is no longer in the way.
    await c.call('reservations.cancel', { id: mine.id });
    await expect(c.call('reservations.create', { seatId: await seatIdOf(t, 'Q-05'), start: iso(T0, 420), end: iso(T0, 480) })).resolves.toMatchObject({ status: 'CONFIRMED' });
  });

  it('one seat at a time holds for a waitlist claim too: the offer stays to claim once the overlap is gone', async () => {
    const u = await one('solo-claim');
    const c = await as(u);
    const held = await c.call<Reservation>('reservations.create', { seatId: await seatIdOf(t, 'Q-06'), start: iso(T0, 600), end: iso(T0, 660) });
    const seat = await seatIdOf(t, 'Q-07');
    const w = await t.db.pool.query<{ id: number }>(
      `INSERT INTO waitlist (user_id, seat_id, during, status) VALUES ($1, $2, tstzrange($3, $4), 'OFFERED') RETURNING id`,
      [u.id, seat, iso(T0, 630), iso(T0, 690)],
    );
    await t.db.pool.query(
      `INSERT INTO reservations (seat_id, user_id, during, hold, status, waitlist_id, offer_expires_at)
       VALUES ($1, $2, tstzrange($3, $4), tstzrange($3, $4), 'OFFERED', $5, $6)`,
      [seat, u.id, iso(T0, 630), iso(T0, 690), w.rows[0]!.id, iso(T0, 10)],
    );
    const refused = await errorOf(c.call('waitlist.claim', { id: w.rows[0]!.id }));
    expect([refused.code, refused.details?.rule, refused.details?.reservationId]).toEqual(['FAILED_PRECONDITION', 'overlapsOwnBooking', held.id]);
    await c.call('reservations.cancel', { id: held.id });
    await expect(c.call('waitlist.claim', { id: w.rows[0]!.id })).resolves.toMatchObject({ status: 'CONFIRMED', seatId: seat });
  });

  it('an answer from memory keeps the order of the rules: once the window has started to pass, the same create is inThePast', async () => {
    const u = await one('memory-order');
    const c = await as(u);
    const window = { branch: 'Best Hall', start: T0, end: iso(T0, 60) };
    const mine = await c.call<Reservation>('reservations.create', window);
    const before = t.reservations.bookingStats();
    expect((await errorOf(c.call('reservations.create', window))).details).toEqual({ rule: 'overlapsOwnBooking', reservationId: mine.id });
    expect(t.reservations.bookingStats().knownOwn - before.knownOwn).toBe(1);
    clock.advance(6 * 60_000);
    try {
      expect((await errorOf(c.call('reservations.create', window))).details).toMatchObject({ rule: 'inThePast' });
    } finally {
      clock.set(Date.parse(T0));
    }
  });

  it('a user pipelining 100 creates on 20 connections has one in flight at a time, the rest wait behind it, and one seat comes of it', async () => {
    const bot = await one('bot');
    const conns = await Promise.all(Array.from({ length: 20 }, () => as(bot)));
    const window = { start: iso(T0, 720), end: iso(T0, 780) };
    const before = t.reservations.bookingStats();
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => conns[i % 20]!.request('reservations.create', [{ branch: 'Best Hall', ...window }], bot.token)),
    );
    // No refusal for load: each waited its turn, and then the one before had booked the window.
    expect(codes(replies)).toEqual({ OK: 1, 'FAILED_PRECONDITION:overlapsOwnBooking': 99 });
    const after = t.reservations.bookingStats();
    // One booking reached the database; the others were answered from what this instance booked.
    expect(after.sent - before.sent).toBe(1);
    expect(after.knownOwn - before.knownOwn).toBe(99);
    // Each waiting request is handed its turn once (no herd of wake-ups per answer), and waits at
    // most once: those read after the booking was made did not wait at all.
    expect(after.waitedBehind - before.waitedBehind).toBeLessThanOrEqual(99);
    const held = await t.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM reservations WHERE user_id = $1 AND status = 'CONFIRMED' AND during && tstzrange($2, $3)`,
      [bot.id, window.start, window.end],
    );
    expect(held.rows[0]!.n).toBe(1);
    // The same with seat ids: one booking in flight, one seat.
    const window2 = { start: iso(T0, 840), end: iso(T0, 900) };
    const bySeat = await Promise.all(
      Array.from({ length: 100 }, (_, i) => conns[i % 20]!.request('reservations.create', [{ seatId: hall.seats[i % 30]!.id, ...window2 }], bot.token)),
    );
    expect(codes(bySeat)).toEqual({ OK: 1, 'FAILED_PRECONDITION:overlapsOwnBooking': 99 });
    expect((await overlaps(t)).users).toBe(0);
  });

});

describe('the opening rush, checked in SQL', () => {
  const clock = new FakeClock(Date.parse(T0));
  let t: TestServer;
  let conns: RpcClient[];

  beforeAll(async () => {
    t = await startTestServer({ rateLimit: { enabled: false }, db: { poolSize: 10 } }, { clock });
    conns = await Promise.all(Array.from({ length: 30 }, () => connect(t)));
  });
  afterAll(async () => {
    for (const c of conns) c.close();
    await t.close();
  });

  async function rush(hallName: string, seats: number, users: TestUser[], window: { start: string; end: string }) {
    const hall = await addBranch(t, hallName, seats);
    const replies = await Promise.all(
      users.map((u, i) => conns[i % conns.length]!.request('reservations.create', [{ branch: hallName, ...window }], u.token)),
    );
    const rows = await t.db.pool.query<{ bookings: number; seats: number; users: number; most: number }>(
      `SELECT count(*)::int AS bookings, count(DISTINCT r.seat_id)::int AS seats, count(DISTINCT r.user_id)::int AS users,
              coalesce(max(per.n), 0)::int AS most
         FROM reservations r JOIN seats s ON s.id = r.seat_id
         LEFT JOIN LATERAL (SELECT count(*) AS n FROM reservations o WHERE o.user_id = r.user_id AND o.status = 'CONFIRMED' AND o.during && r.during) per ON true
        WHERE s.branch_id = $1 AND r.status = 'CONFIRMED' AND r.during = tstzrange($2, $3)`,
      [hall.id, window.start, window.end],
    );
    return { hall, replies, sql: rows.rows[0]! };
  }

  it('300 users on 100 seats at once: exactly 100 bookings on 100 seats for 100 users, 200 noSeatFree, no overlap', async () => {
    const users = await makeUsers(t, 300, 'rush');
    const window = { start: iso(T0, 60), end: iso(T0, 180) };
    const { hall, replies, sql } = await rush('Rush Hall', 100, users, window);
    expect(codes(replies)).toEqual({ OK: 100, 'CONFLICT:noSeatFree': 200 });
    expect(sql).toEqual({ bookings: 100, seats: 100, users: 100, most: 1 });
    // Every reply names its seat: a seat of the hall, each once, and the database agrees.
    const got = replies.filter((r) => !r.error).map((r) => r.result as Reservation);
    expect(new Set(got.map((r) => r.seatId)).size).toBe(100);
    expect(got.every((r) => hall.seats.some((s) => s.id === r.seatId) && r.start === window.start && r.end === window.end)).toBe(true);
    const stored = await t.db.pool.query<{ id: number; seat_id: number; user_id: number }>(
      `SELECT id, seat_id, user_id FROM reservations WHERE id = ANY($1)`,
      [got.map((r) => r.id)],
    );
    expect(new Map(stored.rows.map((r) => [r.id, [r.seat_id, r.user_id]]))).toEqual(new Map(got.map((r) => [r.id, [r.seatId, r.userId]])));
    expect(await overlaps(t)).toEqual({ seats: 0, users: 0 });
  });

  it('a thousand accounts racing 100 seats: exactly 100 bookings and no overlap', async () => {
    const users = await makeUsers(t, 1000, 'horde');
    const { replies, sql } = await rush('Horde Hall', 100, users, { start: iso(T0, 60), end: iso(T0, 180) });
    expect(codes(replies)).toEqual({ OK: 100, 'CONFLICT:noSeatFree': 900 });
    expect(sql).toEqual({ bookings: 100, seats: 100, users: 100, most: 1 });
    expect(await overlaps(t)).toEqual({ seats: 0, users: 0 });
  });

  it('once a window is known full, a refusal costs no database round trip; a cancellation makes the seat bookable again at once', async () => {
    const [owner, ...others] = await makeUsers(t, 6, 'full');
    const window = { start: iso(T0, 240), end: iso(T0, 300) };
    const hall = await addBranch(t, 'Small Hall', 3);
    const mine = await conns[0]!.request('reservations.create', [{ branch: 'Small Hall', ...window }], owner!.token);
    for (const u of others.slice(0, 2)) await conns[0]!.request('reservations.create', [{ branch: 'Small Hall', ...window }], u.token);
    // The first refusal walks the branch; it learns the window is full.
    const first = await conns[1]!.request('reservations.create', [{ branch: 'Small Hall', ...window }], others[2]!.token);
    expect(first.error?.details).toEqual({ reason: 'noSeatFree' });
    const stats = () => t.reservations.bookingStats();
    const before = stats();
    const again = await conns[2]!.request('reservations.create', [{ branch: 'Small Hall', ...window }], others[3]!.token);
    expect([again.error?.code, again.error?.details]).toEqual(['CONFLICT', { reason: 'noSeatFree' }]);
    expect(stats().batches).toBe(before.batches);
    expect(stats().knownFull).toBe(before.knownFull + 1);
    // Other filters or another window are other searches: they go to the database.
    const other = await conns[2]!.request('reservations.create', [{ branch: 'Small Hall', hasPower: true, ...window }], others[3]!.token);
    expect(other.error?.details).toEqual({ reason: 'noSeatFree' });
    expect(stats().batches).toBe(before.batches + 1);
    // A cancellation frees a seat: the very next request books it.
    await conns[0]!.request('reservations.cancel', [{ id: (mine.result as Reservation).id }], owner!.token);
    const booked = await conns[3]!.request('reservations.create', [{ branch: 'Small Hall', ...window }], others[3]!.token);
    expect(booked.error).toBeNull();
    expect((booked.result as Reservation).seatId).toBe(hall.seats[0]!.id);
    // And the window is full again, learnt again.
    const full = await conns[3]!.request('reservations.create', [{ branch: 'Small Hall', ...window }], others[2]!.token);
    expect(full.error?.details).toEqual({ reason: 'noSeatFree' });
  });

  it('a retry with the key of a booking that filled the branch gets that booking, not noSeatFree', async () => {
    const [u, v] = await makeUsers(t, 2, 'fullkey');
    const window = { start: iso(T0, 360), end: iso(T0, 420) };
    await addBranch(t, 'Tiny Hall', 1);
    const args = [{ branch: 'Tiny Hall', ...window, idempotencyKey: 'tiny-1' }];
    const booked = await conns[0]!.request('reservations.create', args, u!.token);
    expect(booked.error).toBeNull();
    const refused = await conns[0]!.request('reservations.create', [{ branch: 'Tiny Hall', ...window }], v!.token);
    expect(refused.error?.details).toEqual({ reason: 'noSeatFree' });
    expect((await conns[1]!.request('reservations.create', args, u!.token)).result).toEqual(booked.result);
  });
});

describe('when bookings open, and the opening lottery', () => {
  // Bookings for a day open at 08:00 UTC the day before (maxDaysAhead 1); the first 400 ms after
  // an opening are a lottery.
  const OPENS = '2030-01-07T08:00:00.000Z';
  const DAY = { start: '2030-01-08T10:00:00.000Z', end: '2030-01-08T12:00:00.000Z' };
  const clock = new FakeClock(Date.parse(OPENS) - 60_000);
  /** mulberry32: a seeded generator, so the lottery's draw is known to the test. */
  const seeded = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  let t: TestServer;
  let hall: Awaited<ReturnType<typeof addBranch>>;

  beforeAll(async () => {
    t = await startTestServer(
      { rateLimit: { enabled: false }, rules: { bookingOpensAt: '08:00', maxDaysAhead: 1, openingLotteryMs: 400 } },
      { clock, random: seeded(42) },
    );
    hall = await addBranch(t, 'Lottery Hall', 30);
  });
  afterAll(async () => t.close());

  it('before the opening: FAILED_PRECONDITION bookingNotOpen with opensAt, answered without booking', async () => {
    const [u] = await makeUsers(t, 1, 'early');
    const c = await connect(t, u);
    for (const args of [{ branch: 'Lottery Hall', ...DAY }, { seatId: hall.seats[0]!.id, ...DAY }]) {
      const err = await errorOf(c.call('reservations.create', args));
      expect([err.code, err.details]).toEqual(['FAILED_PRECONDITION', { rule: 'bookingNotOpen', opensAt: OPENS }]);
    }
    // A day further out opens a day later.
    const later = await errorOf(c.call('reservations.create', { branch: 'Lottery Hall', start: '2030-01-09T10:00:00Z', end: '2030-01-09T11:00:00Z' }));
    expect(later.details).toEqual({ rule: 'bookingNotOpen', opensAt: '2030-01-08T08:00:00.000Z' });
    const n = await t.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM reservations WHERE user_id = $1', [u!.id]);
    expect(n.rows[0]!.n).toBe(0);
    c.close();
  });

  it('requests in the first openingLotteryMs are served in a random order, not in the order they came', async () => {
    const users = await makeUsers(t, 20, 'lottery');
    const conns = await Promise.all(users.map((u) => connect(t, u)));
    clock.set(Date.parse(OPENS) + 10);
    // The branch's context read once now, so every request below reaches the queue in the order it came.
    await errorOf(conns[0]!.call('reservations.create', { branch: 'Lottery Hall', start: '2030-01-09T10:00:00Z', end: '2030-01-09T11:00:00Z' }));
    const started = Date.now();
    // One after another, so the server receives them in this order.
    const pending: Array<Promise<RpcReply>> = [];
    for (const [i, c] of conns.entries()) {
      pending.push(c.request('reservations.create', [{ branch: 'Lottery Hall', ...DAY }], users[i]!.token));
      await new Promise((r) => setTimeout(r, 5));
    }
    const replies = await Promise.all(pending);
    // Held until the lottery's window closed (390 ms of it were left).
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(replies.every((r) => r.error === null)).toBe(true);
    // The walk hands out seats in the stable order, so a seat's place is its booking's place in the queue.
    const place = (r: RpcReply) => hall.seats.findIndex((s) => s.id === (r.result as Reservation).seatId);
    const served = users.map((_, i) => i).sort((a, b) => place(replies[a]!) - place(replies[b]!));
    // The draw: a Fisher-Yates shuffle of the arrivals with the server's (here seeded) randomness.
    const expected = users.map((_, i) => i);
    const random = seeded(42);
    for (let i = expected.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [expected[i], expected[j]] = [expected[j]!, expected[i]!];
    }
    expect(served).toEqual(expected);
    expect(served).not.toEqual(users.map((_, i) => i));
    for (const c of conns) c.close();
  });

  it('a draw whose timer runs late still goes before every request that came after its window', async () => {
    // The same day's opening, a later window of it: a lottery again while the clock is inside the window.
    const LATER = { start: '2030-01-08T13:00:00.000Z', end: '2030-01-08T14:00:00.000Z' };
    const users = await makeUsers(t, 7, 'late');
    const conns = await Promise.all(users.map((u) => connect(t, u)));
    clock.set(Date.parse(OPENS) + 10);
    // Five in the lottery's window: held until its draw, whose timer is due in 390 ms.
    const inWindow = conns.slice(0, 5).map((c, i) => c.request('reservations.create', [{ branch: 'Lottery Hall', ...LATER }], users[i]!.token));
    // A sixth user waits behind its own first booking, held in the draw too; its connection is not
    // read meanwhile, so a PING pipelined after it is not answered before the draw.
    const second = conns[5]!.request('reservations.create', [{ branch: 'Lottery Hall', ...LATER }], users[5]!.token);
    const behind = conns[5]!.request('reservations.create', [{ branch: 'Lottery Hall', ...LATER }], users[5]!.token);
    const pingSent = performance.now();
    const ping = conns[5]!.request('PING').then(() => performance.now() - pingSent);
    const other = await conns[0]!.request('PING').then(() => performance.now() - pingSent);
    expect(other).toBeLessThan(200);
    await new Promise((r) => setTimeout(r, 50));
    // The server's clock passes the window before the timer has run (a busy event loop): one more comes.
    clock.set(Date.parse(OPENS) + 5_000);
    const late = await conns[6]!.request('reservations.create', [{ branch: 'Lottery Hall', ...LATER }], users[6]!.token);
    const drawn = await Promise.all([...inWindow, second]);
    const place = (r: RpcReply) => hall.seats.findIndex((s) => s.id === (r.result as Reservation).seatId);
    expect([...drawn, late].map((r) => r.error)).toEqual([null, null, null, null, null, null, null]);
    // Served after all six drawn, though the draw's timer had not run when it came.
    expect(place(late)).toBeGreaterThan(Math.max(...drawn.map(place)));
    // What waited behind the drawn booking: answered once its turn came, from what that booked.
    expect((await behind).error?.details).toMatchObject({ rule: 'overlapsOwnBooking' });
    expect(await ping).toBeGreaterThanOrEqual(40);
    for (const c of conns) c.close();
  });

  it('after the lottery window, requests are served as they come', async () => {
    clock.set(Date.parse(OPENS) + 5_000);
    const [u] = await makeUsers(t, 1, 'after');
    const c = await connect(t, u);
    const started = Date.now();
    await expect(c.call('reservations.create', { branch: 'Lottery Hall', ...DAY })).resolves.toMatchObject({ status: 'CONFIRMED' });
    expect(Date.now() - started).toBeLessThan(300);
    c.close();
  });
});
