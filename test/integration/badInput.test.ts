// Bad input against the RPC port over real sockets: a table of known attacks, each
// with its code (docs/protocol.md, "Error codes"), then a generated fuzz run with a fixed seed.
// Throughout, the server must answer with a stable code, never leak a stack trace, SQL or a file
// path, keep serving, and end with no connections and a bounded heap.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import { defineMethod } from '../../src/rpc/registry.js';
import { Db } from '../../src/db/db.js';
import { ErrorCode } from '../../src/errors.js';
import { insertUser } from '../support/fixtures.js';
import { RawPeer, rawFrame } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { fuzzPort, settledHeapBytes, waitFor, type FrameProtocol, type FuzzFrame, type Reply } from '../support/fuzz.js';

const CODES = new Set<string>(Object.values(ErrorCode));
/** What must never reach a peer: stack frames, source paths, SQL error text. */
const LEAK = /\n\s+at |\bat [\w.<>]+ \(|\.[cm]?[jt]s:\d|node_modules|\/work\/|\/src\/|\/home\/|syntax error at or near|violates|SQLSTATE|duplicate key|relation "|column "|invalid byte sequence/;

let t: TestServer;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  t = await startTestServer({ limits: { partialFrameTimeoutMs: 300, requestTimeoutMs: 2000 } });
  t.registry.add(
    defineMethod({
      name: 'test.db',
      access: 'public',
      args: z.strictObject({ q: z.string().max(256), seatId: z.number().int().optional() }),
      summary: 'a parameterised query with caller text, as booking methods will run',
      handler: async ({ q, seatId }) => {
        const r = await new Db(t.db.pool).query<{ n: number }>('SELECT length($1::text) AS n, $2::int AS id', [q, seatId ?? null]);
        return { n: r.rows[0]!.n };
      },
    }),
    defineMethod({ name: 'test.admin', access: 'admin', args: z.unknown(), summary: 'admin only', handler: () => 'ok' }),
  );
  const secret = t.config.auth.jwtSecret;
  // A real account: a token whose account does not exist is UNAUTHENTICATED (docs/rules.md).
  const user = await insertUser(t.db.pool, 'Seven');
  const claims = { sub: String(user.id), sid: user.studentId, role: 'admin' };
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  tokens.valid = t.tokens.issue(user).token;
  tokens.expired = jwt.sign({ ...claims, role: 'student', exp: Math.floor(Date.now() / 1000) - 60 }, secret, { algorithm: 'HS256' });
  tokens.forged = jwt.sign(claims, 'not-the-server-secret-at-all', { algorithm: 'HS256' });
  tokens.algNone = jwt.sign(claims, '', { algorithm: 'none' });
  tokens.hs512 = jwt.sign(claims, secret, { algorithm: 'HS512' });
  tokens.rs256 = jwt.sign(claims, privateKey, { algorithm: 'RS256' });
  tokens.badRole = jwt.sign({ ...claims, role: 'superuser' }, secret, { algorithm: 'HS256' });
  tokens.badSub = jwt.sign({ ...claims, sub: 'admin' }, secret, { algorithm: 'HS256' });
  // The valid token's header and payload with the signature cut off, and with an admin payload swapped in.
  const [h, , s] = tokens.valid.split('.');
  tokens.unsigned = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
  tokens.swapped = `${h}.${Buffer.from(JSON.stringify({ ...claims, exp: 9e9 })).toString('base64url')}.${s}`;
  tokens.garbage = 'not.a.jwt';
});
afterAll(async () => t?.close());

function checkReply(r: Reply): void {
  expect(Object.keys(r).sort()).toEqual(['error', 'result', 'rpcId']);
  const text = JSON.stringify(r);
  expect(text, 'reply leaks internals').not.toMatch(LEAK);
  if (r.error !== null) {
    const e = r.error as { code: unknown; message: unknown; details?: unknown };
    expect(CODES.has(e.code as string), `code ${String(e.code)}`).toBe(true);
    expect(typeof e.message).toBe('string');
    expect(r.result).toBeNull();
  }
}

/** Sends payloads (framed truthfully) plus a PING, returns the replies in order of rpcId/arrival. */
async function exchange(frames: Buffer[]): Promise<Reply[]> {
  const peer = await RawPeer.connect(t.server.ports.rpc);
  peer.write(Buffer.concat([...frames, rawFrame(JSON.stringify({ rpcId: 'probe', method: 'PING' }))]));
  const replies = await peer.waitFrames(frames.length + 1);
  peer.destroy();
  for (const r of replies) checkReply(r);
  const probe = replies.find((r) => r.rpcId === 'probe');
  expect(probe, 'the connection still serves after the bad input').toMatchObject({ result: 'PONG', error: null });
  return replies.filter((r) => r !== probe);
}

const codeOf = (r: Reply | undefined): string | null => ((r?.error as { code: string } | null) ?? null)?.code ?? null;

describe('bad input, case by case', () => {
  it.each([
    ['a zero length', Buffer.alloc(4)],
    ['invalid UTF-8', rawFrame(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]))],
    ['an overlong UTF-8 encoding', rawFrame(Buffer.from([0x7b, 0xc0, 0xaf, 0x7d]))],
    ['invalid JSON', rawFrame('{"rpcId": 1, "method": "PING",')],
    ['a JSON array', rawFrame('[{"rpcId":1,"method":"PING"}]')],
    ['a JSON string', rawFrame('"PING"')],
    ['a JSON number', rawFrame('42')],
    ['JSON null', rawFrame('null')],
    ['deep nesting (10,000 levels)', rawFrame(`{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`)],
    ['a million open brackets', rawFrame('['.repeat(1_000_000))],
  ])('%s is BAD_FRAME and the connection lives on', async (_name, frame) => {
    const [reply] = await exchange([frame]);
    expect(reply).toMatchObject({ rpcId: null, result: null, error: { code: 'BAD_FRAME' } });
  });

  it.each([
    ['no rpcId', { method: 'PING' }, 'INVALID_REQUEST'],
    ['a fractional rpcId', { rpcId: 1.5, method: 'PING' }, 'INVALID_REQUEST'],
    ['an object rpcId', { rpcId: { $gt: 0 }, method: 'PING' }, 'INVALID_REQUEST'],
    ['a 10 KB string rpcId', { rpcId: 'x'.repeat(10_000), method: 'PING' }, 'INVALID_REQUEST'],
    ['no method', { rpcId: 1 }, 'INVALID_REQUEST'],
    ['a numeric method', { rpcId: 1, method: 7 }, 'INVALID_REQUEST'],
    ['a 100 KB method name', { rpcId: 1, method: 'm'.repeat(100_000) }, 'INVALID_REQUEST'],
    ['args that is an object', { rpcId: 1, method: 'PING', args: { a: 1 } }, 'INVALID_REQUEST'],
    ['args with 100,000 items', { rpcId: 1, method: 'PING', args: new Array(100_000).fill(0) }, 'INVALID_REQUEST'],
    ['an unknown method', { rpcId: 1, method: 'seats.delete' }, 'UNKNOWN_METHOD'],
    ['method __proto__', { rpcId: 1, method: '__proto__' }, 'UNKNOWN_METHOD'],
    ['method constructor', { rpcId: 1, method: 'constructor' }, 'UNKNOWN_METHOD'],
    ['method toString', { rpcId: 1, method: 'toString' }, 'UNKNOWN_METHOD'],
    ['method hasOwnProperty', { rpcId: 1, method: 'hasOwnProperty' }, 'UNKNOWN_METHOD'],
    ['an SQL-looking method', { rpcId: 1, method: "seats.list'; DROP TABLE seats; --" }, 'UNKNOWN_METHOD'],
    ['args[0] missing a field', { rpcId: 1, method: 'test.db', args: [{}] }, 'INVALID_ARGUMENT'],
    ['args[0] ill-typed', { rpcId: 1, method: 'test.db', args: [{ q: 42 }] }, 'INVALID_ARGUMENT'],
    ['args[0] with an unknown field', { rpcId: 1, method: 'test.db', args: [{ q: 'a', admin: true }] }, 'INVALID_ARGUMENT'],
    ['a 500 KB string argument', { rpcId: 1, method: 'test.db', args: [{ q: 'q'.repeat(500_000) }] }, 'INVALID_ARGUMENT'],
    ['a 100,000-item array argument', { rpcId: 1, method: 'test.db', args: [new Array(100_000).fill('x')] }, 'INVALID_ARGUMENT'],
    ['an integer argument past 2^53', { rpcId: 1, method: 'test.db', args: [{ q: 'a', seatId: 2 ** 60 }] }, 'INVALID_ARGUMENT'],
    ['a token that is a number', { rpcId: 1, method: 'PING', token: 42 }, 'INVALID_REQUEST'],
    ['a 5,000-character token', { rpcId: 1, method: 'PING', token: 'x'.repeat(5000) }, 'INVALID_REQUEST'],
    ['server.stats without a token', { rpcId: 1, method: 'server.stats' }, 'UNAUTHENTICATED'],
  ].map(([name, request, code]) => [name, code, request] as const))('%s is %s', async (_name, code, request) => {
    const [reply] = await exchange([rawFrame(JSON.stringify(request))]);
    expect(codeOf(reply)).toBe(code);
  });

  it.each(['expired', 'forged', 'algNone', 'hs512', 'rs256', 'badRole', 'badSub', 'unsigned', 'swapped', 'garbage'])(
    'a %s token is UNAUTHENTICATED, even for a public method, and is never adopted',
    async (kind) => {
      const [a, b, c] = await exchange([
        rawFrame(JSON.stringify({ rpcId: 1, method: 'test.admin', token: tokens[kind] })),
        rawFrame(JSON.stringify({ rpcId: 2, method: 'PING', token: tokens[kind] })),
        rawFrame(JSON.stringify({ rpcId: 3, method: 'server.stats' })),
      ]);
      expect([codeOf(a), codeOf(b), codeOf(c)]).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED']);
    },
  );

  it('a valid student token reaches user methods but not admin ones', async () => {
    // Replies come in completion order (server.stats asks the users table): matched by rpcId.
    const replies = await exchange([
      rawFrame(JSON.stringify({ rpcId: 1, method: 'server.stats', token: tokens.valid })),
      rawFrame(JSON.stringify({ rpcId: 2, method: 'test.admin', token: tokens.valid })),
    ]);
    const [stats, admin] = [1, 2].map((id) => replies.find((r) => r.rpcId === id));
    expect(codeOf(stats)).toBeNull();
    expect(codeOf(admin)).toBe('PERMISSION_DENIED');
  });

  it('prototype-pollution keys are plain data: nothing is polluted and no access is gained', async () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    const replies = await exchange([
      rawFrame('{"rpcId":1,"method":"PING","__proto__":{"polluted":"yes","method":"test.admin"}}'),
      rawFrame('{"rpcId":2,"method":"test.admin","__proto__":{"token":"x","user":{"role":"admin"}}}'),
      rawFrame('{"rpcId":3,"method":"test.db","args":[{"__proto__":{"q":"from-proto"}}]}'),
      rawFrame('{"rpcId":4,"method":"test.db","args":[{"q":"a","constructor":{"prototype":{"polluted":"yes"}}}]}'),
      rawFrame('{"rpcId":5,"method":"test.db","args":[{"q":"a","__proto__":null}]}'),
      rawFrame('{"rpcId":6,"method":"server.stats","constructor":{"prototype":{"user":{"id":1,"role":"admin"}}}}'),
    ]);
    const byId = new Map(replies.map((r) => [r.rpcId, r]));
    expect(byId.get(1)).toMatchObject({ result: 'PONG' });
    expect(codeOf(byId.get(2))).toBe('UNAUTHENTICATED');
    expect(codeOf(byId.get(3))).toBe('INVALID_ARGUMENT');
    expect(codeOf(byId.get(4))).toBe('INVALID_ARGUMENT');
    expect(codeOf(byId.get(5))).toBe('INVALID_ARGUMENT');
    expect(codeOf(byId.get(6))).toBe('UNAUTHENTICATED');
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('SQL-looking strings are data: they reach PostgreSQL as parameters and come back as lengths', async () => {
    const inputs = ["'; DROP TABLE users; --", '1 OR 1=1', "' UNION SELECT password FROM users --", '$1', '\\', 'ユーザー', '😀'.repeat(50)];
    const replies = await exchange(inputs.map((q, i) => rawFrame(JSON.stringify({ rpcId: i, method: 'test.db', args: [{ q }] }))));
    for (const r of replies) expect(r.result).toEqual({ n: [...inputs[r.rpcId as number]!].length });
    const tables = await t.db.pool.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'users'");
    expect(tables.rows[0].n).toBe(1);
  });

  it('a NUL character (which PostgreSQL text cannot hold) is INVALID_ARGUMENT, not INTERNAL', async () => {
    const [reply] = await exchange([rawFrame(JSON.stringify({ rpcId: 1, method: 'test.db', args: [{ q: 'a\u0000b' }] }))]);
    expect(codeOf(reply)).toBe('INVALID_ARGUMENT');
  });

  it('text that is not well-formed Unicode (a lone surrogate) is INVALID_ARGUMENT at the envelope, for any method and any field', async () => {
    // Written as JSON escapes, the only way a lone surrogate gets past the fatal UTF-8 decoder.
    const frames = [
      '{"rpcId":1,"method":"test.db","args":[{"q":"a\\ud800b"}]}',
      '{"rpcId":2,"method":"test.db","args":[{"q":"\\udc00"}]}',
      '{"rpcId":3,"method":"PING","args":[{"deep":[[{"x":"\\udbff"}]]}]}',
      '{"rpcId":4,"method":"PING","token":"x.y.\\ud800"}',
      '{"rpcId":"id-\\ud800","method":"PING"}',
      '{"rpcId":6,"method":"server.stats","args":[{"k\\ud800":1}]}',
      '{"rpcId":7,"method":"auth.login","args":[{"studentId":"\\ud800","password":"whatever1"}]}',
      // A surrogate pair is one well-formed character: it reaches the method.
      '{"rpcId":8,"method":"test.db","args":[{"q":"\\ud83d\\ude00"}]}',
    ];
    const replies = await exchange(frames.map((f) => rawFrame(f)));
    const byId = new Map(replies.map((r) => [JSON.stringify(r.rpcId), r]));
    for (const id of ['1', '2', '3', '4', '"id-\\ud800"', '6', '7']) {
      expect(codeOf(byId.get(id)), `request ${id}`).toBe('INVALID_ARGUMENT');
    }
    expect((byId.get('1')!.error as { details: unknown }).details).toEqual({ path: 'args[0].q' });
    expect((byId.get('4')!.error as { details: unknown }).details).toEqual({ path: 'token' });
    expect(byId.get('8')).toMatchObject({ result: { n: 1 }, error: null });
  });

  it('an oversized length gets one BAD_FRAME and the connection closes', async () => {
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7b]));
    await peer.closed;
    expect(peer.frames).toEqual([{ rpcId: null, result: null, error: { code: 'BAD_FRAME', message: expect.any(String) } }]);
  });

  it('a length that lies short splits the frame: BAD_FRAME for the piece, then the rest is read as a huge length and the connection closes', async () => {
    const peer = await RawPeer.connect(t.server.ports.rpc);
    const body = Buffer.from('{"rpcId":1,"method":"PING"}');
    const header = Buffer.alloc(4);
    header.writeUInt32BE(5);
    peer.write(Buffer.concat([header, body]));
    await peer.closed;
    expect(peer.frames.map(codeOf)).toEqual(['BAD_FRAME', 'BAD_FRAME']);
  });

  it('a length that lies long (the bytes never come) is closed at limits.partialFrameTimeoutMs without a reply', async () => {
    const peer = await RawPeer.connect(t.server.ports.rpc);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(100);
    const started = Date.now();
    peer.write(Buffer.concat([header, Buffer.from('{"rpcId":1,')]));
    await peer.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(peer.frames).toEqual([]);
  });

  it('truncated frames followed by a hang-up leave no connection behind', async () => {
    const frame = rawFrame(JSON.stringify({ rpcId: 1, method: 'PING' }));
    for (const cut of [1, 3, 4, 5, frame.length - 1]) {
      const peer = await RawPeer.connect(t.server.ports.rpc);
      peer.write(frame.subarray(0, cut));
      peer.socket.end();
      await peer.closed;
      expect(peer.frames).toEqual([]);
    }
    await waitFor(() => t.connectionCount === 0, 2000, 'connections to close');
  });
});

// ---- generated input ----------------------------------------------------------------------

const known = ['PING', 'server.info', 'server.stats', 'test.db', 'test.admin'];
const sqlish = ["'; DROP TABLE users; --", '1 OR 1=1', "admin'--", '$1', '%', '\\x00', 'pg_sleep(10)', 'nul\u0000byte'];
const protoKeys = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty'];
const text = (maxLength: number) =>
  fc.oneof(fc.string({ maxLength }), fc.string({ maxLength, unit: 'binary' }), fc.constantFrom(...sqlish, ...protoKeys));
const json = fc.jsonValue({ maxDepth: 3 });

function isReplyTo(id: number | string | null, codes: ReadonlySet<string>, okAllowed: boolean) {
  return (r: Reply): boolean => {
    if (r.rpcId !== id) return false;
    const code = codeOf(r);
    return code === null ? okAllowed : codes.has(code);
  };
}

const NOT_OURS = new Set([...CODES].filter((c) => c !== 'INTERNAL' && c !== 'BAD_FRAME'));
const frameOnly = new Set(['BAD_FRAME']);

/** A request with a good rpcId and fuzzed everything else, as JSON text (so __proto__ keys survive). */
const request: fc.Arbitrary<FuzzFrame> = fc
  .record({
    id: fc.integer({ min: 1, max: 1_000_000 }),
    method: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: text(40) }),
    args: fc.option(
      fc.oneof(
        fc.tuple(fc.record({ q: fc.oneof(text(300), json), seatId: fc.oneof(fc.integer(), fc.double(), json) }, { requiredKeys: [] })),
        fc.array(json, { maxLength: 10 }),
        json,
      ),
      { nil: undefined },
    ),
    token: fc.option(fc.oneof(fc.constantFrom('valid', 'expired', 'forged', 'algNone', 'hs512', 'rs256', 'badRole', 'unsigned', 'swapped', 'garbage'), fc.string({ maxLength: 20 }).map((s) => `raw:${s}`)), { nil: undefined }),
    extra: fc.array(fc.tuple(fc.constantFrom(...protoKeys, 'user', 'role', 'rpcId2'), json), { maxLength: 3 }),
  })
  .map(({ id, method, args, token, extra }) => {
    const base: Record<string, unknown> = { rpcId: id, method };
    if (args !== undefined) base.args = args;
    if (token !== undefined) base.token = token.startsWith('raw:') ? token.slice(4) : tokens[token];
    let body = JSON.stringify(base);
    for (const [k, v] of extra) body = `${body.slice(0, -1)},${JSON.stringify(k)}:${JSON.stringify(v)}}`;
    return { bytes: rawFrame(body), replies: 1, accepts: isReplyTo(id, NOT_OURS, true), label: `request ${body.slice(0, 120)}` };
  });

/** Well-formed calls whose text is hostile: it must reach PostgreSQL as data and never cause INTERNAL. */
const dbCall: fc.Arbitrary<FuzzFrame> = fc
  .record({ id: fc.integer({ min: 1, max: 1_000_000 }), q: text(256), seatId: fc.option(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { nil: undefined }) })
  .map(({ id, q, seatId }) => {
    const body = JSON.stringify({ rpcId: id, method: 'test.db', args: [{ q, seatId }] });
    return { bytes: rawFrame(body), replies: 1, accepts: isReplyTo(id, new Set(['INVALID_ARGUMENT']), true), label: `db ${body.slice(0, 120)}` };
  });

const badId: fc.Arbitrary<FuzzFrame> = fc
  .oneof(fc.double({ noInteger: true }), fc.boolean(), fc.constant(null), fc.constant(''), fc.array(json, { maxLength: 3 }), fc.string({ minLength: 129, maxLength: 200 }))
  .map((rpcId) => ({
    bytes: rawFrame(JSON.stringify({ rpcId, method: 'PING' })),
    replies: 1,
    accepts: isReplyTo(null, new Set(['INVALID_REQUEST']), false),
    label: `bad rpcId ${JSON.stringify(rpcId)?.slice(0, 40)}`,
  }));

const notAnObject: fc.Arbitrary<FuzzFrame> = json
  .filter((v) => v === null || typeof v !== 'object' || Array.isArray(v))
  .map((v) => ({ bytes: rawFrame(JSON.stringify(v)), replies: 1, accepts: isReplyTo(null, frameOnly, false), label: `not an object ${JSON.stringify(v).slice(0, 40)}` }));

const tooDeep: fc.Arbitrary<FuzzFrame> = fc.integer({ min: 33, max: 5000 }).map((d) => ({
  bytes: rawFrame(`{"rpcId":1,"method":"PING","args":[${'['.repeat(d)}${']'.repeat(d)}]}`),
  replies: 1,
  accepts: isReplyTo(null, frameOnly, false),
  label: `depth ${d}`,
}));

// Random bytes framed truthfully: almost always BAD_FRAME; the rare valid JSON object without a
// good rpcId is INVALID_REQUEST.
const randomBytes: fc.Arbitrary<FuzzFrame> = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => ({
  bytes: rawFrame(Buffer.from(b)),
  replies: 1,
  accepts: isReplyTo(null, new Set(['BAD_FRAME', 'INVALID_REQUEST']), false),
  label: `bytes ${Buffer.from(b).toString('hex')}`,
}));

const empty: fc.Arbitrary<FuzzFrame> = fc.constant({ bytes: Buffer.alloc(4), replies: 1, accepts: isReplyTo(null, frameOnly, false), label: 'empty' });

const rpcProtocol = (): FrameProtocol => ({
  name: 'rpc',
  cases: fc.array(
    fc.oneof(
      { weight: 6, arbitrary: request },
      { weight: 2, arbitrary: dbCall },
      { weight: 1, arbitrary: badId },
      { weight: 1, arbitrary: notAnObject },
      { weight: 1, arbitrary: tooDeep },
      { weight: 1, arbitrary: randomBytes },
      { weight: 1, arbitrary: empty },
    ),
    { minLength: 1, maxLength: 6 },
  ),
  probe: { bytes: rawFrame('{"rpcId":"probe","method":"PING"}'), isReply: (r) => r.rpcId === 'probe' && r.result === 'PONG' },
  checkReply,
});

describe('generated bad input (fast-check, fixed seed)', () => {
  it('thousands of generated frames: stable codes, never INTERNAL, no leaks, bounded heap, no connections left', async () => {
    const heapBefore = await settledHeapBytes();
    const rssBefore = process.memoryUsage.rss();
    const run = await fuzzPort(t.server.ports.rpc, rpcProtocol(), { seed: 20260105, numRuns: 800 });
    expect(run.frames).toBeGreaterThan(2000);
    await waitFor(() => t.connectionCount === 0, 3000, 'connections to close');
    const heapGrowth = (await settledHeapBytes()) - heapBefore;
    expect(heapGrowth).toBeLessThan(32 * 1024 * 1024);
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(256 * 1024 * 1024);
    expect(t.obs.stats().requests.errors.INTERNAL ?? 0).toBe(0);
  });

  it('arbitrary byte streams in arbitrary chunks never crash the server; each connection ends cleanly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 1, maxLength: 48 }), { minLength: 1, maxLength: 6 }), async (chunks) => {
        const peer = await RawPeer.connect(t.server.ports.rpc);
        for (const c of chunks) peer.write(Buffer.from(c));
        peer.socket.end(); // we are done; the server must finish and close its side too
        await peer.closed;
        for (const r of peer.frames) checkReply(r);
        for (const r of peer.frames) expect(r.rpcId === null || typeof r.rpcId === 'number' || typeof r.rpcId === 'string').toBe(true);
      }),
      { seed: 7, numRuns: 200 },
    );
    await waitFor(() => t.connectionCount === 0, 3000, 'connections to close');
    const peer = await RawPeer.connect(t.server.ports.rpc);
    peer.send({ rpcId: 1, method: 'PING' });
    expect((await peer.waitFrames(1))[0]).toMatchObject({ result: 'PONG' });
    peer.destroy();
  });
});
