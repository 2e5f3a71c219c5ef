// Building blocks for the per-port fuzz runs (sensorFuzz, subscriberBadInput): hostile strings,
// frames broken in each way docs/protocol.md ("Framing") names, and lengths that lie. Each
// arbitrary says what its frame does to the connection, so the runner (fuzz.ts) knows what to
// expect.
import fc from 'fast-check';
import { ErrorCode } from '../../src/errors.js';
import { rawFrame } from './peer.js';

/** What must never reach a peer: stack frames, source paths, SQL error text. */
export const LEAK =
  /\n\s+at |\bat [\w.<>]+ \(|\.[cm]?[jt]s:\d|node_modules|\/work\/|\/src\/|\/home\/|syntax error at or near|violates|SQLSTATE|duplicate key|relation "|column "|invalid byte sequence/;

/** The closed set of wire codes, minus INTERNAL, which bad input must never cause. */
export const INPUT_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode).filter((c) => c !== 'INTERNAL'));

export const SQLISH = ["'; DROP TABLE seats; --", '1 OR 1=1', "admin'--", "' UNION SELECT key_sha256 FROM sensor_keys --", '$1', '%', '\\x00', 'pg_sleep(10)', 'nul\u0000byte'];
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty'];

/** Strings a peer might send, none of which happens to look like a leak when echoed back. */
export function hostileText(maxLength: number): fc.Arbitrary<string> {
  return fc
    .oneof(fc.string({ maxLength }), fc.string({ maxLength, unit: 'binary' }), fc.constantFrom(...SQLISH, ...PROTO_KEYS))
    .filter((s) => !LEAK.test(s));
}

export const anyJson = fc.jsonValue({ maxDepth: 3 }).filter((v) => !LEAK.test(JSON.stringify(v)));

export function header(n: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(n);
  return h;
}

/** JSON text with raw "key": value pairs appended, so keys such as __proto__ reach the wire as keys. */
export function withKeys(body: string, extra: ReadonlyArray<readonly [string, unknown]>): string {
  let out = body;
  for (const [k, v] of extra) out = `${out.slice(0, -1)}${out.length > 2 ? ',' : ''}${JSON.stringify(k)}:${JSON.stringify(v)}}`;
  return out;
}

export interface BrokenFrame {
  bytes: Buffer;
  label: string;
}

/** Frames whose boundary is known but whose content is not a JSON object: each earns BAD_FRAME. */
export function recoverableBadFrames(maxDepth: number): fc.Arbitrary<BrokenFrame> {
  return fc.oneof(
    fc.constant({ bytes: header(0), label: 'zero length' }),
    fc
      .tuple(fc.uint8Array({ maxLength: 30 }), fc.uint8Array({ maxLength: 30 }))
      .map(([a, b]) => ({ bytes: rawFrame(Buffer.concat([Buffer.from('{"type":"'), Buffer.from(a), Buffer.from([0xc3, 0x28]), Buffer.from(b), Buffer.from('"}')])), label: 'invalid UTF-8' })),
    fc.constantFrom('{"type":', '{"type":"ping"', "{'type':'ping'}", '{"type":"ping",}', '{type:1}', 'NaN', '{"a":01}').map((t) => ({ bytes: rawFrame(t), label: `invalid JSON ${t}` })),
    anyJson.filter((v) => v === null || typeof v !== 'object' || Array.isArray(v)).map((v) => ({ bytes: rawFrame(JSON.stringify(v)), label: `not an object ${JSON.stringify(v).slice(0, 40)}` })),
    fc.integer({ min: maxDepth, max: 3000 }).map((d) => ({ bytes: rawFrame(`{"type":"x","a":${'['.repeat(d)}${']'.repeat(d)}}`), label: `depth ${d + 1}` })),
    // Random bytes that cannot open a JSON object (an object is the one thing that would parse).
    fc.uint8Array({ minLength: 1, maxLength: 48 }).filter((b) => Buffer.from(b).toString('latin1').trimStart()[0] !== '{').map((b) => ({ bytes: rawFrame(Buffer.from(b)), label: `bytes ${Buffer.from(b).toString('hex')}` })),
  );
}

/** A length over the port's limit: one BAD_FRAME, then the connection closes. */
export function oversized(limit: number): fc.Arbitrary<BrokenFrame> {
  return fc
    .tuple(fc.oneof(fc.integer({ min: limit + 1, max: limit + 1000 }), fc.integer({ min: limit + 1, max: 0xffffffff })), fc.uint8Array({ maxLength: 16 }))
    .map(([n, junk]) => ({ bytes: Buffer.concat([header(n), Buffer.from(junk)]), label: `oversized length ${n}` }));
}

/**
 * A frame whose length lies (short: the rest of the payload is read as the next header; long:
 * what follows is swallowed into it) or is cut short: the frame boundary is lost.
 */
export function lyingFrames(limit: number): fc.Arbitrary<BrokenFrame> {
  const body = fc.constantFrom('{"type":"ping"}', '{"type":"heartbeat"}', '{"type":"subscribe","branch":"Main Library"}', '{"type":"occupancy","readings":[]}');
  return fc.oneof(
    fc.tuple(body, fc.nat()).map(([b, k]) => {
      const n = 1 + (k % (b.length - 1));
      return { bytes: Buffer.concat([header(n), Buffer.from(b)]), label: `length ${n} for ${b.length} bytes` };
    }),
    fc.tuple(body, fc.integer({ min: 1, max: 200 })).map(([b, extra]) => ({
      bytes: Buffer.concat([header(Math.min(limit, b.length + extra)), Buffer.from(b)]),
      label: `length ${b.length + extra} for ${b.length} bytes`,
    })),
    fc.tuple(body, fc.nat()).map(([b, k]) => {
      const frame = rawFrame(b);
      const cut = 1 + (k % (frame.length - 1));
      return { bytes: frame.subarray(0, cut), label: `truncated at ${cut} of ${frame.length}` };
    }),
  );
}
