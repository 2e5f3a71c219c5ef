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

  it.each([
    [{ studentId: 's2002', name: 'Short', password: 'seven77' }, 'password'],
    [{ studentId: 's2002', name: 'Long', password: 'é'.repeat(37) }, 'password'],
    [{ studentId: 'x'.repeat(65), name: 'Long id', password: 'long-enough' }, 'studentId'],
    [{ studentId: 'has space', name: 'Space', password: 'long-enough' }, 'studentId'],
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
    expect(await conn.call('auth.me')).toEqual({ user: login.user });
    conn.close();
  });

  it('answers a wrong password and an unknown user identically, after a bcrypt compare each', async () => {
    // Every compare runs on the password workers through a ticket: record the hashes compared.
    const passwords = t.server.passwords;
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

  it('registers, logs in and sees itself; auth.use adopts a token on another connection', async () => {
    await c.call('auth.register', { studentId: 's2003', name: 'Katherine Johnson', password: 'orbital-mechanics' });
    const { token, user } = await c.call<{ token: string; user: User }>('auth.login', { studentId: 's2003', password: 'orbital-mechanics' });
    const other = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect(await other.call('auth.use', { token })).toEqual({ user });
    expect(await other.call('auth.me')).toEqual({ user });
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
    const ghost = t.server.tokens.issue({ id: 999_999, studentId: 'ghost', name: 'Ghost', role: 'student' });
    const conn = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    expect((await errorOf(conn.call('auth.use', { token: ghost.token }))).code).toBe('UNAUTHENTICATED');
    conn.close();
  });
});
