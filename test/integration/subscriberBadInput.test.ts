// Bad input on the subscriber port (docs/protocol.md, "Subscriber port"): token attacks, case by
// case, then a generated fuzz run with a fixed seed of subscribes with bad branches, since
// values and tokens, pings, unknown types, broken frames and lying lengths. A subscriber is never
// cut off for bad input (only an oversized length closes it); each frame gets its code or its
// documented answer; no reply leaks; the server answers afterwards; memory stays bounded.
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import { RawPeer, rawFrame } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { fuzzPort, settledHeapBytes, waitFor as waitUntil, type FrameProtocol, type FuzzFrame, type Reply } from '../support/fuzz.js';
import { INPUT_CODES, LEAK, PROTO_KEYS, SQLISH, anyJson, hostileText, lyingFrames, oversized, recoverableBadFrames, withKeys } from '../support/fuzzFrames.js';
import { userId, waitFor } from '../support/live.js';

const PUBSUB_FRAME_LIMIT = 32 * 1024;
let t: TestServer;
let branches: Array<{ id: number; name: string }> = [];
let uid = 0;
const tokens: Record<string, string> = {};
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  // No summaries or lifecycle events during the run: every frame a subscriber gets is an answer.
  t = await startTestServer({ lifecycle: { enabled: false }, pubsub: { summaryEveryMs: 600_000 }, limits: { partialFrameTimeoutMs: 2000 } });
  branches = (await t.db.pool.query<{ id: number; name: string }>('SELECT id, name FROM branches ORDER BY id')).rows;
  for (const b of branches) expect(t.live.hub.seqOf(b.id)).toBe(0);
  uid = await userId(t.db.pool, 's1001');

  const secret = t.config.auth.jwtSecret;
  const claims = { sub: String(uid), sid: 's1001', name: 'Ada', role: 'student' };
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const hmac = (alg: string, payload: object, key = secret, hash = 'sha256'): string => {
    const input = `${b64({ alg, typ: 'JWT' })}.${b64(payload)}`;
    return `${input}.${createHmac(hash, key).update(input).digest('base64url')}`;
  };
  const exp = Math.floor(Date.now() / 1000) + 3600;
  tokens.valid = t.tokens.issue({ id: uid, studentId: 's1001', name: 'Ada', role: 'student' }).token;
  tokens.expired = jwt.sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 }, secret, { algorithm: 'HS256' });
  tokens.forged = jwt.sign({ ...claims, exp }, 'not-the-server-secret-at-all', { algorithm: 'HS256' });
  tokens.algNone = jwt.sign({ ...claims, exp }, '', { algorithm: 'none' });
  tokens.algNoneCased = `${b64({ alg: 'NoNe', typ: 'JWT' })}.${b64({ ...claims, exp })}.`;
  tokens.hs512 = jwt.sign({ ...claims, exp }, secret, { algorithm: 'HS512' });
  tokens.hs384 = jwt.sign({ ...claims, exp }, secret, { algorithm: 'HS384' });
  tokens.rs256 = jwt.sign({ ...claims, exp }, privateKey, { algorithm: 'RS256' });
  // The classic confusion: the header says RS256, the signature is an HMAC keyed with the secret.
  tokens.rs256WithSecret = hmac('RS256', { ...claims, exp });
  tokens.hs256Header512Sig = hmac('HS256', { ...claims, exp }, secret, 'sha512');
  tokens.badRole = jwt.sign({ ...claims, role: 'superuser', exp }, secret, { algorithm: 'HS256' });
  tokens.badSub = jwt.sign({ ...claims, sub: 'admin', exp }, secret, { algorithm: 'HS256' });
  tokens.fractionalSub = jwt.sign({ ...claims, sub: '1.5', exp }, secret, { algorithm: 'HS256' });
  tokens.noSid = jwt.sign({ sub: String(uid), role: 'student', exp }, secret, { algorithm: 'HS256' });
  tokens.notYetValid = jwt.sign({ ...claims, exp, nbf: exp - 60 }, secret, { algorithm: 'HS256' });
  const [h, , s] = tokens.valid.split('.');
  tokens.unsigned = `${h}.${b64({ ...claims, role: 'admin', exp })}.`;
  tokens.swapped = `${h}.${b64({ ...claims, role: 'admin', exp: 9e9 })}.${s}`;
  tokens.bearer = `Bearer ${tokens.valid}`;
  tokens.garbage = 'not.a.jwt';
  tokens.dots = '..';
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await t?.close();
});

const BAD_TOKENS = [
  'expired', 'forged', 'algNone', 'algNoneCased', 'hs512', 'hs384', 'rs256', 'rs256WithSecret', 'hs256Header512Sig',
  'badRole', 'badSub', 'fractionalSub', 'noSid', 'notYetValid', 'unsigned', 'swapped', 'bearer', 'garbage', 'dots',
];

function emitPersonal(): void {
  const now = new Date();
  t.coreEvents.emit({
    type: 'personal',
    userId: uid,
    kind: 'offer',
    reservation: { id: 1, seatId: 1, branchId: branches[0]!.id, userId: uid, start: now.toISOString(), end: new Date(now.getTime() + 3_600_000).toISOString(), status: 'OFFERED' },
    at: now.toISOString(),
  });
}

function checkReply(r: Reply): void {
  expect(JSON.stringify(r), 'reply leaks internals').not.toMatch(LEAK);
  expect(['subscribed', 'snapshot', 'seat', 'branch', 'personal', 'pong', 'error']).toContain(r.type);
  if (r.type === 'error') {
    expect(INPUT_CODES.has(r.code as string), `code ${String(r.code)}`).toBe(true);
    expect(typeof r.message).toBe('string');
    // Messages may quote a branch name back (at most 200 characters, JSON-escaped), never more.
    expect((r.message as string).length).toBeLessThan(1500);
    expect(Object.keys(r).sort()).toEqual(['code', 'message', 'type']);
  }
}

describe('token attacks on the subscriber port', () => {
  it.each(BAD_TOKENS)('token %s is UNAUTHENTICATED: no subscription, no personal events, and the connection lives on', async (kind) => {
    const control = await RawPeer.connect(t.server.ports.pubsub);
    control.send({ type: 'subscribe', branch: branches[0]!.name, token: tokens.valid });
    await waitFor(control, (f) => f.type === 'snapshot');
    expect(control.frames[0]).toMatchObject({ type: 'subscribed', personal: true });

    const peer = await RawPeer.connect(t.server.ports.pubsub);
    peer.send({ type: 'subscribe', branch: branches[0]!.name, token: tokens[kind] });
    peer.send({ type: 'ping' });
    const [refusal, pong] = await peer.waitFrames(2);
    expect(refusal).toEqual({ type: 'error', code: 'UNAUTHENTICATED', message: expect.stringMatching(/^token (is invalid|has expired)$/) });
    expect(pong).toEqual({ type: 'pong' });
    // The refused subscribe left nothing behind: a subscribe without a token is the first.
    peer.send({ type: 'subscribe', branch: branches[0]!.name });
    const subscribed = await waitFor(peer, (f) => f.type === 'subscribed', { from: 2 });
    expect(subscribed).toMatchObject({ personal: false });
    await waitFor(peer, (f) => f.type === 'snapshot', { from: 2 });

    emitPersonal();
    await waitFor(control, (f) => f.type === 'personal');
    peer.send({ type: 'ping' });
    await waitFor(peer, (f) => f.type === 'pong', { from: 3 });
    expect(peer.frames.filter((f) => f.type === 'personal')).toEqual([]);
    for (const f of [...peer.frames, ...control.frames]) checkReply(f);
    peer.destroy();
    control.destroy();
  });

  it('ill-typed tokens are INVALID_ARGUMENT and a long one is refused before it is verified', async () => {
    const peer = await RawPeer.connect(t.server.ports.pubsub);
    const bad: unknown[] = [42, '', 'x'.repeat(4097), { alg: 'none' }, ['a.b.c'], true];
    for (const token of bad) peer.send({ type: 'subscribe', branch: '*', token });
    const replies = await peer.waitFrames(bad.length);
    expect(replies.map((r) => r.code)).toEqual(bad.map(() => 'INVALID_ARGUMENT'));
    peer.destroy();
  });
});

// ---- generated input ----------------------------------------------------------------------

type Spec<K extends string> = { kind: K; value: unknown };

interface Scope {
  /** INVALID_ARGUMENT for a bad type, NOT_FOUND for a well-typed branch no one has. */
  problem?: 'INVALID_ARGUMENT' | 'NOT_FOUND';
  all?: boolean;
  ids: number[];
  value: unknown;
}

const branchSpec: fc.Arbitrary<Scope> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.nat(), fc.constantFrom('same', 'lower', 'upper')).map(([i, c]) => {
    const b = branches[i % branches.length]!;
    const value = c === 'same' ? b.name : c === 'lower' ? b.name.toLowerCase() : b.name.toUpperCase();
    return { ids: [b.id], value };
  }) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.boolean()).map(([i, asText]) => {
    const b = branches[i % branches.length]!;
    return { ids: [b.id], value: asText ? String(b.id) : b.id };
  }) },
  { weight: 2, arbitrary: fc.constant({ all: true, ids: [] as number[], value: '*' }) },
  { weight: 2, arbitrary: fc
    .oneof(fc.constant(undefined), fc.constantFrom('', 'b'.repeat(201), 0, -1, 1.5, 2 ** 53, true, null, '0', '00', '2147483648', '9'.repeat(30)), fc.array(anyJson, { maxLength: 3 }), fc.constant(new Array(5000).fill('Main Library')), fc.dictionary(fc.constantFrom(...PROTO_KEYS, 'name'), anyJson, { maxKeys: 2 }), fc.integer({ min: 1, max: 28 }).map((d) => JSON.parse(`${'{"name":'.repeat(d)}"Main Library"${'}'.repeat(d)}`) as unknown))
    .map((value) => ({ problem: 'INVALID_ARGUMENT' as const, ids: [], value })) },
  { weight: 2, arbitrary: fc
    .oneof(fc.constantFrom(...SQLISH, ...PROTO_KEYS, 'Main Library ', 'Main_Library', '**', '999999999', '0999999999'), hostileText(200), fc.constant(987_654_321))
    // Digits are an id (docs/protocol.md, "Branch references"): kept only when in range and no branch's.
    .filter((v) => (typeof v === 'number' ? !branches.some((b) => b.id === v) : v.length > 0 && v.length <= 200 && v !== '*' && (/^\d+$/.test(v) ? Number(v) >= 1 && Number(v) < 2 ** 31 && !branches.some((b) => b.id === Number(v)) : !branches.some((b) => b.name.toLowerCase() === v.toLowerCase()))))
    .map((value) => ({ problem: 'NOT_FOUND' as const, ids: [], value })) },
);

const tokenSpec: fc.Arbitrary<Spec<'none' | 'valid' | 'invalid' | 'badType'>> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(undefined, null).map((value) => ({ kind: 'none' as const, value })) },
  { weight: 2, arbitrary: fc.constant(0).map(() => ({ kind: 'valid' as const, value: tokens.valid })) },
  { weight: 2, arbitrary: fc.oneof(fc.constantFrom(...BAD_TOKENS).map((k) => tokens[k]!), hostileText(64).filter((s) => s.length > 0)).map((value) => ({ kind: 'invalid' as const, value })) },
  { weight: 1, arbitrary: fc.oneof(fc.constant(''), fc.constant('t'.repeat(4097)), anyJson.filter((v) => typeof v !== 'string' && v !== null)).map((value) => ({ kind: 'badType' as const, value })) },
);

interface Since {
  kind: 'none' | 'number' | 'object' | 'badType';
  value: unknown;
  /** The seq `since` names for a branch, as the hub looks it up (by id, then by name). */
  lookup(b: { id: number; name: string }): number | undefined;
}
const nonNeg = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1_000_000 }), fc.constant(Number.MAX_SAFE_INTEGER));
const sinceSpec: fc.Arbitrary<Since> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(undefined, null).map((value) => ({ kind: 'none' as const, value, lookup: () => undefined })) },
  { weight: 2, arbitrary: nonNeg.map((value) => ({ kind: 'number' as const, value, lookup: () => value })) },
  { weight: 2, arbitrary: fc
    .tuple(fc.array(fc.tuple(fc.nat(), fc.boolean(), nonNeg), { maxLength: 3 }), fc.array(fc.tuple(fc.oneof(fc.constantFrom(...PROTO_KEYS), hostileText(20)), nonNeg), { maxLength: 3 }))
    .map(([named, extra]) => {
      // JSON text, so a __proto__ key arrives as a key; later duplicates win, as in JSON.parse.
      const pairs: Array<readonly [string, number]> = [
        // Keys are branch references: no extra key may name a branch (digits an id, a name in any case).
        ...extra.filter(([k]) => !/^\d+$/.test(k) && !branches.some((b) => b.name.toLowerCase() === k.toLowerCase())),
        ...named.map(([i, byName, v]) => {
          const b = branches[i % branches.length]!;
          return [byName ? b.name : String(b.id), v] as const;
        }),
      ];
      const text = withKeys('{}', pairs);
      const value = JSON.parse(text) as Record<string, number>;
      return { kind: 'object' as const, value, lookup: (b: { id: number; name: string }) => Object.hasOwn(value, String(b.id)) ? value[String(b.id)] : Object.hasOwn(value, b.name) ? value[b.name] : undefined };
    }) },
  { weight: 2, arbitrary: fc
    .oneof(
      fc.constantFrom(-1, 1.5, 2 ** 53, '5', true, 'latest'),
      fc.array(fc.nat(), { maxLength: 3 }),
      fc.constant(Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [String(i), 0]))),
      fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(-1, 0.5, '1', null, true), fc.array(fc.nat(), { maxLength: 2 }), fc.integer({ min: 1, max: 20 }).map((d) => JSON.parse(`${'{"a":'.repeat(d)}1${'}'.repeat(d)}`) as unknown))).map(([i, v]) => ({ [String(branches[i % branches.length]!.id)]: v })),
    )
    .map((value) => ({ kind: 'badType' as const, value, lookup: () => undefined })) },
);

const extraKeys = fc.array(fc.tuple(fc.constantFrom(...PROTO_KEYS, 'user', 'userId', 'personal', 'scope'), anyJson), { maxLength: 2 });

/** One subscribe, and what it earns given whether this connection has subscribed already. */
interface SubscribeGen {
  text: string;
  outcome(subscribed: boolean): { frames: FuzzFrame[]; subscribes: boolean };
}

const subscribe: fc.Arbitrary<SubscribeGen> = fc.tuple(branchSpec, tokenSpec, sinceSpec, extraKeys).map(([branch, token, since, extra]) => {
  const body: Record<string, unknown> = { type: 'subscribe' };
  if (branch.value !== undefined) body.branch = branch.value;
  if (token.value !== undefined) body.token = token.value;
  if (since.value !== undefined) body.since = since.value;
  const text = withKeys(JSON.stringify(body), extra);
  const label = `subscribe ${text.slice(0, 140)}`;
  const problems = new Set<string>();
  if (branch.problem === 'INVALID_ARGUMENT' || token.kind === 'badType' || since.kind === 'badType') problems.add('INVALID_ARGUMENT');
  if (branch.problem === 'NOT_FOUND') problems.add('NOT_FOUND');
  if (token.kind === 'invalid') problems.add('UNAUTHENTICATED');
  if (branch.all && since.kind === 'number') problems.add('INVALID_ARGUMENT');
  const error = (codes: ReadonlySet<string>, why: string): FuzzFrame => ({
    bytes: rawFrame(text),
    replies: 1,
    accepts: (r) => r.type === 'error' && codes.has(r.code as string),
    label: `${label} → ${why}`,
  });
  return {
    text,
    outcome: (subscribed) => {
      if (Buffer.byteLength(text) > PUBSUB_FRAME_LIMIT) return { frames: [{ ...error(new Set(['BAD_FRAME']), 'too large'), effect: 'closes' }], subscribes: false };
      if (subscribed) return { frames: [error(new Set(['FAILED_PRECONDITION']), 'already subscribed')], subscribes: false };
      if (problems.size > 0) return { frames: [error(problems, [...problems].join('|'))], subscribes: false };
      const scope = branch.all ? branches : branches.filter((b) => branch.ids.includes(b.id));
      const slots: Array<(r: Reply) => boolean> = [
        (r) =>
          r.type === 'subscribed' &&
          r.personal === (token.kind === 'valid') &&
          r.branch === (branch.all ? '*' : scope[0]!.name) &&
          (r.branches as unknown[]).length === scope.length,
      ];
      for (const b of scope) {
        const v = since.lookup(b);
        // seq is 0 everywhere: since 0 resumes with nothing to send; above 0 is ahead of the server.
        if (v === 0) continue;
        slots.push((r) => r.type === 'snapshot' && r.branchId === b.id && Array.isArray(r.seats) && (v === undefined ? r.fresh === undefined : r.fresh === true));
      }
      const accepts = (r: Reply): boolean => slots.some((s) => s(r));
      // One frame per reply slot, so the runner's matching keeps them apart.
      const frames = slots.map((s, i): FuzzFrame => ({ bytes: i === 0 ? rawFrame(text) : Buffer.alloc(0), replies: 1, accepts: i === 0 ? accepts : s, label: `${label} → reply ${i}` }));
      return { frames, subscribes: true };
    },
  };
});

const ping: fc.Arbitrary<FuzzFrame> = extraKeys.map((extra) => ({
  bytes: rawFrame(withKeys('{"type":"ping"}', extra.filter(([k]) => k !== 'type'))),
  replies: 1,
  accepts: (r) => r.type === 'pong',
  label: 'ping',
}));

const unknownType: fc.Arbitrary<FuzzFrame> = fc
  .oneof(fc.constantFrom('Subscribe', 'PING', 'unsubscribe', 'hello', 'occupancy', ...PROTO_KEYS, ...SQLISH), hostileText(30), anyJson, fc.constant(undefined))
  .filter((type) => type !== 'subscribe' && type !== 'ping')
  .map((type) => ({
    bytes: rawFrame(JSON.stringify(type === undefined ? { branch: '*' } : { type, branch: '*' })),
    replies: 1,
    accepts: (r) => r.type === 'error' && r.code === 'INVALID_REQUEST',
    label: `type ${JSON.stringify(type)?.slice(0, 40)}`,
  }));

const badFrame: fc.Arbitrary<FuzzFrame> = recoverableBadFrames(32).map((b) => ({ bytes: b.bytes, replies: 1, accepts: (r) => r.type === 'error' && r.code === 'BAD_FRAME', label: b.label }));

type Step = { subscribe: SubscribeGen } | { frame: FuzzFrame };

const endOfFraming: fc.Arbitrary<FuzzFrame | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: oversized(PUBSUB_FRAME_LIMIT).map((b): FuzzFrame => ({ bytes: b.bytes, replies: 1, accepts: (r) => r.type === 'error' && r.code === 'BAD_FRAME', label: b.label, effect: 'closes' })) },
  { weight: 1, arbitrary: lyingFrames(PUBSUB_FRAME_LIMIT).map((b): FuzzFrame => ({ bytes: b.bytes, replies: 0, accepts: () => true, label: b.label, effect: 'garbles' })) },
);

const cases: fc.Arbitrary<FuzzFrame[]> = fc
  .tuple(
    fc.array(
      fc.oneof(
        { weight: 6, arbitrary: subscribe.map((s): Step => ({ subscribe: s })) },
        { weight: 2, arbitrary: ping.map((f): Step => ({ frame: f })) },
        { weight: 1, arbitrary: unknownType.map((f): Step => ({ frame: f })) },
        { weight: 2, arbitrary: badFrame.map((f): Step => ({ frame: f })) },
      ),
      { minLength: 1, maxLength: 5 },
    ),
    endOfFraming,
  )
  .map(([steps, end]) => {
    let subscribed = false;
    const frames: FuzzFrame[] = [];
    for (const step of steps) {
      if ('frame' in step) {
        frames.push(step.frame);
        continue;
      }
      const o = step.subscribe.outcome(subscribed);
      frames.push(...o.frames);
      subscribed ||= o.subscribes;
      if (o.frames.some((f) => f.effect)) return frames;
    }
    if (end) frames.push(end);
    return frames;
  });

function subscriberProtocol(): FrameProtocol {
  const probe = rawFrame('{"type":"ping"}');
  return {
    name: 'pubsub',
    cases,
    probe: { bytes: probe, isReply: (r) => r.type === 'pong' },
    checkReply,
    alive: async () => {
      const peer = await RawPeer.connect(t.server.ports.pubsub);
      peer.write(probe);
      expect(await peer.waitFrames(1)).toEqual([{ type: 'pong' }]);
      peer.destroy();
    },
  };
}

describe('generated bad input on the subscriber port (fast-check, fixed seed)', () => {
  it('1,000 generated cases: the documented answer to each frame, no leaks, the connection lives on, no personal events, bounded memory', async () => {
    const heapBefore = await settledHeapBytes();
    const rssBefore = process.memoryUsage.rss();
    const personalBefore = t.live.hub.stats.personalDelivered;
    const run = await fuzzPort(t.server.ports.pubsub, subscriberProtocol(), { seed: 20260303, numRuns: 1000 });
    expect(run.cases).toBe(1000);
    expect(run.frames).toBeGreaterThan(2900);
    // Every path was taken: lost boundaries, closes, and (most) cases that lived on.
    expect(run.closed).toBeGreaterThan(80);
    expect(run.garbled).toBeGreaterThan(80);
    expect(run.cases - run.closed - run.garbled).toBeGreaterThan(650);
    const listener = t.live.pubsubListener;
    await waitUntil(() => listener.connections.size === 0, 5000, 'subscriber connections to close');
    expect(t.live.hub.subscriberCount).toBe(0);
    expect(listener.partialFrames.total).toBe(0);
    expect(t.live.hub.stats.personalDelivered).toBe(personalBefore);
    expect(unhandled).toEqual([]);
    expect((await settledHeapBytes()) - heapBefore).toBeLessThan(32 * 1024 * 1024);
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(256 * 1024 * 1024);
  }, 60_000);
});
