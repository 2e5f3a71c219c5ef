// A booking's whole life over RPC (docs/protocol.md, "RPC methods"), with the booking core and the
// waitlist wired together: book the current slot, a second student waits for it, the first leaves
// early, the second is offered the seat and claims it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import type { CoreEvent } from '../../src/core/events.js';
import { connect, iso, makeUsers, MONDAY_10_NY, seatIdOf } from '../support/core.js';
import { startTestServer, type TestServer } from '../support/server.js';

const clock = new FakeClock(Date.parse(MONDAY_10_NY) + 7 * 60_000); // 10:07 in New York
let t: TestServer;
const events: CoreEvent[] = [];

beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false }, auth: { tokenTtlSec: 10 * 365 * 86_400 } }, { clock });
  t.coreEvents.on((e) => events.push(e));
});
afterAll(async () => t.close());

interface Res { id: number; seatId: number; start: string; end: string; status: string }

describe('a booking freed early goes to the waiting student', () => {
  it('book now → wait → check in → leave early → offer → claim', async () => {
    const [ada, ben] = await makeUsers(t, 2, 'journey');
    const a = await connect(t, ada);
    const b = await connect(t, ben);
    const seatId = await seatIdOf(t, 'G-04');
    const window = { start: MONDAY_10_NY, end: iso(MONDAY_10_NY, 60) }; // the slot under way → +1 h

    const mine = await a.call<Res>('reservations.create', { seatId, ...window });
    expect(mine).toMatchObject({ seatId, status: 'CONFIRMED' });
    expect((await b.request('reservations.create', [{ seatId, ...window }])).error?.code).toBe('CONFLICT');
    const entry = await b.call<{ id: number; position: number }>('waitlist.join', { seatId, ...window });
    expect(entry.position).toBe(1);

    await a.call('reservations.checkIn', { id: mine.id });
    clock.advance(10 * 60_000); // 10:17
    const left = await a.call<Res>('reservations.checkOut', { id: mine.id });
    expect(left).toMatchObject({ status: 'COMPLETED', end: iso(MONDAY_10_NY, 30) });

    const [waiting] = await b.call<Array<{ id: number; status: string; offer?: { reservationId: number } }>>('waitlist.mine');
    expect(waiting).toMatchObject({ id: entry.id, status: 'OFFERED' });
    const offers = events.filter((e) => e.type === 'personal' && e.kind === 'offer');
    expect(offers.map((e) => (e.type === 'personal' ? e.userId : 0))).toEqual([ben!.id]);

    const claimed = await b.call<Res>('waitlist.claim', { id: entry.id });
    expect(claimed).toMatchObject({ seatId, status: 'CONFIRMED', end: window.end });
    expect(claimed.id).toBe(waiting!.offer!.reservationId);
    const bens = await b.call<{ reservations: Res[] }>('reservations.mine');
    expect(bens.reservations.map((r) => r.id)).toEqual([claimed.id]);
    a.close();
    b.close();
  });
});
