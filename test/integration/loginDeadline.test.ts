// A login answered DEADLINE_EXCEEDED does not log the connection in afterwards (audit: the
// handler kept running and, the password being right, attached the token via ctx.adoptToken
// after the caller had been told the login failed). The password check is held back until the
// client has its DEADLINE_EXCEEDED, then let go.
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { startTestServer, type TestServer } from '../support/server.js';
import type { HashTicket } from '../../src/auth/passwordHasher.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ limits: { requestTimeoutMs: 300 } });
  // Straight into the table: a registration's first hash (which starts the worker) could itself
  // take more than the 300 ms deadline on a loaded machine.
  await t.db.pool.query(`INSERT INTO users (student_id, name, password_hash) VALUES ('slowpoke', 'Slow Poke', $1)`, [
    bcrypt.hashSync('right-password', 4),
  ]);
});
afterAll(async () => {
  await t.close();
});

/** Makes the next password compare wait until the returned function is called. */
function holdNextCompare(): () => void {
  const passwords = t.passwords;
  const reserve = passwords.reserve.bind(passwords);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const spy = vi.spyOn(passwords, 'reserve').mockImplementationOnce((): HashTicket => {
    const ticket = reserve();
    // Without the request's deadline, so the compare really runs and finishes late.
    return { ...ticket, compare: async (password, hash) => (await gate, ticket.compare(password, hash)) };
  });
  return () => {
    spy.mockRestore();
    release();
  };
}

/** Resolves once no RPC request is running any more (the held login has finished). */
async function settled(): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (t.inFlight > 0) {
    if (Date.now() > deadline) throw new Error('a request is still running');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('auth.login past its deadline', () => {
  it('answers DEADLINE_EXCEEDED and never adopts the token, though the password was right', async () => {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    try {
      const letGo = holdNextCompare();
      const login = await c.request('auth.login', [{ studentId: 'slowpoke', password: 'right-password' }]);
      expect(login.error?.code).toBe('DEADLINE_EXCEEDED');
      letGo();
      await settled();
      expect(c.unmatched).toEqual([]); // no second reply for the same request
      expect((await c.request('auth.me')).error?.code).toBe('UNAUTHENTICATED');
      // Not a lockout either: the next login in time works and adopts its token.
      expect((await c.request('auth.login', [{ studentId: 'slowpoke', password: 'right-password' }])).error).toBeNull();
      expect(await c.call('auth.me')).toMatchObject({ user: { studentId: 'slowpoke' } });
    } finally {
      c.close();
    }
  });

  it('a late wrong password also answers DEADLINE_EXCEEDED, and still counts as a failure', async () => {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    try {
      const letGo = holdNextCompare();
      const login = await c.request('auth.login', [{ studentId: 'slowpoke', password: 'wrong-password' }]);
      expect(login.error?.code).toBe('DEADLINE_EXCEEDED');
      const before = t.loginThrottle.tracked.accounts;
      letGo();
      await settled();
      expect(t.loginThrottle.tracked.accounts).toBe(before + 1);
      expect(t.loginThrottle.inFlight).toEqual({ accounts: 0, pairs: 0, addresses: 0 });
    } finally {
      c.close();
    }
  });
});
