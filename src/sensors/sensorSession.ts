// One sensor (or sensor gateway) connection on the sensor port (docs/sensors.md).
//
//   → {"type":"hello","sensorId":"gw-main-2","key":"…"}      first, always
//   ← {"type":"welcome","sensorId":"gw-main-2","maxReadingsPerFrame":500,"offlineAfterMs":120000,…}
//   → {"type":"occupancy","ref":17,"readings":[{"seatId":12,"occupied":true,"at":"…"}]}
//   ← {"type":"ack","ref":17,"applied":1,"stale":0,"refused":{},"unknownSeats":[]}
//   → {"type":"heartbeat"}                                    no reply
//
// Every occupancy frame is acknowledged once it is applied to the live model (not once it is in
// the database; that is batched). `ref` is the gateway's own frame id, echoed so it can resend
// unacknowledged frames after a reconnect. Each reading stands alone: one that is malformed, whose
// `at` is not RFC 3339 or lies outside [now - maxAgeMs, now + maxClockSkewMs], whose seat is
// unknown or outside the key's branch is refused with a per-reading code, listed in the ack's
// `refused` as code → indexes into the frame, and the frame's other readings apply. The ack holds
// at most one index per reading (and an unknown seat's id once), so it stays bounded by
// sensors.maxReadingsPerFrame. A frame that is not a list of 1..maxReadingsPerFrame readings is
// refused whole with INVALID_ARGUMENT and the connection lives on. An unknown key, or anything but hello first, gets one error frame and
// the connection closes; so does a hello from an address with too many wrong keys lately
// (RESOURCE_EXHAUSTED with retryAfterMs, before any key lookup), and a connection whose key is
// revoked while it is open (PERMISSION_DENIED).
import type { FrameError } from '../codec/index.js';
import { encodeFrame } from '../codec/index.js';
import type { CloseReason, Connection, ConnectionHandler } from '../net/connection.js';
import type { Logger } from '../obs/log.js';
import { ErrorCode } from '../errors.js';
import { encodeErrorFrame } from '../net/errorFrame.js';
import { ReadingCode, type AckFrame, type WelcomeFrame } from '../wire/types.js';
import type { ReadingOutcome } from '../core/liveSeats.js';
import type { KeyVerdict } from './sensorKeys.js';
import { MAX_AT_CHARS, parseRfc3339 } from './readingTime.js';

/** Who may write through a connection, from its key: one branch, or every branch (null). */
export interface KeyScope {
  /** The sensor_keys row, when the key came from the table (null: from config); revocation closes its connections. */
  keyId: number | null;
  branchId: number | null;
}

/** What a sensor session feeds; the real-time service implements it. */
export interface SensorSink {
  now(): number;
  /** Applies one reading that passed the `at` window, received now; `at` is the gateway's own stamp. */
  reading(seatId: number, occupied: boolean, atMs: number, sensorId: string, scopeBranchId: number | null): ReadingOutcome;
  heartbeat(seatIds: Iterable<number>): void;
  /** Refuses a wrong key, or any key from an address locked for too many wrong ones (src/sensors/sensorKeys.ts). */
  checkKey(key: string, remoteAddress: string, sensorId: string): Promise<KeyVerdict>;
  /** Counts a frame's refused readings, by code (for /metrics). */
  refused?(code: ReadingCode, count: number): void;
}

export interface SensorSessionOptions {
  maxReadingsPerFrame: number;
  maxAgeMs: number;
  maxClockSkewMs: number;
  offlineAfterMs: number;
  onClose?: (s: SensorSession) => void;
}

const SENSOR_ID = /^[\w.:@/-]{1,64}$/;
const MAX_KEY = 256;
const MAX_REF_CHARS = 64;

/** An error frame on this port, answering the occupancy frame whose `ref` is given. */
function sensorError(code: ErrorCode, message: string, ref?: unknown, details?: Record<string, unknown>): Buffer {
  return encodeErrorFrame('sensor', details === undefined ? { code, message } : { code, message, details }, ref);
}

export class SensorSession implements ConnectionHandler {
  private phase: 'hello' | 'checking' | 'ready' | 'closed' = 'hello';
  sensorId = '';
  /** What the hello's key may write; set once the key is accepted. */
  scope: KeyScope | undefined;
  /** Seats this connection has reported: a heartbeat is proof of life for these. Bounded by known seats. */
  private readonly seats = new Set<number>();
  framesIn = 0;
  readingsIn = 0;
  /** The `at` codes already logged for this connection (at most three). */
  private readonly loggedCodes = new Set<ReadingCode>();

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

  /** The key this connection said hello with was revoked: one error frame, then close. */
  revoked(): void {
    if (this.phase === 'closed') return;
    this.refuse(ErrorCode.PERMISSION_DENIED, 'this sensor key was revoked');
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
        this.scope = { keyId: verdict.keyId, branchId: verdict.branchId };
        // The window and the server's time, so a gateway can see its own clock is off before its readings are refused.
        this.reply(
          encodeFrame({
            type: 'welcome',
            sensorId,
            branchId: verdict.branchId,
            maxReadingsPerFrame: this.opts.maxReadingsPerFrame,
            offlineAfterMs: this.opts.offlineAfterMs,
            maxAgeMs: this.opts.maxAgeMs,
            maxClockSkewMs: this.opts.maxClockSkewMs,
            serverTime: new Date(this.sink.now()).toISOString(),
          } satisfies WelcomeFrame),
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
    const now = this.sink.now();
    const window = { earliestMs: now - this.opts.maxAgeMs, latestMs: now + this.opts.maxClockSkewMs };
    const scopeBranchId = this.scope?.branchId ?? null;
    let applied = 0;
    let stale = 0;
    const refused: Partial<Record<ReadingCode, number[]>> = {};
    let unknownSeats: Set<number> | undefined;
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i] as Record<string, unknown> | null;
      const checked = checkReading(r, window);
      if (typeof checked === 'string') {
        (refused[checked] ??= []).push(i);
        continue;
      }
      const { seatId, occupied } = r as { seatId: number; occupied: boolean };
      const outcome = this.sink.reading(seatId, occupied, checked, this.sensorId, scopeBranchId);
      if (outcome === 'applied' || outcome === 'stale') {
        if (outcome === 'applied') applied++;
        else stale++;
        this.seats.add(seatId);
      } else if (outcome === 'outOfScope') {
        (refused.OUT_OF_SCOPE ??= []).push(i);
      } else {
        (refused.UNKNOWN_SEAT ??= []).push(i);
        (unknownSeats ??= new Set()).add(seatId);
      }
    }
    this.readingsIn += readings.length;
    for (const code of Object.keys(refused) as ReadingCode[]) this.noteRefused(code, refused[code]!.length, readings[refused[code]![0]!]);
    // unknownSeats (the seat ids, once each) predates `refused` and stays for gateways that read it.
    const ack: AckFrame = { type: 'ack', ref: (ref ?? null) as AckFrame['ref'], applied, stale, refused, unknownSeats: unknownSeats ? [...unknownSeats] : [] };
    this.reply(encodeFrame(ack));
  }

  /**
   * Counts refusals; the first of each `at` code on a connection is logged once, with the offending
   * value: a gateway whose clock is off sees it in every ack, its operator in one log line.
   */
  private noteRefused(code: ReadingCode, count: number, example: unknown): void {
    this.sink.refused?.(code, count);
    if (code !== ReadingCode.AT_NOT_RFC3339 && code !== ReadingCode.AT_TOO_OLD && code !== ReadingCode.AT_IN_FUTURE) return;
    if (this.loggedCodes.has(code)) return;
    this.loggedCodes.add(code);
    const at = (example as { at?: unknown } | null)?.at;
    this.log.info(
      { sensorId: this.sensorId, remote: this.conn.remoteAddress, code, at: typeof at === 'string' ? at.slice(0, MAX_AT_CHARS) : typeof at, serverTime: new Date(this.sink.now()).toISOString() },
      'sensor readings refused for their time',
    );
  }

  private reply(frame: Buffer): void {
    // A gateway that does not read its acks is not allowed to make us buffer them: stop reading.
    if (!this.conn.send(frame)) this.conn.pauseReading();
  }

  private refuse(code: ErrorCode, message: string, details?: Record<string, unknown>): void {
    this.phase = 'closed';
    this.conn.close('server', sensorError(code, message, undefined, details));
  }
}

/** The reading's `at` in ms when it is well formed and inside the window, or why it is refused. */
function checkReading(r: Record<string, unknown> | null, window: { earliestMs: number; latestMs: number }): number | ReadingCode {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return ReadingCode.INVALID_READING;
  const { seatId, occupied, at } = r;
  if (typeof seatId !== 'number' || !Number.isSafeInteger(seatId) || seatId <= 0 || seatId > 2_147_483_647) return ReadingCode.INVALID_READING;
  if (typeof occupied !== 'boolean') return ReadingCode.INVALID_READING;
  const ms = typeof at === 'string' && at.length <= MAX_AT_CHARS ? parseRfc3339(at) : undefined;
  if (ms === undefined) return ReadingCode.AT_NOT_RFC3339;
  if (ms < window.earliestMs) return ReadingCode.AT_TOO_OLD;
  if (ms > window.latestMs) return ReadingCode.AT_IN_FUTURE;
  return ms;
}
