import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { errorOf } from '../support/core.js';

let t: TestServer;
let c: RpcClient;
beforeAll(async () => {
  t = await startTestServer();
  c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
});
afterAll(async () => {
  c.close();
  await t.close();
});

interface User {
  id: number;
  studentId: string;
  name: string;
  role: string;
}

describe('auth.register', () => {
  it('creates a student account and returns it without any password material', async () => {
    const { user } = await c.call<{ user: User }>('auth.register', { studentId: 's2001', name: 'Hedy Lamarr', password: 'frequency-hop' });
    expect(user).toEqual({ id: expect.any(Number), studentId: 's2001', name: 'Hedy Lamarr', role: 'student' });
    const row = await t.db.pool.query('SELECT password_hash FROM users WHERE student_id = $1', ['s2001']);
    expect(row.rows[0].password_hash).toMatch(/^\$2[aby]\$04\$/);
    expect(row.rows[0].password_hash).not.toContain('frequency-hop');
  });

  it('refuses a student id that is taken with CONFLICT', async () => {
    const err = await errorOf(c.call('auth.register', { studentId: 's1001', name: 'Impostor', password: 'long-enough' }));
    expect(err.code).toBe('CONFLICT');
  });

  it('stores the canonical form of the id (lower case) and answers with it', async () => {
    const { user } = await c.call<{ user: User }>('auth.register', { studentId: 'Ada.L@Uni', name: 'Ada', password: 'analytical-engine' });
    expect(user.studentId).toBe('ada.l@uni');
    const row = await t.db.pool.query('SELECT student_id FROM users WHERE id = $1', [user.id]);
    expect(row.rows[0].student_id).toBe('ada.l@uni');
  });

  it('refuses a look-alike of a taken id with CONFLICT, and before any hashing', async () => {
    await c.call('auth.register', { studentId: 'vid7777', name: 'Victim', password: 'victims-password' });
    const hashes = t.passwords.lanes.register.started;
    for (const twin of ['VID7777', 'Vid7777', 'vID7777']) {
      const err = await errorOf(c.call('auth.register', { studentId: twin, name: 'Twin', password: 'attackers-password' }));
      expect([err.code, err.message]).toEqual(['CONFLICT', 'CONFLICT: student id vid7777 is already registered']);
    }
    expect((await errorOf(c.call('auth.register', { studentId: 'S1001', name: 'Impostor', password: 'long-enough' }))).code).toBe('CONFLICT');
    expect(t.passwords.lanes.register.started).toBe(hashes);
    expect(Number((await t.db.pool.query("SELECT count(*) FROM users WHERE lower(student_id) = 'vid7777'")).rows[0].count)).toBe(1);
  });

  it('a flood of registrations of a taken id costs neither hashes nor lookups, nor places honest registrations need', async () => {
    // Rate limits off (their own server): what answers the flood here is the account service alone.
    const own = await startTestServer({ rateLimit: { enabled: false } });
    const passwords = own.passwords;
    const flooder = await RpcClient.connect('127.0.0.1', own.server.ports.rpc);
    // Every statement the server sends, on whichever of its connections.
    const lookups = vi.spyOn(pg.Client.prototype, 'query');
    try {
      const register = () => flooder.request('auth.register', [{ studentId: 'S1003', name: 'Flood', password: 'flood-password' }]);
      expect((await register()).error?.code).toBe('CONFLICT'); // looked up once
      const isLookup = (call: unknown[]) => String(call[0]).startsWith('SELECT 1 FROM users');
      expect(lookups.mock.calls.filter(isLookup)).toHaveLength(1);
      const replies = await Promise.all(Array.from({ length: 200 }, register));
      expect(new Set(replies.map((r) => r.error?.code))).toEqual(new Set(['CONFLICT']));
      expect(lookups.mock.calls.filter(isLookup)).toHaveLength(1);
      expect(passwords.lanes.register).toMatchObject({ started: 0, refused: 0 });
      // A new registration meanwhile gets its place and its hash.
      const newcomer = await flooder.request('auth.register', [{ studentId: 's2099', name: 'Newcomer', password: 'long-enough' }]);
      expect(newcomer.result).toMatchObject({ user: { studentId: 's2099' } });
      expect(passwords.lanes.register.started).toBe(1);
    } finally {
      lookups.mockRestore();
      flooder.close();
      await own.close();
    }
  });

  it.each([
    [{ studentId: 's2002', name: 'Short', password: 'seven77' }, 'password'],
    [{ studentId: 's2002', name: 'Long', password: 'é'.repeat(37) }, 'password'],
    [{ studentId: 'x'.repeat(65), name: 'Long id', password: 'long-enough' }, 'studentId'],
    [{ studentId: 'has space', name: 'Space', password: 'long-enough' }, 'studentId'],
    [{ studentId: ' s2002', name: 'Leading space', password: 'long-enough' }, 'studentId'],
    [{ studentId: 's2002 ', name: 'Trailing space', password: 'long-enough' }, 'studentId'],
    [{ studentId: 'ｓ２００２', name: 'Full-width', password: 'long-enough' }, 'studentId'],
    [{ studentId: 'ﬁle', name: 'Ligature', password: 'long-enough' }, 'studentId'],
    [{ studentId: 's2002', name: '   ', password: 'long-enough' }, 'name'],
    [{ studentId: 's2002', name: 'n'.repeat(129), password: 'long-enough' }, 'name'],
    [{ studentId: 's2002', name: 'Extra', password: 'long-enough', role: 'admin' }, '(args[0])'],
  ])('rejects %j with INVALID_ARGUMENT naming %s', async (args, path) => {
    const err = await errorOf(c.call('auth.register', args));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message.startsWith(`INVALID_ARGUMENT: ${path}`)).toBe(true);
  });
});

describe('auth.login / auth.use / auth.me', () => {
  it('logs in a seeded user (cost-10 hash), and the connection adopts the token', async () => {
    const conn = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect((await errorOf(conn.call('auth.me'))).code).toBe('UNAUTHENTICATED');
    const login = await conn.call<{ token: string; expiresAt: string; user: User }>('auth.login', { studentId: 's1001', password: 'password123' });
    expect(login.user).toEqual({ id: expect.any(Number), studentId: 's1001', name: 'Ada Lovelace', role: 'student' });
    expect(Date.parse(login.expiresAt)).toBeGreaterThan(Date.now());
    expect(login.token.split('.')).toHaveLength(3);
    expect(await conn.call('auth.me')).toEqual({ user: login.user, strikes: { strikes: [], limit: 3, windowDays: 30, suspendedUntil: null } });
    conn.close();
  });

  it('answers a wrong password and an unknown user identically, after a bcrypt compare each', async () => {
    // Every compare runs on the password workers through a ticket: record the hashes compared.
    const passwords = t.passwords;
    const reserve = passwords.reserve.bind(passwords);
    const compared: string[] = [];
    const spy = vi.spyOn(passwords, 'reserve').mockImplementation(() => {
      const ticket = reserve();
      return { ...ticket, compare: (password, hash, opts) => (compared.push(hash), ticket.compare(password, hash, opts)) };
    });
    try {
      const wrong = await errorOf(c.call('auth.login', { studentId: 's1001', password: 'not-the-password' }));
      const unknown = await errorOf(c.call('auth.login', { studentId: 'nobody-here', password: 'not-the-password' }));
      expect(wrong.code).toBe('UNAUTHENTICATED');
      expect({ code: unknown.code, message: unknown.message }).toEqual({ code: wrong.code, message: wrong.message });
      expect(wrong.message).toBe('UNAUTHENTICATED: wrong student id or password');
      expect(compared).toHaveLength(2);
      // The unknown user's compare ran against a well-formed hash of the configured cost, so
      // bcrypt does the whole work, like for a real one.
      expect(compared[1]).toMatch(/^\$2[aby]\$04\$[./A-Za-z0-9]{53}$/);
    } finally {
      spy.mockRestore();
    }
  });

  it('logs in with any spelling that folds to the id, as that one account', async () => {
    for (const spelling of ['S1002', ' s1002 ', 'ｓ１００２', 's1002\u00a0']) {
      const login = await c.call<{ user: User }>('auth.login', { studentId: spelling, password: 'password123' });
      expect(login.user).toMatchObject({ studentId: 's1002', name: 'Grace Hopper' });
    }
  });

  it('an id no account can have (not canonical once folded) is refused without a lookup or a compare, in the same words', async () => {
    const reserve = vi.spyOn(t.passwords, 'reserve');
    try {
      for (const studentId of ['has space', 'a\u200bb', '!collision-1']) {
        const err = await errorOf(c.call('auth.login', { studentId, password: 'whatever-it-is' }));
        expect(err.message).toBe('UNAUTHENTICATED: wrong student id or password');
      }
      expect(reserve).not.toHaveBeenCalled();
    } finally {
      reserve.mockRestore();
    }
  });

  it('registers, logs in and sees itself; auth.use adopts a token on another connection', async () => {
    await c.call('auth.register', { studentId: 's2003', name: 'Katherine Johnson', password: 'orbital-mechanics' });
    const { token, user } = await c.call<{ token: string; user: User }>('auth.login', { studentId: 's2003', password: 'orbital-mechanics' });
    const other = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect(await other.call('auth.use', { token })).toEqual({ user });
    expect(await other.call('auth.me')).toEqual({ user, strikes: { strikes: [], limit: 3, windowDays: 30, suspendedUntil: null } });
    expect((await errorOf(other.call('auth.use', { token: 'garbage' }))).code).toBe('UNAUTHENTICATED');
    other.close();
  });

  it('refuses malformed login and use arguments with INVALID_ARGUMENT', async () => {
    expect((await errorOf(c.call('auth.login', { studentId: 's1001' }))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(c.call('auth.login', { studentId: 's1001', password: 'p'.repeat(257) }))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(c.call('auth.use', { token: '' }))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(c.call('auth.me', { extra: 1 }))).code).toBe('INVALID_ARGUMENT');
  });

  it('refuses a valid token for an account that no longer exists', async () => {
    const ghost = t.tokens.issue({ id: 999_999, studentId: 'ghost', name: 'Ghost', role: 'student' });
    const conn = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect((await errorOf(conn.call('auth.use', { token: ghost.token }))).code).toBe('UNAUTHENTICATED');
    conn.close();
  });
});
