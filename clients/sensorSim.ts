// `carrel sensors simulate` (docs/sensors.md): a sensor gateway for many seats. It says hello, streams
// occupancy readings at --rate per second following a pattern, heartbeats, and survives the
// server going away: it reconnects with backoff and resends every frame the server had not
// acknowledged (a reading whose `at` is not later than this gateway's last one for the seat is a
// resend, and changes nothing: docs/sensors.md). If it was away so long that too much piled up,
// it sends the latest reading per seat instead; readings older than the server's sensors.maxAgeMs
// are refused (counted in `refused`).
//
// Every reading's `at` strictly increases per seat, whatever the rate: the server drops an older
// or repeated one from the same gateway as stale. (Stamping a tick's n readings `now - n + i`
// overlapped the previous tick once n > 100: at --rate 5000, about two thirds were stale.)
import type { HelloFrame, OccupancyFrame, Reading, SensorReplyFrame, SubscriberFrame } from '../src/wire/types.js';
import { FramedSocket, backoffMs, sleep, type Frame } from './framedSocket.js';
import { parseServer } from './rpcClient.js';

export type Pattern = 'random' | 'lecture-break';

export interface SimulateOptions {
  server: string;
  /** The subscriber port that lists --branch's seats; default subscriberPortFor(server). */
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
  /** Stops the run (Ctrl-C): the last acks get a moment, then the stats are returned. */
  signal?: AbortSignal;
}

/**
 * Where the subscriber port of the server whose sensor port is `sensorServer` is, when not told:
 * the same host, the next port, as the shipped layout has it (9001 → 9002) and as a second
 * instance laid out the same way does (15001 → 15002). A server on other ports prints the
 * --pubsub it needs in its start-up banner.
 */
export function subscriberPortFor(sensorServer: string): string {
  const { host, port } = parseServer(sensorServer, 9001);
  // 65535 has no next port; the default is as good a guess as any.
  return `${host}:${port < 65535 ? port + 1 : 9002}`;
}

/** Stamps readings so that each seat's `at` (ms) strictly increases: never older than `ms`, always after the seat's last. */
export class SeatClock {
  private readonly last = new Map<number, number>();

  stamp(seatId: number, ms: number): number {
    const prev = this.last.get(seatId);
    const at = prev === undefined || ms > prev ? ms : prev + 1;
    this.last.set(seatId, at);
    return at;
  }
}

const MAX_UNACKED_READINGS = 20_000;

export interface SimulateStats {
  sent: number;
  acked: number;
  applied: number;
  stale: number;
  unknownSeats: number;
  /** Readings the server refused, any per-reading code (unknown seats included). */
  refused: number;
  errors: number;
  reconnects: number;
  resent: number;
}

export async function simulate(opts: SimulateOptions): Promise<SimulateStats> {
  const out = opts.out ?? process.stderr;
  const seatIds = opts.branch ? await branchSeatIds(opts) : Array.from({ length: opts.seats ?? 50 }, (_, i) => i + 1);
  if (seatIds.length === 0) throw new Error('no seats to simulate');
  if (opts.rate > seatIds.length * 1000) {
    // `at` has millisecond resolution: past one reading per seat per ms, strictly increasing
    // stamps would run ahead of the clock until the server refused them (sensors.maxClockSkewMs).
    throw Object.assign(new Error(`--rate ${opts.rate} is more than one reading per seat per millisecond for ${seatIds.length} seats; use at most ${seatIds.length * 1000}/s, or more seats`), { exitCode: 2 });
  }
  const { host, port } = parseServer(opts.server, 9001);
  const stats: SimulateStats = { sent: 0, acked: 0, applied: 0, stale: 0, unknownSeats: 0, refused: 0, errors: 0, reconnects: 0, resent: 0 };
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
  // Aborted by opts.signal or when the run ends, so no sleep outlives the run.
  const halt = new AbortController();
  const onAbort = (): void => {
    stopping = true;
    halt.abort();
  };
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const clock = new SeatClock();

  const sendFrame = (readings: Reading[]): void => {
    const ref = nextRef++;
    unacked.set(ref, readings);
    unackedReadings += readings.length;
    if (conn && ready) conn.send({ type: 'occupancy', ref, readings } satisfies OccupancyFrame);
  };

  const onFrame = (frame: Frame): void => {
    // The server's frames, as the wire module describes them (src/wire/types.ts).
    const f = frame as unknown as SensorReplyFrame;
    if (f.type === 'welcome') {
      ready = true;
      maxPerFrame = f.maxReadingsPerFrame || maxPerFrame;
      heartbeatEveryMs = Math.max(1000, Math.floor((f.offlineAfterMs || 90_000) / 3));
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
      stats.applied += f.applied;
      stats.stale += f.stale;
      stats.unknownSeats += f.unknownSeats.length;
      for (const list of Object.values(f.refused)) stats.refused += list.length;
    } else if (f.type === 'error') {
      stats.errors++;
      lastError = `${f.code}: ${f.message}`;
      if (f.code === 'PERMISSION_DENIED') {
        stopping = true;
        out.write(`sensor key refused: ${f.message}\n`);
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
            c.send({ type: 'hello', sensorId: opts.sensorId, key: opts.key } satisfies HelloFrame);
          }, reject);
        });
      } catch (err) {
        lastError = (err as Error).message;
      }
      if (stopping || Date.now() >= endAt) break;
      stats.reconnects++;
      const wait = backoffMs(attempt++);
      if (!opts.quiet) out.write(`disconnected (${lastError || 'closed'}); reconnecting in ${wait} ms\n`);
      await sleep(wait, halt.signal);
    }
  };
  const connection = connectLoop();

  const tickMs = 100;
  let carry = 0;
  let lastHeartbeat = Date.now();
  let lastReport = Date.now();
  let lastTick = Date.now();
  while (!stopping && Date.now() < endAt) {
    await sleep(tickMs, halt.signal);
    if (stopping) break;
    const now = Date.now();
    // Readings for the time that passed (timers run late under load), spread over it.
    const span = Math.max(1, now - lastTick);
    carry += (opts.rate * span) / 1000;
    const n = Math.floor(carry);
    carry -= n;
    const target = targetOccupancy(opts.pattern, (now - started) / 1000, opts.periodSec);
    const batch: Reading[] = [];
    for (let i = 0; i < n; i++) {
      const seatId = seatIds[Math.floor(Math.random() * seatIds.length)]!;
      // A random walk towards the pattern's occupancy: seats flip one at a time.
      const was = occupied.get(seatId) ?? false;
      const next = was ? Math.random() > (1 - target) * 0.5 : Math.random() < target * 0.5;
      occupied.set(seatId, next);
      const at = clock.stamp(seatId, lastTick + Math.floor(((i + 1) * span) / n));
      const r = { seatId, occupied: next, at: new Date(at).toISOString() };
      latest.set(seatId, r);
      batch.push(r);
    }
    lastTick = now;
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
  halt.abort();
  opts.signal?.removeEventListener('abort', onAbort);
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
  const address = opts.pubsub ?? subscriberPortFor(opts.server);
  const { host, port } = parseServer(address, 9002);
  const what = `cannot list the seats of ${JSON.stringify(opts.branch)} from the subscriber port ${address}`;
  const hint = opts.pubsub ? '' : ` (guessed from --server as its next port; name it with --pubsub host:port)`;
  let settle: { resolve: (ids: number[]) => void; reject: (err: Error) => void } | undefined;
  const result = new Promise<number[]>((resolve, reject) => (settle = { resolve, reject }));
  const sock = await FramedSocket.connect(
    host,
    port,
    (frame) => {
      const f = frame as unknown as SubscriberFrame;
      if (f.type === 'snapshot') settle?.resolve(f.seats.map((s) => s.seatId));
      else if (f.type === 'error') settle?.reject(new Error(`${what}: ${f.code} ${f.message}`));
    },
    () => settle?.reject(new Error(`${what}: it closed before sending them${hint}`)),
  ).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${what}: ${err.code ?? err.message}${hint}`);
  });
  sock.send({ type: 'subscribe', branch: opts.branch });
  const timer = setTimeout(() => settle?.reject(new Error(`${what}: no snapshot within 10 s${hint}`)), 10_000);
  try {
    return await result;
  } finally {
    clearTimeout(timer);
    settle = undefined;
    sock.close();
  }
}
