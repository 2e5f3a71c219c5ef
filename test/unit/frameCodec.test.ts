import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameDecoder, RawJson, encodeFrame, encodeJsonText, encodeSpliced, type Decoded } from '../../src/codec/index.js';

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
    const body = new RawJson(JSON.stringify([{ label: 'Q-01 Ärger ☕', n: 1 }]));
    for (const id of ['7', '"zwölf-✓"']) {
      const parts = encodeSpliced(`{"rpcId":${id},"result":`, body.bytes, ',"error":null}');
      expect(Array.isArray(parts)).toBe(true);
      const whole = Buffer.concat(parts as Buffer[]);
      expect(whole).toEqual(encodeJsonText(`{"rpcId":${id},"result":${body.json},"error":null}`));
      expect((parts as Buffer[])[1]).toBe(body.bytes);
    }
  });
});
