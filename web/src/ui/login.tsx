// Log in, or register then log in (auth.register does not log in: docs/protocol.md).
import { useState } from 'preact/hooks';
import type { RpcClient } from '../lib/rpc.js';
import { errorText } from '../lib/text.js';

export function LoginForm(props: {
  rpc: RpcClient;
  login(studentId: string, password: string): Promise<unknown>;
  allowRegister: boolean;
  title: string;
  intro?: string;
}) {
  const [mode, setMode] = useState<'login' | 'register'>('login');
  const [studentId, setStudentId] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'register') await props.rpc.call('auth.register', { studentId, name, password });
      await props.login(studentId, password);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const registering = mode === 'register';
  return (
    <form class="card login" onSubmit={submit} aria-labelledby="login-title">
      <h1 id="login-title">{registering ? 'Create an account' : props.title}</h1>
      {props.intro && !registering && <p class="muted">{props.intro}</p>}
      <label>
        Student id
        <input name="studentId" autoComplete="username" required maxLength={64} value={studentId} onInput={(e) => setStudentId(e.currentTarget.value)} />
      </label>
      {registering && (
        <label>
          Your name
          <input name="name" autoComplete="name" required maxLength={128} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
      )}
      <label>
        Password
        <input
          name="password"
          type="password"
          autoComplete={registering ? 'new-password' : 'current-password'}
          required
          minLength={registering ? 8 : 1}
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        {registering && <small class="muted">At least 8 characters.</small>}
      </label>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <button class="primary" type="submit" disabled={busy}>
        {busy ? 'Please wait…' : registering ? 'Create account and log in' : 'Log in'}
      </button>
      {props.allowRegister && (
        <p class="switch">
          {registering ? 'Have an account? ' : 'New here? '}
          <button type="button" class="link" onClick={() => (setMode(registering ? 'login' : 'register'), setError(null))}>
            {registering ? 'Log in' : 'Create an account'}
          </button>
        </p>
      )}
    </form>
  );
}
