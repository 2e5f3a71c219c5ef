// Bad input on the subscriber port (DESIGN §5, README "Subscriber port"): token attacks, case by
// case. A bad token is UNAUTHENTICATED, subscribes nothing, earns no personal events, and the
// connection lives on; no reply leaks.
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jwt from 'jsonwebtoken';
import { RawPeer } from '../support/peer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import type { Reply } from '../support/fuzz.js';
import { INPUT_CODES, LEAK } from '../support/fuzzFrames.js';
import { userId, waitFor } from '../support/live.js';

let t: TestServer;
let branches: Array<{ id: number; name: string }> = [];
let uid = 0;
const tokens: Record<string, string> = {};
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  // No summaries or lifecycle events: every frame a subscriber gets is an answer.
  t = await startTestServer({ lifecycle: { enabled: false }, pubsub: { summaryEveryMs: 600_000 } });
  branches = (await t.db.pool.query<{ id: number; name: string }>('SELECT id, name FROM branches ORDER BY id')).rows;
  for (const b of branches) expect(t.server.realtime.hub.seqOf(b.id)).toBe(0);
  uid = await userId(t.db.pool, 's1001');

  const secret = t.config.auth.jwtSecret;
  const claims = { sub: String(uid), sid: 's1001', name: 'Ada', role: 'student' };
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const hmac = (alg: string, payload: object, key = secret, hash = 'sha256'): string => {
    const input = `${b64({ alg, typ: 'JWT' })}.${b64(payload)}`;
    return `${input}.${createHmac(hash, key).update(input).digest('base64url')}`;
  };
  const exp = Math.floor(Date.now() / 1000) + 3600;
  tokens.valid = t.server.tokens.issue({ id: uid, studentId: 's1001', name: 'Ada', role: 'student' }).token;
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
  t.server.coreEvents.emit({
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
  it.each(BAD_TOKENS)('a %s token is UNAUTHENTICATED: no subscription, no personal events, and the connection lives on', async (kind) => {
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
