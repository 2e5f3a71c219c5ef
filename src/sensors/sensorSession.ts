// One sensor (or sensor gateway) connection on the sensor port (DESIGN §4).
//
//   → {"type":"hello","sensorId":"gw-main-2","key":"…"}      first, always
//   ← {"type":"welcome","sensorId":"gw-main-2","maxReadingsPerFrame":500,"offlineAfterMs":120000}
//   → {"type":"occupancy","ref":17,"readings":[{"seatId":12,"occupied":true,"at":"…"}]}
//   ← {"type":"ack","ref":17,"applied":1,"stale":0,"unknownSeats":[]}
//   → {"type":"heartbeat"}                                    no reply
//
// Every occupancy frame is acknowledged once it is applied to the live model (not once it is in
// the database; that is batched). `ref` is the gateway's own frame id, echoed so it can resend
// unacknowledged frames after a reconnect; readings are idempotent and ordered by `at`, so a
// resend changes nothing that already happened. A frame is validated whole before any reading in
// it is applied: one bad reading refuses the frame with INVALID_ARGUMENT and the connection lives
// on. An unknown key, or anything but hello first, gets one error frame and the connection closes;
// so does a hello from an address with too many wrong keys lately (RESOURCE_EXHAUSTED with
// retryAfterMs, before any key lookup).
import type { FrameError } from '../codec/index.js';
import { encodeFrame } from '../codec/index.js';
import type { CloseReason, Connection, ConnectionHandler } from '../net/connection.js';
import type { Logger } from '../obs/log.js';
import { ErrorCode } from '../errors.js';
import type { ReadingOutcome } from '../core/liveSeats.js';
import type { KeyVerdict } from './sensorKeys.js';

/** What a sensor session feeds; the real-time service implements it. */
export interface SensorSink {
  now(): number;
  reading(seatId: number, occupied: boolean, atMs: number, sensorId: string): ReadingOutcome;
  heartbeat(seatIds: Iterable<number>): void;
  /** Refuses a wrong key, or any key from an address locked for too many wrong ones (src/sensors/sensorKeys.ts). */
  checkKey(key: string, remoteAddress: string, sensorId: string): Promise<KeyVerdict>;
}

export interface SensorSessionOptions {
  maxReadingsPerFrame: number;
  maxClockSkewMs: number;
  offlineAfterMs: number;
  onClose?: (s: SensorSession) => void;
}

const SENSOR_ID = /^[\w.:@/-]{1,64}$/;
const MAX_KEY = 256;
const MAX_AT_CHARS = 40;
const MAX_REF_CHARS = 64;

export function sensorError(code: ErrorCode, message: string, ref?: unknown, extra?: Record<string, unknown>): Buffer {
  return encodeFrame({ type: 'error', code, message, ...(ref === undefined ? {} : { ref }), ...extra });
}

export class SensorSession implements ConnectionHandler {
  private phase: 'hello' | 'checking' | 'ready' | 'closed' = 'hello';
  sensorId = '';
  /** Seats this connection has reported: a heartbeat is proof of life for these. Bounded by known seats. */
  private readonly seats = new Set<number>();
  framesIn = 0;
  readingsIn = 0;

  constructor(
    readonly conn: Connection,
    private readonly sink: SensorSink,
    private readonly opts: SensorSessionOptions,
    private readonly log: Logger,
  ) {
    conn.start(this);
  }

  onMessage(m: Record<string, unknown>): void {
    this.framesIn++;
    if (this.phase === 'closed') return;
    if (this.phase !== 'ready') {
      if (this.phase === 'hello' && m.type === 'hello') return this.hello(m);
      // Anything but hello first, or a second frame while the key is checked: refuse and close.
      return this.refuse(ErrorCode.UNAUTHENTICATED, 'send {"type":"hello","sensorId":…,"key":…} first');
    }
    switch (m.type) {
      case 'occupancy':
        return this.occupancy(m);
      case 'heartbeat':
        this.sink.heartbeat(this.seats);
        return;
      case 'hello':
        return this.reply(sensorError(ErrorCode.INVALID_REQUEST, 'already said hello'));
      default:
        return this.reply(sensorError(ErrorCode.INVALID_REQUEST, 'type must be "occupancy" or "heartbeat"'));
    }
  }

  onFrameError(error: FrameError): void {
    if (this.phase === 'closed') return;
    if (this.phase !== 'ready') return this.refuse(ErrorCode.BAD_FRAME, error.message);
    this.reply(sensorError(ErrorCode.BAD_FRAME, error.message));
  }

  onDrain(): void {
    if (this.phase === 'ready') this.conn.resumeReading();
  }

  onClose(_reason: CloseReason): void {
    this.phase = 'closed';
    this.opts.onClose?.(this);
  }

  private hello(m: Record<string, unknown>): void {
    const { sensorId, key } = m;
    if (typeof sensorId !== 'string' || !SENSOR_ID.test(sensorId)) {
      return this.refuse(ErrorCode.INVALID_ARGUMENT, 'sensorId must be 1-64 characters of letters, digits and ._:@/-');
    }
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY) {
      return this.refuse(ErrorCode.INVALID_ARGUMENT, `key must be a string of 1-${MAX_KEY} characters`);
    }
    this.phase = 'checking';
    // Nothing is read while the key is checked, so no reading can slip in before it is known.
    this.conn.pauseReading();
    this.sink.checkKey(key, this.conn.remoteAddress, sensorId).then(
      (verdict) => {
        if (this.phase !== 'checking') return;
        // The keyring logs refusals, once per address per window (not one line per attempt).
        if (!verdict.ok && verdict.code === 'RESOURCE_EXHAUSTED') {
          const { retryAfterMs } = verdict;
          return this.refuse(ErrorCode.RESOURCE_EXHAUSTED, `too many wrong sensor keys from this address; retry in ${Math.ceil(retryAfterMs / 1000)} s`, { retryAfterMs });
        }
        if (!verdict.ok) return this.refuse(ErrorCode.PERMISSION_DENIED, 'unknown or revoked sensor key');
        this.phase = 'ready';
        this.sensorId = sensorId;
        this.reply(
          encodeFrame({ type: 'welcome', sensorId, maxReadingsPerFrame: this.opts.maxReadingsPerFrame, offlineAfterMs: this.opts.offlineAfterMs }),
        );
        this.conn.resumeReading();
      },
      (err: unknown) => {
        if (this.phase !== 'checking') return;
        this.log.warn({ err: (err as Error).message }, 'sensor key check failed');
        this.refuse(ErrorCode.UNAVAILABLE, 'cannot check the key right now; retry');
      },
    );
  }

  private occupancy(m: Record<string, unknown>): void {
    const ref = m.ref;
    if (ref !== undefined && !(typeof ref === 'number' && Number.isSafeInteger(ref)) && !(typeof ref === 'string' && ref.length <= MAX_REF_CHARS)) {
      return this.reply(sensorError(ErrorCode.INVALID_ARGUMENT, `ref must be an integer or a string of at most ${MAX_REF_CHARS} characters`));
    }
    const readings = m.readings;
    if (!Array.isArray(readings) || readings.length === 0) {
      return this.reply(sensorError(ErrorCode.INVALID_ARGUMENT, 'readings must be a non-empty array', ref));
    }
    if (readings.length > this.opts.maxReadingsPerFrame) {
      return this.reply(
        sensorError(ErrorCode.INVALID_ARGUMENT, `at most ${this.opts.maxReadingsPerFrame} readings per frame (sensors.maxReadingsPerFrame)`, ref),
      );
    }
    const latestAllowed = this.sink.now() + this.opts.maxClockSkewMs;
    const times = new Array<number>(readings.length);
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i] as Record<string, unknown> | null;
      const problem = checkReading(r, latestAllowed);
      if (typeof problem === 'string') {
        return this.reply(sensorError(ErrorCode.INVALID_ARGUMENT, `readings[${i}]: ${problem}`, ref));
      }
      times[i] = problem;
    }
    let applied = 0;
    let stale = 0;
    let unknownSeats: number[] | undefined;
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i] as { seatId: number; occupied: boolean };
      const outcome = this.sink.reading(r.seatId, r.occupied, times[i]!, this.sensorId);
      if (outcome === 'applied') {
        applied++;
        this.seats.add(r.seatId);
      } else if (outcome === 'stale') {
        stale++;
        this.seats.add(r.seatId);
      } else {
        (unknownSeats ??= []).push(r.seatId);
      }
    }
    this.readingsIn += readings.length;
    this.reply(encodeFrame({ type: 'ack', ref: ref ?? null, applied, stale, unknownSeats: unknownSeats ?? [] }));
  }

  private reply(frame: Buffer): void {
    // A gateway that does not read its acks is not allowed to make us buffer them: stop reading.
    if (!this.conn.send(frame)) this.conn.pauseReading();
  }

  private refuse(code: ErrorCode, message: string, extra?: Record<string, unknown>): void {
    this.phase = 'closed';
    this.conn.close('server', sensorError(code, message, undefined, extra));
  }
}

/** The reading's time in ms, or what is wrong with it. */
function checkReading(r: Record<string, unknown> | null, latestAllowedMs: number): number | string {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return 'must be an object';
  const { seatId, occupied, at } = r;
  if (typeof seatId !== 'number' || !Number.isSafeInteger(seatId) || seatId <= 0 || seatId > 2_147_483_647) {
    return 'seatId must be a positive integer';
  }
  if (typeof occupied !== 'boolean') return 'occupied must be true or false';
  if (typeof at !== 'string' || at.length > MAX_AT_CHARS) return 'at must be an ISO-8601 time';
  const ms = Date.parse(at);
  if (!Number.isFinite(ms) || ms <= 0) return 'at must be an ISO-8601 time';
  if (ms > latestAllowedMs) return 'at is in the future (beyond sensors.maxClockSkewMs)';
  return ms;
}
