import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameDecoder, encodeFrame, encodeJsonText, encodeSpliced, type Decoded } from '../../src/codec/index.js';

const MAX = 1024 * 1024;

function drain(decoder: FrameDecoder): Decoded[] {
  const out: Decoded[] = [];
  for (let d = decoder.next(); d; d = decoder.next()) out.push(d);
  return out;
}

function rawFrame(payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length);
  return Buffer.concat([header, payload]);
}

/** Splits bytes at the given cut points (sorted, deduplicated, in range). */
function chunk(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

const jsonObject = fc.dictionary(
  fc.string({ maxLength: 12 }),
  fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 5 })),
  { maxKeys: 6 },
);

describe('frame codec', () => {
  it('any chunking of any sequence of frames decodes to the same messages', () => {
    fc.assert(
      fc.property(fc.array(jsonObject, { minLength: 1, maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (messages, cuts) => {
        const bytes = Buffer.concat(messages.map((m) => encodeFrame(m)));
        const decoder = new FrameDecoder({ maxFrameBytes: MAX });
        const out: Decoded[] = [];
        for (const piece of chunk(bytes, cuts)) {
          decoder.push(piece);
          out.push(...drain(decoder));
        }
        expect(out.map((d) => (d.kind === 'message' ? d.value : d))).toEqual(messages.map((m) => JSON.parse(JSON.stringify(m))));
        expect(decoder.pendingBytes).toBe(0);
      }),
      { seed: 20261123, numRuns: 300 },
    );
  });

  it('a multi-byte character split across reads decodes whole', () => {
    const frame = encodeFrame({ name: 'Zoë 🪑 Bibliothèque' });
    const decoder = new FrameDecoder({ maxFrameBytes: MAX });
    const out: Decoded[] = [];
    for (let i = 0; i < frame.length; i++) {
      decoder.push(frame.subarray(i, i + 1));
      out.push(...drain(decoder));
    }
    expect(out).toEqual([{ kind: 'message', value: { name: 'Zoë 🪑 Bibliothèque' }, bytes: frame.length - 4 }]);
  });

  it('a header split in two waits for the rest', () => {
    const frame = encodeFrame({ a: 1 });
    const decoder = new FrameDecoder({ maxFrameBytes: MAX });
    decoder.push(frame.subarray(0, 2));
    expect(decoder.next()).toBeUndefined();
    decoder.push(frame.subarray(2, 3));
    expect(decoder.next()).toBeUndefined();
    decoder.push(frame.subarray(3));
    expect(decoder.next()).toMatchObject({ kind: 'message', value: { a: 1 } });
  });

  it('a zero-length frame is a recoverable error and the next frame still decodes', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: MAX });
    decoder.push(Buffer.concat([Buffer.alloc(4), encodeFrame({ ok: true })]));
    const out = drain(decoder);
    expect(out[0]).toMatchObject({ kind: 'error', reason: 'EMPTY_FRAME', recoverable: true });
    expect(out[1]).toMatchObject({ kind: 'message', value: { ok: true } });
  });

  it('an oversized length is refused at the header, before the payload arrives, and is fatal', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1000 });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1001);
    decoder.push(header);
    expect(decoder.next()).toMatchObject({ kind: 'error', reason: 'FRAME_TOO_LARGE', recoverable: false });
    decoder.push(encodeFrame({ after: 1 }));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.broken).toBe(true);
  });

  it('a frame of exactly the limit is accepted', () => {
    const payload = Buffer.from(JSON.stringify({ s: 'x'.repeat(1000 - 8) }));
    expect(payload.length).toBe(1000);
    const decoder = new FrameDecoder({ maxFrameBytes: 1000 });
    decoder.push(rawFrame(payload));
    expect(decoder.next()).toMatchObject({ kind: 'message' });
  });

  it('a truncated frame yields nothing and stays pending', () => {
    const frame = encodeFrame({ hello: 'world' });
    const decoder = new FrameDecoder({ maxFrameBytes: MAX });
    decoder.push(frame.subarray(0, frame.length - 1));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.pendingBytes).toBe(frame.length - 1);
  });

  it.each([
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'INVALID_UTF8'],
    ['an overlong UTF-8 encoding', Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]), 'INVALID_UTF8'],
    ['invalid JSON', Buffer.from('{"a":'), 'INVALID_JSON'],
    ['a JSON array', Buffer.from('[1,2,3]'), 'NOT_AN_OBJECT'],
    ['a JSON string', Buffer.from('"hi"'), 'NOT_AN_OBJECT'],
    ['JSON null', Buffer.from('null'), 'NOT_AN_OBJECT'],
    ['a JSON number', Buffer.from('42'), 'NOT_AN_OBJECT'],
    ['deeply nested JSON', Buffer.from(`{"a":${'['.repeat(100)}${']'.repeat(100)}}`), 'TOO_DEEP'],
  ])('%s is a recoverable error and the stream carries on', (_name, payload, reason) => {
    const decoder = new FrameDecoder({ maxFrameBytes: MAX, maxDepth: 32 });
    decoder.push(Buffer.concat([rawFrame(payload), encodeFrame({ next: true })]));
    const out = drain(decoder);
    expect(out[0]).toMatchObject({ kind: 'error', reason, recoverable: true });
    expect(out[1]).toMatchObject({ kind: 'message', value: { next: true } });
  });

  it('brackets inside strings do not count towards nesting depth', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: MAX, maxDepth: 4 });
    decoder.push(encodeFrame({ s: '[[[[[[[[[[{{{{{{{{ \\" [[[[' }));
    expect(decoder.next()).toMatchObject({ kind: 'message' });
  });

  it('__proto__ keys stay plain data and pollute nothing', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: MAX });
    decoder.push(rawFrame(Buffer.from('{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}')));
    const d = decoder.next();
    expect(d?.kind).toBe('message');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('encodeFrame writes a big-endian byte length of the UTF-8 payload', () => {
    const frame = encodeFrame({ k: 'é' });
    expect(frame.readUInt32BE(0)).toBe(Buffer.byteLength('{"k":"é"}'));
    expect(frame.subarray(4).toString('utf8')).toBe('{"k":"é"}');
  });
});

describe('encodeSpliced', () => {
  it('frames prefix + pre-encoded body + suffix exactly as the whole text would be framed, sharing the body', () => {
    const text = JSON.stringify([{ label: 'Q-01 Ärger ☕', n: 1 }]);
    const body = { bytes: Buffer.from(text, 'utf8') };
    for (const id of ['7', '"zwölf-✓"']) {
      const parts = encodeSpliced(`{"rpcId":${id},"result":`, body.bytes, ',"error":null}');
      expect(Array.isArray(parts)).toBe(true);
      const whole = Buffer.concat(parts as Buffer[]);
      expect(whole).toEqual(encodeJsonText(`{"rpcId":${id},"result":${text},"error":null}`));
      expect((parts as Buffer[])[1]).toBe(body.bytes);
    }
  });
});

// ---- error cases under any chunking, and what the decoder holds ------------------------------

type Expected = { kind: 'message'; value: unknown } | { kind: 'error'; reason: string; recoverable: boolean };
interface Case {
  bytes: Buffer;
  expect: Expected;
}

const LIMIT = 4096;
const DEPTH = 32;
const header = (n: number): Buffer => {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(n);
  return h;
};
const err = (reason: string, recoverable = true): Expected => ({ kind: 'error', reason, recoverable });

// Each arbitrary builds a frame whose outcome is known by construction, not by asking the decoder.
const validFrame: fc.Arbitrary<Case> = jsonObject.map((v) => ({ bytes: encodeFrame(v), expect: { kind: 'message', value: JSON.parse(JSON.stringify(v)) } }));
const zeroLength: fc.Arbitrary<Case> = fc.constant({ bytes: header(0), expect: err('EMPTY_FRAME') });
// 0xff never occurs in UTF-8, and UTF-8 is checked before anything else.
const badUtf8: fc.Arbitrary<Case> = fc
  .tuple(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }))
  .map(([a, b]) => ({ bytes: rawFrame(Buffer.concat([Buffer.from(a), Buffer.from([0xff]), Buffer.from(b)])), expect: err('INVALID_UTF8') }));
// A proper prefix of an object's JSON text (cut between characters, so it stays UTF-8) never parses.
const badJson: fc.Arbitrary<Case> = fc
  .tuple(jsonObject, fc.nat())
  .map(([v, cut]) => {
    const text = [...JSON.stringify(v)];
    return { bytes: rawFrame(Buffer.from(text.slice(0, 1 + (cut % (text.length - 1))).join(''))), expect: err('INVALID_JSON') };
  });
const notAnObject: fc.Arbitrary<Case> = fc
  .jsonValue({ maxDepth: 3 })
  .filter((v) => v === null || typeof v !== 'object' || Array.isArray(v))
  .map((v) => ({ bytes: rawFrame(Buffer.from(JSON.stringify(v))), expect: err('NOT_AN_OBJECT') }));
const tooDeep: fc.Arbitrary<Case> = fc
  .integer({ min: DEPTH, max: 300 })
  .map((d) => ({ bytes: rawFrame(Buffer.from(`{"a":${'['.repeat(d)}${']'.repeat(d)}}`)), expect: err('TOO_DEEP') }));
/** The stream's last frame: its length is over the limit, so framing is lost and nothing after it decodes. */
const oversized: fc.Arbitrary<Case> = fc
  .tuple(fc.integer({ min: LIMIT + 1, max: 0xffffffff }), fc.uint8Array({ maxLength: 64 }), jsonObject)
  .map(([n, junk, after]) => ({ bytes: Buffer.concat([header(n), Buffer.from(junk), encodeFrame(after)]), expect: err('FRAME_TOO_LARGE', false) }));

const stream = fc
  .tuple(
    fc.array(fc.oneof(validFrame, zeroLength, badUtf8, badJson, notAnObject, tooDeep), { minLength: 1, maxLength: 12 }),
    fc.option(oversized, { nil: undefined }),
  )
  .map(([cases, last]) => (last ? [...cases, last] : cases));

const view = (d: Decoded): Expected =>
  d.kind === 'message' ? { kind: 'message', value: d.value } : { kind: 'error', reason: d.reason, recoverable: d.recoverable };

describe('frame codec: errors under any chunking', () => {
  it('zero, oversized, bad UTF-8, bad JSON, non-object and too-deep frames give the same errors under any chunking', () => {
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 40 }), (cases, cuts) => {
        const bytes = Buffer.concat(cases.map((c) => c.bytes));
        const decoder = new FrameDecoder({ maxFrameBytes: LIMIT, maxDepth: DEPTH });
        const out: Expected[] = [];
        for (const piece of chunk(bytes, cuts)) {
          decoder.push(piece);
          out.push(...drain(decoder).map(view));
        }
        expect(out).toEqual(cases.map((c) => c.expect));
        const fatal = cases[cases.length - 1]!.expect.kind === 'error' && !(cases[cases.length - 1]!.expect as { recoverable: boolean }).recoverable;
        expect(decoder.broken).toBe(fatal);
        expect(decoder.pendingBytes).toBe(0);
        expect(decoder.heldBytes).toBe(0);
      }),
      { seed: 20260214, numRuns: 400 },
    );
  });

  it('one byte at a time gives the same results as one read', () => {
    fc.assert(
      fc.property(stream, (cases) => {
        const bytes = Buffer.concat(cases.map((c) => c.bytes));
        const whole = new FrameDecoder({ maxFrameBytes: LIMIT, maxDepth: DEPTH });
        whole.push(bytes);
        const dribbled = new FrameDecoder({ maxFrameBytes: LIMIT, maxDepth: DEPTH });
        const out: Decoded[] = [];
        for (let i = 0; i < bytes.length; i++) {
          dribbled.push(bytes.subarray(i, i + 1));
          out.push(...drain(dribbled));
        }
        expect(out.map(view)).toEqual(drain(whole).map(view));
      }),
      { seed: 20260215, numRuns: 60 },
    );
  });

  it('between reads the decoder holds at most twice the unfinished bytes (or 256), whatever the chunking', () => {
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 40 }), (cases, cuts) => {
        const decoder = new FrameDecoder({ maxFrameBytes: LIMIT, maxDepth: DEPTH });
        for (const piece of chunk(Buffer.concat(cases.map((c) => c.bytes)), cuts)) {
          decoder.push(piece);
          drain(decoder);
          expect(decoder.heldBytes).toBeLessThanOrEqual(Math.max(2 * decoder.pendingBytes, 256));
          expect(decoder.pendingBytes).toBeLessThan(4 + LIMIT);
        }
      }),
      { seed: 20260216, numRuns: 300 },
    );
  });
});

describe('frame codec: memory follows the bytes that arrived', () => {
  it('a header that declares a large frame allocates nothing near its size', () => {
    const before = process.memoryUsage().arrayBuffers;
    const decoders: FrameDecoder[] = [];
    for (let i = 0; i < 1000; i++) {
      const d = new FrameDecoder({ maxFrameBytes: MAX });
      d.push(Buffer.concat([header(MAX), Buffer.from('{"a":"')]));
      expect(d.next()).toBeUndefined();
      expect(d.heldBytes).toBeLessThanOrEqual(256);
      decoders.push(d);
    }
    // 1,000 frames of 1 MiB declared: allocating up front would be 1 GiB.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * 1024);
    expect(decoders).toHaveLength(1000);
  });

  it('a frame dribbled a byte at a time grows its buffer geometrically and decodes whole', () => {
    const body = Buffer.from(JSON.stringify({ s: 'x'.repeat(30_000) }));
    const frame = rawFrame(body);
    const decoder = new FrameDecoder({ maxFrameBytes: MAX });
    let result: Decoded | undefined;
    let worst = 0;
    for (let i = 0; i < frame.length; i++) {
      decoder.push(Buffer.from(frame.subarray(i, i + 1)));
      result = decoder.next() ?? result;
      if (i < frame.length - 1) worst = Math.max(worst, decoder.heldBytes / Math.max(2 * (i + 1), 256));
    }
    expect(worst).toBeLessThanOrEqual(1);
    expect(result).toMatchObject({ kind: 'message', bytes: body.length });
    expect(decoder.heldBytes).toBe(0);
  });

  it('an unfinished frame pins neither the read it arrived in nor the reads that followed', async () => {
    const v8 = await import('node:v8');
    const vm = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const decoder = new FrameDecoder({ maxFrameBytes: MAX });
    const refs: WeakRef<ArrayBuffer>[] = [];
    (() => {
      // A 64 KiB read of whole frames that ends with the first 10 bytes of another.
      const frames = Buffer.concat([...Array.from({ length: 1000 }, (_, i) => encodeFrame({ i, pad: 'p'.repeat(40) })), header(1000), Buffer.from('{"rpcId"')]);
      const read = Buffer.from(frames); // its own backing store, as a socket read has
      refs.push(new WeakRef(read.buffer));
      decoder.push(read);
      expect(drain(decoder)).toHaveLength(1000);
      for (let i = 0; i < 50; i++) {
        const tiny = Buffer.from(new ArrayBuffer(1)).fill(0x20); // not from the shared pool
        refs.push(new WeakRef(tiny.buffer));
        decoder.push(tiny);
        expect(decoder.next()).toBeUndefined();
      }
    })();
    expect(decoder.pendingBytes).toBe(4 + 8 + 50);
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  });

  it('discard() drops what is buffered and ignores what follows', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: MAX });
    decoder.push(encodeFrame({ a: 1 }).subarray(0, 6));
    expect(decoder.next()).toBeUndefined();
    decoder.discard();
    expect(decoder.heldBytes).toBe(0);
    expect(decoder.broken).toBe(true);
    decoder.push(encodeFrame({ b: 2 }));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.pendingBytes).toBe(0);
  });
});
