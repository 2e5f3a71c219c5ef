// The logged-in user of a page: the token from auth.login, kept in localStorage under one key per
// page kind (a student and a librarian may share a desk computer), dropped once expired.
import { signal } from '@preact/signals';
import type { MethodResults, UserWire } from '../wire.js';
import type { RpcClient } from './rpc.js';

export interface Session {
  token: string;
  expiresAt: string;
  user: UserWire;
}

export function sessionStore(key: string) {
  const read = (): Session | null => {
    try {
      const s = JSON.parse(localStorage.getItem(key) ?? 'null') as Session | null;
      return s && typeof s.token === 'string' && Date.parse(s.expiresAt) > Date.now() + 60_000 ? s : null;
    } catch {
      return null;
    }
  };
  const current = signal<Session | null>(read());
  return {
    current,
    async login(rpc: RpcClient, studentId: string, password: string): Promise<Session> {
      const r = await rpc.call<MethodResults['auth.login']>('auth.login', { studentId, password });
      const s: Session = { token: r.token, expiresAt: r.expiresAt, user: r.user };
      localStorage.setItem(key, JSON.stringify(s));
      current.value = s;
      return s;
    },
    logout(): void {
      localStorage.removeItem(key);
      current.value = null;
    },
  };
}
