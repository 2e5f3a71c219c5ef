// The opening rush in best-available mode (loadtest/rush.ts; docs/protocol.md, reservations.create
// without a seatId), small, against a real server: the booking every user gets is counted in SQL.
// It needs the server's best-available booking and one-seat-at-a-time rule: against a server
// without them every request is refused INVALID_ARGUMENT (seatId required) and these fail.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchContext } from '../../loadtest/scenarios.js';
import { rush, rushComparisons, type RushFigures, type RushOptions } from '../../loadtest/rush.js';
import { addBenchBranch, BENCH_CONFIG_OVERRIDES, externalTarget, RUSH_BRANCH } from '../../loadtest/target.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase } from '../support/db.js';

const SEATS = 30;
// Answers a best-available booking may get: a seat, none free, the user already has one, or a
// refusal for load that stood once its user had settled.
const BEST_MODE_ANSWERS = /^(OK|CONFLICT \(noSeatFree\)|FAILED_PRECONDITION \(overlapsOwnBooking\)|RESOURCE_EXHAUSTED \(\w+\))$/;

describe('rush scenario, best-available', () => {
  let t: TestServer;
  let ctx: BenchContext;

  beforeAll(async () => {
    const db = await freshDatabase();
    await addBenchBranch(db.pool, SEATS, RUSH_BRANCH);
    t = await startTestServer({ rules: BENCH_CONFIG_OVERRIDES.rules, rateLimit: BENCH_CONFIG_OVERRIDES.rateLimit, lifecycle: { enabled: false } }, { db });
    ctx = new BenchContext({ ...externalTarget('127.0.0.1', t.server.ports, process.pid), dbUrl: db.url });
  });
  afterAll(async () => {
    await t?.close();
    await t?.db.drop();
  });

  const check = async (o: Omit<RushOptions, 'mode' | 'maxMs'>): Promise<RushFigures> => {
    const r = await rush(ctx, { mode: 'best', maxMs: 30_000, ...o });
    const f = r.extra as unknown as RushFigures;
    expect(r.unanswered).toBe(0);
    expect(Object.keys(f.outcomes).filter((k) => !BEST_MODE_ANSWERS.test(k))).toEqual([]);
    // Every seat there is for the ones who asked, one each, none twice.
    expect(f.successes).toBe(Math.min(o.users + o.scripts, SEATS));
    expect(f.sql).toEqual({ bookings: f.successes, seats: f.successes, users: f.successes, maxSeatsPerUser: 1, overlappingPairs: 0, seatsDoubleBooked: 0 });
    expect(f.allTakenMs).toBe(f.lastSuccessMs);
    const met = Object.fromEntries(rushComparisons(r).map((c) => [c.what.slice(r.label.length + 2), c.met]));
    expect(met['overlapping bookings in SQL']).toBe(true);
    expect(met['most seats one user holds for the window']).toBe(true);
    return f;
  };

  it('more users than seats: every seat booked once, one per user, the rest told none is free', async () => {
    const f = await check({ users: 50, scripts: 4, scriptConnections: 3, scriptDepth: 8 });
    expect(f.outcomes['CONFLICT (noSeatFree)']).toBeGreaterThan(0);
  }, 60_000);

  it('fewer users than seats: every user, scripted or not, gets a seat and nobody hears none is free', async () => {
    const f = await check({ users: 10, scripts: 2, scriptConnections: 2, scriptDepth: 5 });
    expect(f.successRate).toEqual({ users: 1, scripts: 1, ratio: 1 });
    expect(f.outcomes['CONFLICT (noSeatFree)']).toBeUndefined();
  }, 60_000);
});
