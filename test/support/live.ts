// Helpers for the sensor and subscriber ports: a hello'd sensor, a subscribed watcher, and
// waiting for a frame that matches (event-driven, no fixed sleeps).
import type pg from 'pg';
import { RawPeer } from './peer.js';

export type Frame = Record<string, unknown>;

/** Resolves with the first frame from index `from` on that matches (rejects after timeoutMs). */
export async function waitFor(peer: RawPeer, pred: (f: Frame) => boolean, opts: { from?: number; timeoutMs?: number } = {}): Promise<Frame> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const deadline = Date.now() + timeoutMs;
  let seen = opts.from ?? 0;
  for (;;) {
    for (; seen < peer.frames.length; seen++) if (pred(peer.frames[seen]!)) return peer.frames[seen]!;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(peer.frames.slice(-5))}`);
    await peer.waitFrames(peer.frames.length + 1, left).catch(() => undefined);
    if (peer.socket.destroyed && seen >= peer.frames.length) throw new Error(`closed; last frames ${JSON.stringify(peer.frames.slice(-5))}`);
  }
}

export async function connectSensor(port: number, opts: { key?: string; sensorId?: string } = {}): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  peer.send({ type: 'hello', sensorId: opts.sensorId ?? 'gw-test', key: opts.key ?? 'dev-sensor-key' });
  const first = (await peer.waitFrames(1))[0]!;
  if (first.type !== 'welcome') throw new Error(`hello refused: ${JSON.stringify(first)}`);
  return peer;
}

let refs = 0;

/** Sends readings and waits for their ack. */
export async function sendReadings(peer: RawPeer, readings: Array<{ seatId: number; occupied: boolean; at: string | number }>): Promise<Frame> {
  const ref = ++refs;
  peer.send({ type: 'occupancy', ref, readings: readings.map((r) => ({ ...r, at: typeof r.at === 'number' ? new Date(r.at).toISOString() : r.at })) });
  return waitFor(peer, (f) => f.ref === ref);
}

export async function subscribe(port: number, req: Frame): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  peer.send({ type: 'subscribe', ...req });
  await waitFor(peer, (f) => f.type === 'subscribed' || f.type === 'error');
  return peer;
}

export function seatEvents(peer: RawPeer, from = 0): Frame[] {
  return peer.frames.slice(from).filter((f) => f.type === 'seat');
}

export async function branchSeats(db: pg.Pool, branch = 'Main Library', n = 5): Promise<number[]> {
  const r = await db.query<{ id: number }>(
    'SELECT s.id FROM seats s JOIN branches b ON b.id = s.branch_id WHERE b.name = $1 ORDER BY s.id LIMIT $2',
    [branch, n],
  );
  return r.rows.map((x) => x.id);
}

export async function userId(db: pg.Pool, studentId = 's1001'): Promise<number> {
  const r = await db.query<{ id: number }>('SELECT id FROM users WHERE student_id = $1', [studentId]);
  return r.rows[0]!.id;
}

/** What core does after a booking commits, simulated: a direct INSERT (during = hold). */
export async function insertReservation(
  db: pg.Pool,
  r: { seatId: number; userId: number; startMs: number; endMs: number; status?: string },
): Promise<{ id: number; seatId: number; branchId: number; userId: number; start: string; end: string; status: 'CONFIRMED' | 'CHECKED_IN' | 'OFFERED' }> {
  const status = r.status ?? 'CONFIRMED';
  const res = await db.query<{ id: number; branch_id: number }>(
    `INSERT INTO reservations (seat_id, user_id, during, hold, status, checked_in_at)
     VALUES ($1, $2, tstzrange($3, $4, '[)'), tstzrange($3, $4, '[)'), $5, CASE WHEN $5 = 'CHECKED_IN' THEN $3 END)
     RETURNING id, (SELECT branch_id FROM seats WHERE id = $1) AS branch_id`,
    [r.seatId, r.userId, new Date(r.startMs), new Date(r.endMs), status],
  );
  return {
    id: res.rows[0]!.id,
    seatId: r.seatId,
    branchId: res.rows[0]!.branch_id,
    userId: r.userId,
    start: new Date(r.startMs).toISOString(),
    end: new Date(r.endMs).toISOString(),
    status: status as 'CONFIRMED',
  };
}
