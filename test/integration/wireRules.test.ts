// One wire vocabulary on a running server (docs/protocol.md, "Shapes used by many methods",
// "Branch references", "Framing"): reservations.create and waitlist.join read times alike; a
// branch is named one way by every method and the subscriber port; every port's error frame is
// the one encoder's; odd and huge arguments get their stable codes and the server answers on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RpcClient, RpcReply } from '../../clients/rpcClient.js';
import { FakeClock } from '../../src/core/clock.js';
import { encodeErrorFrame } from '../../src/net/errorFrame.js';
import { connect, makeUsers, type TestUser } from '../support/core.js';
import { RawPeer } from '../support/peer.js';
import { subscribe, waitFor } from '../support/live.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Monday 2026-01-05, 10:00 in New York: Main Library is open, nothing is booked.
const clock = new FakeClock(Date.parse('2026-01-05T15:00:00Z'));
const WINDOW = { start: '2026-01-05T16:00:00Z', end: '2026-01-05T17:00:00Z' };

let t: TestServer;
let student: TestUser;
let admin: TestUser;
let c: RpcClient;
let mainId: number;
let mainSeats: number[];

beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false } }, { clock });
  student = (await makeUsers(t, 1, 'wire'))[0]!;
  admin = (await makeUsers(t, 1, 'wire-admin', 'admin'))[0]!;
  c = await connect(t, student);
  mainId = (await t.db.pool.query<{ id: number }>(`SELECT id FROM branches WHERE name = 'Main Library'`)).rows[0]!.id;
  mainSeats = (await t.db.pool.query<{ id: number }>(`SELECT s.id FROM seats s WHERE s.branch_id = $1 ORDER BY s.id`, [mainId])).rows.map((r) => r.id);
});
afterAll(async () => {
  c?.close();
  await t?.close();
});

const call = (method: string, args: unknown, token = student.token): Promise<RpcReply> => c.request(method, [args], token);

/** INVALID_ARGUMENT whose first issue is the field's own (not a rule further on). */
function refusedFor(reply: RpcReply, field: string): boolean {
  const issues = reply.error?.details?.issues as Array<{ path: string }> | undefined;
  return reply.error?.code === 'INVALID_ARGUMENT' && issues?.[0]?.path === field;
}

describe('times: one schema for reservations.create and waitlist.join', () => {
  // A seat that does not exist: an accepted time goes on to NOT_FOUND, so nothing is booked.
  const NO_SEAT = 2_000_000_000;
  const END = '2031-01-01T00:00:00Z';
  const TIMES: Array<[unknown, boolean]> = [
    ['2030-01-07T10:00:00Z', true],
    ['2030-01-07T10:00Z', true],
    ['2030-01-07T10:00:00.123456789+01:00', true],
    ['2030-02-30T10:00:00Z', false],
    ['2030-01-07T24:00:00Z', false],
    ['2030-01-07T10:00:00', false],
    ['2030-01-07 10:00:00Z', false],
    ['2030-01-07T10:00:00+0100', false],
    [1894010400000, false],
    [{ $gt: '' }, false],
    [['2030-01-07T10:00:00Z'], false],
    ['9'.repeat(512 * 1024), false],
  ];

  it.each(TIMES.map(([time, ok], i) => [i, time, ok] as const))('time %i is refused by both methods or by neither', async (_i, time, accepted) => {
    const r = await call('reservations.create', { seatId: NO_SEAT, start: time, end: END });
    const w = await call('waitlist.join', { seatId: NO_SEAT, start: time, end: END });
    expect(refusedFor(r, 'start'), `reservations.create ${JSON.stringify(r.error)}`).toBe(!accepted);
    expect(refusedFor(w, 'start'), `waitlist.join ${JSON.stringify(w.error)}`).toBe(!accepted);
    if (accepted) {
      expect(r.error?.code).toBe('NOT_FOUND');
      expect(w.error?.code).toBe('NOT_FOUND');
    }
  });
});

describe('a branch named one way by every method and the subscriber port', () => {
  const forms = (): unknown[] => [mainId, String(mainId), `00${mainId}`, 'Main Library', 'main library', 'MAIN LIBRARY'];
  const BAD = [0, -1, 1.5, 2 ** 31, '0', '99999999999', '', 'x'.repeat(201), true, null, [], { id: 1 }];

  it('seats.list lists the same branch for its id, its digits and its name in any case', async () => {
    for (const branch of forms()) {
      const seats = (await call('seats.list', { branch })).result as Array<{ id: number; branch: string }>;
      expect(seats.map((s) => s.id), JSON.stringify(branch)).toEqual(mainSeats);
    }
    expect((await call('seats.list', { branch: 'No Such Library' })).result).toEqual([]);
    for (const branch of BAD) expect(refusedFor(await call('seats.list', { branch }), 'branch'), JSON.stringify(branch)).toBe(true);
  });

  it('waitlist.join finds the same branch (and says a seat of it is free) for every form', async () => {
    for (const branch of forms()) {
      const r = await call('waitlist.join', { branch, ...WINDOW });
      expect(r.error, JSON.stringify(branch)).toMatchObject({ code: 'FAILED_PRECONDITION', details: { rule: 'seatAvailable', seatId: mainSeats[0] } });
    }
    expect((await call('waitlist.join', { branch: 'No Such Library', ...WINDOW })).error?.code).toBe('NOT_FOUND');
    for (const branch of BAD) expect(refusedFor(await call('waitlist.join', { branch, ...WINDOW }), 'branch'), JSON.stringify(branch)).toBe(true);
    expect((await t.db.pool.query('SELECT 1 FROM waitlist')).rowCount).toBe(0);
  });

  it('the admin methods read it the same way', async () => {
    for (const branch of forms()) {
      expect((await call('admin.sensors.listKeys', { branch }, admin.token)).error, JSON.stringify(branch)).toBeNull();
    }
    expect((await call('admin.sensors.listKeys', { branch: 'No Such Library' }, admin.token)).error?.code).toBe('NOT_FOUND');
    const week = Object.fromEntries(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'].map((d) => [d, { open: '07:00', close: '23:00' }]));
    const hours = (await call('admin.branches.setHours', { branch: 'main library', hours: week }, admin.token)).result as { id: number };
    expect(hours.id).toBe(mainId);
    for (const branch of BAD) expect(refusedFor(await call('admin.sensors.listKeys', { branch }, admin.token), 'branch'), JSON.stringify(branch)).toBe(true);
  });

  it('the subscriber port subscribes the same branch for every form, and refuses the same bad ones', async () => {
    for (const branch of forms()) {
      const peer = await subscribe(t.server.ports.pubsub, { branch });
      expect(peer.frames[0], JSON.stringify(branch)).toMatchObject({ type: 'subscribed', branch: 'Main Library' });
      peer.destroy();
    }
    const peer = await RawPeer.connect(t.server.ports.pubsub);
    for (const branch of [...BAD, 'No Such Library']) {
      const from = peer.frames.length;
      peer.send({ type: 'subscribe', branch });
      const reply = await waitFor(peer, (f) => f.type === 'error', { from });
      expect(reply.code, JSON.stringify(branch)).toBe(branch === 'No Such Library' ? 'NOT_FOUND' : 'INVALID_ARGUMENT');
    }
    // Bad input cost a frame each, not the connection: it still subscribes.
    const from = peer.frames.length;
    peer.send({ type: 'subscribe', branch: 'main LIBRARY' });
    expect(await waitFor(peer, (f) => f.type === 'subscribed', { from })).toMatchObject({ branch: 'Main Library' });
    peer.destroy();
  });

  it('a "*" subscriber resumes a branch whose since is keyed by its name in any case', async () => {
    const first = await subscribe(t.server.ports.pubsub, { branch: '*' });
    const epoch = first.frames[0]!.epoch as string;
    const seq = (first.frames[0]!.branches as Array<{ id: number; seq: number }>).find((b) => b.id === mainId)!.seq;
    first.destroy();
    const again = await subscribe(t.server.ports.pubsub, { branch: '*', since: { 'MAIN library': seq, '0': 5, 'No Such': 3 }, epoch });
    const entry = (again.frames[0]!.branches as Array<{ id: number; resumed?: boolean }>).find((b) => b.id === mainId);
    expect(entry).toMatchObject({ resumed: true });
    again.destroy();
  });
});

describe('error frames: the one encoder on every port', () => {
  /** The first frame a zero-length frame earns, and the bytes encodeErrorFrame makes of the same error. */
  async function badFrameOn(port: number): Promise<{ got: Record<string, unknown>; peer: RawPeer }> {
    const peer = await RawPeer.connect(port);
    peer.write(Buffer.alloc(4));
    const [got] = await peer.waitFrames(1);
    return { got: got!, peer };
  }
  const text = (frame: Buffer): string => frame.subarray(4).toString('utf8');

  it('is the same frame, byte for byte, the encoder makes for that port', async () => {
    const rpc = await badFrameOn(t.server.ports.rpc);
    expect(JSON.stringify(rpc.got)).toBe(text(encodeErrorFrame('rpc', { code: 'BAD_FRAME', message: String((rpc.got.error as { message: string }).message) }, null)));
    const sensor = await badFrameOn(t.server.ports.sensor);
    expect(JSON.stringify(sensor.got)).toBe(text(encodeErrorFrame('sensor', { code: 'BAD_FRAME', message: String(sensor.got.message) })));
    const pubsub = await badFrameOn(t.server.ports.pubsub);
    expect(JSON.stringify(pubsub.got)).toBe(text(encodeErrorFrame('pubsub', { code: 'BAD_FRAME', message: String(pubsub.got.message) })));
    for (const p of [rpc, sensor, pubsub]) p.peer.destroy();
  });

  it('after all of the above, the server still answers on every port', async () => {
    expect(await c.call('PING')).toBe('PONG');
    const peer = await subscribe(t.server.ports.pubsub, { branch: String(mainId) });
    expect(peer.frames[0]).toMatchObject({ type: 'subscribed', branch: 'Main Library' });
    peer.destroy();
  });
});
