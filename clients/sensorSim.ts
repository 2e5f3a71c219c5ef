// `carrel sensors simulate` (DESIGN §8): a sensor gateway for many seats. It says hello, streams
// occupancy readings at --rate per second following a pattern, heartbeats, and survives the
// server going away: it reconnects with backoff and resends every frame the server had not
// acknowledged (readings are idempotent and ordered by `at`, so a resend changes nothing that
// already happened). If it was away so long that too much piled up, it sends the latest reading
// per seat instead.
import { FramedSocket, backoffMs, sleep, type Frame } from './framedSocket.js';
import { parseServer } from './rpcClient.js';

export type Pattern = 'random' | 'lecture-break';

export interface SimulateOptions {
  server: string;
  pubsub?: string;
  key: string;
  sensorId: string;
  branch?: string;
  seats?: number;
  rate: number;
  pattern: Pattern;
  durationSec?: number;
  /** Seconds of one lecture-break cycle (the break is its last fifth). */
  periodSec: number;
  quiet?: boolean;
  out?: NodeJS.WritableStream;
}

interface Reading {
  seatId: number;
  occupied: boolean;
  at: string;
}

const MAX_UNACKED_READINGS = 20_000;

export interface SimulateStats {
  sent: number;
  acked: number;
  applied: number;
  stale: number;
  unknownSeats: number;
  errors: number;
  reconnects: number;
  resent: number;
}

export async function simulate(opts: SimulateOptions): Promise<SimulateStats> {
  const out = opts.out ?? process.stderr;
  const seatIds = opts.branch ? await branchSeatIds(opts) : Array.from({ length: opts.seats ?? 50 }, (_, i) => i + 1);
  if (seatIds.length === 0) throw new Error('no seats to simulate');
  const { host, port } = parseServer(opts.server, 9001);
  const stats: SimulateStats = { sent: 0, acked: 0, applied: 0, stale: 0, unknownSeats: 0, errors: 0, reconnects: 0, resent: 0 };
  const occupied = new Map<number, boolean>();
  const latest = new Map<number, Reading>();
  let unacked = new Map<number, Reading[]>();
  let unackedReadings = 0;
  let nextRef = 1;
  let conn: FramedSocket | undefined;
  let ready = false;
  let maxPerFrame = 500;
  let heartbeatEveryMs = 30_000;
  const started = Date.now();
  const endAt = opts.durationSec ? started + opts.durationSec * 1000 : Infinity;
  let stopping = false;
  let lastError = '';

  const sendFrame = (readings: Reading[]): void => {
    const ref = nextRef++;
    unacked.set(ref, readings);
    unackedReadings += readings.length;
    if (conn && ready) conn.send({ type: 'occupancy', ref, readings });
  };

  const onFrame = (f: Frame): void => {
    if (f.type === 'welcome') {
      ready = true;
      maxPerFrame = Number(f.maxReadingsPerFrame) || maxPerFrame;
      heartbeatEveryMs = Math.max(1000, Math.floor((Number(f.offlineAfterMs) || 90_000) / 3));
      // Everything not acknowledged goes again, oldest first (or the latest per seat if too much).
      const pending = unacked;
      unacked = new Map();
      unackedReadings = 0;
      let batches: Reading[][] = [...pending.values()];
      if (batches.reduce((n, b) => n + b.length, 0) > MAX_UNACKED_READINGS) batches = chunk([...latest.values()], maxPerFrame);
      for (const b of batches) {
        stats.resent += b.length;
        sendFrame(b);
      }
    } else if (f.type === 'ack') {
      const readings = unacked.get(Number(f.ref));
      if (readings) {
        unacked.delete(Number(f.ref));
        unackedReadings -= readings.length;
      }
      stats.acked++;
      stats.applied += Number(f.applied) || 0;
      stats.stale += Number(f.stale) || 0;
      stats.unknownSeats += Array.isArray(f.unknownSeats) ? f.unknownSeats.length : 0;
    } else if (f.type === 'error') {
      stats.errors++;
      lastError = `${String(f.code)}: ${String(f.message)}`;
      if (f.code === 'PERMISSION_DENIED') {
        stopping = true;
        out.write(`sensor key refused: ${String(f.message)}\n`);
      } else if (f.ref !== undefined) {
        // A refused frame will never be acknowledged: do not resend it.
        const readings = unacked.get(Number(f.ref));
        if (readings) {
          unacked.delete(Number(f.ref));
          unackedReadings -= readings.length;
        }
      }
    }
  };

  const connectLoop = async (): Promise<void> => {
    let attempt = 0;
    while (!stopping && Date.now() < endAt) {
      try {
        await new Promise<void>((resolve, reject) => {
          FramedSocket.connect(host, port, onFrame, (err) => {
            ready = false;
            conn = undefined;
            if (err) lastError = err.message;
            resolve();
          }).then((c) => {
            conn = c;
            attempt = 0;
            c.send({ type: 'hello', sensorId: opts.sensorId, key: opts.key });
          }, reject);
        });
      } catch (err) {
        lastError = (err as Error).message;
      }
      if (stopping || Date.now() >= endAt) break;
      stats.reconnects++;
      const wait = backoffMs(attempt++);
      if (!opts.quiet) out.write(`disconnected (${lastError || 'closed'}); reconnecting in ${wait} ms\n`);
      await sleep(wait);
    }
  };
  const connection = connectLoop();

  const tickMs = 100;
  let carry = 0;
  let lastHeartbeat = Date.now();
  let lastReport = Date.now();
  while (!stopping && Date.now() < endAt) {
    await sleep(tickMs);
    carry += (opts.rate * tickMs) / 1000;
    const n = Math.floor(carry);
    carry -= n;
    const now = Date.now();
    const target = targetOccupancy(opts.pattern, (now - started) / 1000, opts.periodSec);
    const batch: Reading[] = [];
    for (let i = 0; i < n; i++) {
      const seatId = seatIds[Math.floor(Math.random() * seatIds.length)]!;
      // A random walk towards the pattern's occupancy: seats flip one at a time.
      const was = occupied.get(seatId) ?? false;
      const next = was ? Math.random() > (1 - target) * 0.5 : Math.random() < target * 0.5;
      occupied.set(seatId, next);
      const r = { seatId, occupied: next, at: new Date(now - n + i).toISOString() };
      latest.set(seatId, r);
      batch.push(r);
    }
    for (const part of chunk(batch, maxPerFrame)) {
      if (unackedReadings + part.length > MAX_UNACKED_READINGS && !ready) {
        // Away too long: keep only what matters, the latest per seat (sent on reconnect).
        unacked.clear();
        unackedReadings = 0;
        continue;
      }
      sendFrame(part);
      stats.sent += part.length;
    }
    if (ready && conn && now - lastHeartbeat >= heartbeatEveryMs) {
      conn.send({ type: 'heartbeat' });
      lastHeartbeat = now;
    }
    if (!opts.quiet && now - lastReport >= 5000) {
      lastReport = now;
      out.write(`${new Date(now).toISOString()} sent ${stats.sent} acked frames ${stats.acked} applied ${stats.applied} stale ${stats.stale} pending ${unackedReadings} reconnects ${stats.reconnects}\n`);
    }
  }
  stopping = true;
  // Give the last acks a moment, then leave.
  const waitUntil = Date.now() + 2000;
  while (unacked.size > 0 && conn && Date.now() < waitUntil) await sleep(20);
  conn?.close();
  await connection;
  return stats;
}

function targetOccupancy(pattern: Pattern, tSec: number, periodSec: number): number {
  if (pattern === 'random') return 0.5;
  // Lectures fill the library; in the break (last fifth of each period) most people leave.
  const phase = (tSec % periodSec) / periodSec;
  return phase >= 0.8 ? 0.15 : 0.85;
}

function chunk<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** A branch's seat ids, from the subscriber port's snapshot (no RPC method needed). */
async function branchSeatIds(opts: SimulateOptions): Promise<number[]> {
  const sensorAt = parseServer(opts.server, 9001);
  const { host, port } = parseServer(opts.pubsub ?? `${sensorAt.host}:9002`, 9002);
  let settle: { resolve: (ids: number[]) => void; reject: (err: Error) => void } | undefined;
  const result = new Promise<number[]>((resolve, reject) => (settle = { resolve, reject }));
  const sock = await FramedSocket.connect(
    host,
    port,
    (f) => {
      if (f.type === 'snapshot') settle?.resolve((f.seats as Array<{ seatId: number }>).map((s) => s.seatId));
      else if (f.type === 'error') settle?.reject(new Error(`cannot list the seats of ${String(opts.branch)}: ${String(f.code)} ${String(f.message)}`));
    },
    () => settle?.reject(new Error(`the subscriber port at ${host}:${port} closed before sending the seats`)),
  );
  sock.send({ type: 'subscribe', branch: opts.branch });
  try {
    return await result;
  } finally {
    settle = undefined;
    sock.close();
  }
}
