// Bad input on the sensor port (docs/protocol.md, "Sensor port"), generated with a fixed seed:
// first frames that are not a good hello (each refused with its code, then the connection
// closes), and after a good hello, occupancy frames with ill-typed, huge, nested, out-of-range,
// SQL-looking and prototype-polluting readings and refs, heartbeats, unknown types, broken
// frames and lying lengths. Each frame's outcome is known by construction, down to the
// per-reading code of every refused reading (docs/sensors.md); every reply is
// checked for shape, code and leaks; the connection lives on wherever the frame boundary is
// known; the server answers afterwards, sees no unhandled rejection and ends with bounded memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RawPeer, rawFrame } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { fuzzPort, settledHeapBytes, waitFor, type FrameProtocol, type FuzzFrame, type Reply } from '../support/fuzz.js';
import { INPUT_CODES, LEAK, PROTO_KEYS, SQLISH, anyJson, hostileText, lyingFrames, oversized, recoverableBadFrames, withKeys } from '../support/fuzzFrames.js';

const SENSOR_FRAME_LIMIT = 128 * 1024;
let t: TestServer;
let knownSeats: number[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  // Every case comes from 127.0.0.1: the wrong-key throttle (sensorHello.test.ts) would turn the
  // codes under test into RESOURCE_EXHAUSTED after ten of them, so it is out of the way here.
  t = await startTestServer({
    lifecycle: { enabled: false },
    limits: { partialFrameTimeoutMs: 2000 },
    // A wide `at` window, so readings generated at the start are still inside it at the end.
    sensors: { helloThrottle: { freeFailures: 1_000_000 }, maxAgeMs: 2 * 3_600_000 },
  });
  knownSeats = (await t.db.pool.query<{ id: number }>('SELECT id FROM seats ORDER BY id')).rows.map((r) => r.id);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await t?.close();
});

const WELCOME_KEYS = ['branchId', 'maxAgeMs', 'maxClockSkewMs', 'maxReadingsPerFrame', 'offlineAfterMs', 'sensorId', 'serverTime', 'type'];
const ACK_KEYS = ['applied', 'ref', 'refused', 'stale', 'type', 'unknownSeats'];

function checkReply(r: Reply): void {
  const { ref, ...rest } = r; // ref is the sensor's own, echoed: not ours to judge for leaks
  expect(JSON.stringify(rest), 'reply leaks internals').not.toMatch(LEAK);
  if (r.type === 'error') {
    expect(INPUT_CODES.has(r.code as string), `code ${String(r.code)}`).toBe(true);
    expect(typeof r.message).toBe('string');
    expect((r.message as string).length).toBeLessThan(300);
    for (const k of Object.keys(r)) expect(['type', 'code', 'message', 'ref']).toContain(k);
    if (ref !== undefined) expect(typeof ref === 'string' || Number.isSafeInteger(ref)).toBe(true);
  } else if (r.type === 'ack') {
    expect(Object.keys(r).sort()).toEqual(ACK_KEYS);
  } else {
    expect(r.type).toBe('welcome');
    expect(Object.keys(r).sort()).toEqual(WELCOME_KEYS);
  }
}

const isError = (code: string, ref?: unknown) => (r: Reply): boolean =>
  r.type === 'error' && r.code === code && (ref === undefined ? !('ref' in r) : r.ref === ref);

function frame(body: string | Buffer, replies: number, accepts: (r: Reply) => boolean, label: string, effect?: FuzzFrame['effect']): FuzzFrame {
  return { bytes: Buffer.isBuffer(body) ? body : rawFrame(body), replies, accepts, label: label.slice(0, 160), effect };
}

const GOOD_HELLO = frame(JSON.stringify({ type: 'hello', sensorId: 'gw-fuzz', key: 'dev-sensor-key' }), 1, (r) => r.type === 'welcome' && r.sensorId === 'gw-fuzz', 'hello');
const extraKeys = fc.array(fc.tuple(fc.constantFrom(...PROTO_KEYS, 'type', 'key', 'sensorId', 'seatId'), anyJson), { maxLength: 2 });

// ---- before hello: every first frame but a good hello is refused and the connection closes ----

const SENSOR_ID = /^[\w.:@/-]{1,64}$/;
const badSensorId = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom('', 'x'.repeat(65), 'gw main', 'gw-ü', "gw'; DROP TABLE sensor_keys; --", '../../etc/passwd?', 'gw\n2'),
  hostileText(80).filter((s) => !SENSOR_ID.test(s)),
  anyJson.filter((v) => typeof v !== 'string'),
);
const badKeyShape = fc.oneof(fc.constant(undefined), fc.constant(''), fc.constant('k'.repeat(257)), anyJson.filter((v) => typeof v !== 'string'));
const unknownKey = fc.oneof(
  fc.constantFrom('wrong-key', 'dev-sensor-key ', 'DEV-SENSOR-KEY', ' dev-sensor-key', 'dev-sensor-key\u0000', ...SQLISH, ...PROTO_KEYS),
  hostileText(256).filter((s) => s.length > 0 && s.length <= 256 && s !== 'dev-sensor-key'),
);

function hello(fields: Record<string, unknown>, extra: ReadonlyArray<readonly [string, unknown]>): string {
  return withKeys(JSON.stringify({ type: 'hello', ...fields }), extra);
}

const refusedFirst: fc.Arbitrary<FuzzFrame> = fc.oneof(
  fc.tuple(badSensorId, fc.constant('dev-sensor-key')).map(([sensorId, key]) =>
    frame(JSON.stringify({ type: 'hello', sensorId, key }), 1, isError('INVALID_ARGUMENT'), `hello sensorId ${JSON.stringify(sensorId)}`, 'closes'),
  ),
  badKeyShape.map((key) => frame(JSON.stringify({ type: 'hello', sensorId: 'gw-1', key }), 1, isError('INVALID_ARGUMENT'), `hello key ${JSON.stringify(key)?.slice(0, 40)}`, 'closes')),
  fc.tuple(unknownKey, extraKeys.map((e) => e.filter(([k]) => k !== 'type' && k !== 'key' && k !== 'sensorId'))).map(([key, extra]) =>
    frame(hello({ sensorId: 'gw-1', key }, extra), 1, isError('PERMISSION_DENIED'), `hello unknown key ${JSON.stringify(key).slice(0, 40)}`, 'closes'),
  ),
  // The good key only inside __proto__: it is not the message's key.
  fc.constant(frame('{"type":"hello","sensorId":"gw-1","__proto__":{"key":"dev-sensor-key"}}', 1, isError('INVALID_ARGUMENT'), 'key under __proto__', 'closes')),
  fc.constant(frame('{"__proto__":{"type":"hello"},"sensorId":"gw-1","key":"dev-sensor-key"}', 1, isError('UNAUTHENTICATED'), 'type under __proto__', 'closes')),
  fc
    .oneof(
      fc.constantFrom({ type: 'occupancy', readings: [{ seatId: 1, occupied: true, at: new Date().toISOString() }] }, { type: 'heartbeat' }, { type: 'Hello' }, { type: 'subscribe', branch: '*' }, {}),
      fc.record({ type: fc.oneof(hostileText(20), anyJson).filter((type) => type !== 'hello') }),
    )
    .map((m) => frame(JSON.stringify(m), 1, isError('UNAUTHENTICATED'), `before hello ${JSON.stringify(m).slice(0, 60)}`, 'closes')),
  recoverableBadFrames(32).map((b) => frame(b.bytes, 1, isError('BAD_FRAME'), `before hello: ${b.label}`, 'closes')),
);

// ---- after hello: occupancy frames whose outcome is known by construction ----

interface Reading {
  value: unknown;
  /** The per-reading code it is refused with, null when valid; the seat's id says whether the server knows it. */
  problem: string | null;
  seatId?: number;
}

const NOW = Date.now();
/** Inside the server's window (maxAgeMs 2 h) for the whole run. */
const validAt = fc.oneof(
  fc.integer({ min: 1, max: 3_600_000 }).map((d) => new Date(NOW - d).toISOString()),
  fc.integer({ min: 1, max: 3_600_000 }).map((d) => new Date(NOW - d).toISOString().replace('Z', '+00:00')),
);
const badAt: fc.Arbitrary<{ at: unknown; code: string }> = fc.oneof(
  fc.constantFrom(new Date(NOW + 3_600_000).toISOString(), '3000-01-01T00:00:00Z').map((at) => ({ at, code: 'AT_IN_FUTURE' })),
  fc.constantFrom('1970-01-01T00:00:00Z', '1969-07-20T20:17:00Z', new Date(NOW - 3 * 86_400_000).toISOString()).map((at) => ({ at, code: 'AT_TOO_OLD' })),
  fc
    .oneof(
      fc.constantFrom('yesterday', '', 'x'.repeat(41), '2026-13-45T99:99:99Z', '1', new Date(NOW).toUTCString(), '2030-02-30T10:00:00Z', new Date(NOW).toISOString().slice(0, 19)),
      fc.constant('9'.repeat(60_000)),
      hostileText(40).filter((s) => !Number.isFinite(Date.parse(s))),
      anyJson.filter((v) => typeof v !== 'string'),
    )
    .map((at) => ({ at, code: 'AT_NOT_RFC3339' })),
);
const badSeatId = fc.oneof(
  fc.constantFrom(0, -1, 1.5, 2 ** 31, 2 ** 53, 2 ** 60, 1e308, -0.0001),
  fc.integer({ max: 0 }),
  fc.double({ noInteger: true }),
  fc.oneof(fc.constantFrom('12', '1; DROP TABLE seats', '1 OR 1=1'), hostileText(30)),
  anyJson.filter((v) => typeof v !== 'number'),
);
const badOccupied = anyJson.filter((v) => typeof v !== 'boolean');

const reading: fc.Arbitrary<Reading> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.nat(), fc.boolean(), validAt, extraKeys).map(([i, occupied, at, extra]) => {
    const seatId = knownSeats[i % knownSeats.length]!;
    return { value: JSON.parse(withKeys(JSON.stringify({ seatId, occupied, at }), extra.filter(([k]) => k !== 'seatId' && k !== 'type'))) as unknown, problem: null, seatId };
  }) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 1_000_000, max: 2_147_483_647 }), fc.boolean(), validAt).map(([seatId, occupied, at]) => ({ value: { seatId, occupied, at }, problem: null, seatId })) },
  { weight: 1, arbitrary: badSeatId.map((seatId) => ({ value: { seatId, occupied: true, at: new Date(NOW - 1000).toISOString() }, problem: 'INVALID_READING' })) },
  { weight: 1, arbitrary: badOccupied.map((occupied) => ({ value: { seatId: 1, occupied, at: new Date(NOW - 1000).toISOString() }, problem: 'INVALID_READING' })) },
  { weight: 1, arbitrary: badAt.map(({ at, code }) => ({ value: { seatId: 1, occupied: false, at }, problem: code })) },
  { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.integer(), fc.string({ maxLength: 10 }), fc.array(fc.integer(), { maxLength: 3 })).map((value) => ({ value, problem: 'INVALID_READING' })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 28 }).map((d) => ({ value: { seatId: 1, occupied: true, at: JSON.parse(`${'{"a":'.repeat(d)}1${'}'.repeat(d)}`) }, problem: 'AT_NOT_RFC3339' })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom<[unknown, string]>(
        [{ occupied: true, at: new Date(NOW).toISOString() }, 'INVALID_READING'],
        [{ seatId: 1, at: new Date(NOW).toISOString() }, 'INVALID_READING'],
        [{ seatId: 1, occupied: true }, 'AT_NOT_RFC3339'],
        [{}, 'INVALID_READING'],
      )
      .map(([value, problem]) => ({ value, problem })),
  },
);

const goodRef = fc.option(fc.oneof(fc.maxSafeInteger(), fc.stringMatching(/^r-[a-z0-9]{0,60}$/)), { nil: undefined });
const badRef = fc.oneof(fc.constant(null), fc.double({ noInteger: true }), fc.constant(2 ** 60), fc.constant('r'.repeat(65)), fc.boolean(), fc.array(fc.integer(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }));

const occupancy: fc.Arbitrary<FuzzFrame> = fc
  .tuple(
    fc.oneof({ weight: 5, arbitrary: goodRef.map((ref) => ({ ref, bad: false })) }, { weight: 1, arbitrary: badRef.map((ref) => ({ ref: ref as unknown, bad: true })) }),
    fc.oneof(
      { weight: 8, arbitrary: fc.array(reading, { minLength: 1, maxLength: 8 }).map((list) => ({ list })) },
      // More than sensors.maxReadingsPerFrame (500), each of them fine.
      { weight: 1, arbitrary: fc.integer({ min: 501, max: 1500 }).map((n) => ({ list: Array.from({ length: n }, (): Reading => ({ value: { seatId: 1, occupied: true, at: new Date(NOW - 5000).toISOString() }, problem: null, seatId: 1 })) })) },
      { weight: 1, arbitrary: fc.oneof(fc.constant<unknown>([]), fc.constant(undefined), anyJson.filter((v) => !Array.isArray(v))).map((junk) => ({ junk })) },
    ),
    extraKeys.map((e) => e.filter(([k]) => k !== 'type' && k !== 'ref' && k !== 'seatId')),
  )
  .map(([{ ref, bad }, readings, extra]) => {
    const body: Record<string, unknown> = { type: 'occupancy' };
    if (ref !== undefined) body.ref = ref;
    const list = 'list' in readings ? readings.list : undefined;
    if (list) body.readings = list.map((r) => r.value);
    else if ('junk' in readings && readings.junk !== undefined) body.readings = readings.junk;
    const text = withKeys(JSON.stringify(body), extra);
    const label = `occupancy ${text.slice(0, 140)}`;
    // Huge values can take a frame past sensors.maxFrameBytes: refused at the header, then closed.
    if (Buffer.byteLength(text) > SENSOR_FRAME_LIMIT) return frame(text, 1, isError('BAD_FRAME'), `oversized ${label}`, 'closes');
    if (bad) return frame(text, 1, isError('INVALID_ARGUMENT'), label);
    const echoed = ref;
    // Only the frame's own shape refuses it whole; a bad reading is refused alone, with its code.
    if (!list || list.length > 500) return frame(text, 1, isError('INVALID_ARGUMENT', echoed), label);
    const known = new Set(knownSeats);
    const refused: Record<string, number[]> = {};
    const unknown: number[] = [];
    let good = 0;
    list.forEach((r, i) => {
      const code = r.problem ?? (known.has(r.seatId!) ? null : 'UNKNOWN_SEAT');
      if (code) (refused[code] ??= []).push(i);
      else good++;
      if (code === 'UNKNOWN_SEAT' && !unknown.includes(r.seatId!)) unknown.push(r.seatId!);
    });
    const sorted = (o: unknown) => JSON.stringify(Object.entries(o as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)));
    const accepts = (r: Reply): boolean =>
      r.type === 'ack' &&
      r.ref === (echoed ?? null) &&
      (r.applied as number) + (r.stale as number) === good &&
      sorted(r.refused) === sorted(refused) &&
      JSON.stringify(r.unknownSeats) === JSON.stringify(unknown);
    return frame(text, 1, accepts, label);
  });

const heartbeat: fc.Arbitrary<FuzzFrame> = extraKeys
  .map((e) => e.filter(([k]) => k !== 'type'))
  .map((extra) => frame(withKeys('{"type":"heartbeat"}', extra), 0, () => false, 'heartbeat'));

const unknownType: fc.Arbitrary<FuzzFrame> = fc
  .oneof(fc.constantFrom('Occupancy', 'HEARTBEAT', 'welcome', 'ack', 'subscribe', ...PROTO_KEYS, ...SQLISH), hostileText(30), anyJson, fc.constant(undefined))
  .filter((type) => type !== 'occupancy' && type !== 'heartbeat' && type !== 'hello')
  .map((type) => frame(JSON.stringify(type === undefined ? { readings: [] } : { type, ref: 1 }), 1, isError('INVALID_REQUEST'), `type ${JSON.stringify(type)?.slice(0, 40)}`));

const helloAgain = fc.constant(frame(JSON.stringify({ type: 'hello', sensorId: 'gw-fuzz', key: 'dev-sensor-key' }), 1, isError('INVALID_REQUEST'), 'hello again'));

/** Frames after hello that the connection lives through. */
const afterHello: fc.Arbitrary<FuzzFrame> = fc.oneof(
  { weight: 8, arbitrary: occupancy },
  { weight: 1, arbitrary: heartbeat },
  { weight: 1, arbitrary: unknownType },
  { weight: 1, arbitrary: helloAgain },
  { weight: 2, arbitrary: recoverableBadFrames(32).map((b) => frame(b.bytes, 1, isError('BAD_FRAME'), b.label)) },
);
/** A last frame after which the framing is gone: an oversized length, or a length that lies. */
const endOfFraming: fc.Arbitrary<FuzzFrame | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: oversized(SENSOR_FRAME_LIMIT).map((b) => frame(b.bytes, 1, isError('BAD_FRAME'), b.label, 'closes')) },
  { weight: 1, arbitrary: lyingFrames(SENSOR_FRAME_LIMIT).map((b) => frame(b.bytes, 0, () => true, b.label, 'garbles')) },
);

const PROBE = { type: 'occupancy', ref: 'probe', readings: [{ seatId: 0, occupied: true, at: '' }] };

function sensorProtocol(): FrameProtocol {
  PROBE.readings[0] = { seatId: knownSeats[0]!, occupied: true, at: new Date(NOW - 60_000).toISOString() };
  const probeBytes = rawFrame(JSON.stringify(PROBE));
  return {
    name: 'sensor',
    cases: fc.oneof(
      { weight: 1, arbitrary: refusedFirst.map((f) => [f]) },
      { weight: 1, arbitrary: lyingFrames(SENSOR_FRAME_LIMIT).map((b) => [frame(b.bytes, 0, () => true, `first: ${b.label}`, 'garbles')]) },
      { weight: 6, arbitrary: fc.tuple(fc.array(afterHello, { minLength: 1, maxLength: 6 }), endOfFraming).map(([fs, end]) => [GOOD_HELLO, ...fs, ...(end ? [end] : [])]) },
    ),
    probe: { bytes: probeBytes, isReply: (r) => r.type === 'ack' && r.ref === 'probe' },
    checkReply,
    alive: async () => {
      const peer = await RawPeer.connect(t.server.ports.sensor);
      peer.write(Buffer.concat([GOOD_HELLO.bytes, probeBytes]));
      const [welcome, ack] = await peer.waitFrames(2);
      peer.destroy();
      expect(welcome).toMatchObject({ type: 'welcome' });
      expect(ack).toMatchObject({ type: 'ack', ref: 'probe' });
    },
  };
}

describe('generated bad input on the sensor port (fast-check, fixed seed)', () => {
  it('1,500 generated cases: the documented code for each frame, no leaks, the connection lives on where it should, bounded memory', async () => {
    const heapBefore = await settledHeapBytes();
    const rssBefore = process.memoryUsage.rss();
    const run = await fuzzPort(t.server.ports.sensor, sensorProtocol(), { seed: 20260302, numRuns: 1500 });
    expect(run.cases).toBe(1500);
    expect(run.frames).toBeGreaterThan(5000);
    // Every path was taken: refused first frames, lost boundaries, and cases that lived on.
    expect(run.closed).toBeGreaterThan(200);
    expect(run.garbled).toBeGreaterThan(200);
    expect(run.cases - run.closed - run.garbled).toBeGreaterThan(750);
    const listener = t.live.sensorListener;
    await waitFor(() => listener.connections.size === 0, 5000, 'sensor connections to close');
    expect(listener.partialFrames.total).toBe(0);
    expect(t.live.sensorSessionCount).toBe(0);
    expect(unhandled).toEqual([]);
    expect((await settledHeapBytes()) - heapBefore).toBeLessThan(32 * 1024 * 1024);
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(256 * 1024 * 1024);
    // SQL-looking keys and ids were data: the tables are intact.
    const tables = await t.db.pool.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename IN ('seats', 'sensor_keys')");
    expect(tables.rows[0].n).toBe(2);
  }, 60_000);
});
