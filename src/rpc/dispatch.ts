// Turns one decoded request into one encoded reply (docs/protocol.md, "What the server checks, in
// order"): validates the envelope, resolves the caller, checks access, parses args[0] against the
// method's schema, runs the handler and maps every failure onto the closed set of wire codes.
// Unknown exceptions become INTERNAL with a correlation id; their detail goes to the log only.
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { encodeJsonText, encodeSpliced, type EncodedFrame } from '../codec/index.js';
import { CarrelError, ErrorCode, type WireError } from '../errors.js';
import { encodeErrorFrame } from '../net/errorFrame.js';
import type { AuthUser, TokenService } from '../auth/tokens.js';
import type { Logger } from '../obs/log.js';
import type { AdmissionGate, AdmissionTicket } from '../deadline.js';
import { RawJson, type MethodContext, type MethodDef, type MethodRegistry } from './registry.js';
import { clientAddress } from './rateLimit.js';
import { refuseMalformedStrings } from './wellFormed.js';

export type RpcId = number | string | null;

export interface CallerState {
  /** The token adopted by the connection, already verified. */
  user: AuthUser | null;
  userExpMs: number;
  /** The peer's IP address, passed to handlers as ctx.remoteAddress. */
  remoteAddress?: string;
  /** That address as a client, for per-address limits and the database gate (rateLimit.clientAddress). */
  client?: string;
  /**
   * Set when a request was refused RESOURCE_EXHAUSTED with a retryAfterMs: the session reads
   * nothing more from this connection until then (docs/fairness.md), so a client that ignores
   * the advice costs no more than one refusal per retry interval.
   */
  quietUntilMs?: number;
  /** Set by the session: the user's refusal made this connection quiet too (Dispatcher.quietUser). */
  quiet?: () => void;
  /** The user whose request this connection carried last (Dispatcher's callersOf). */
  seenUser?: number;
  /** Set by the session: leave the connection unread until `until` settles (MethodContext.holdReading). */
  hold?: (until: Promise<unknown>) => void;
  /** This connection's place at the database gate, kept while the same caller (user or address) asks. */
  ticket?: AdmissionTicket;
  /** Whom `ticket` was made for: a user id, or null for the address. */
  ticketOwner?: number | null;
}

export interface DispatchObserver {
  (method: string, code: ErrorCode | null, durationMs: number): void;
}

export interface DispatcherOptions {
  registry: MethodRegistry;
  tokens: TokenService;
  requestTimeoutMs: number;
  log: Logger;
  observe?: DispatchObserver;
  /** Runs after access checks, before argument parsing; throws to refuse (rate limits). */
  admit?: (def: MethodDef, user: AuthUser | null, caller: CallerState, nowMs: number) => void;
  /** The fair gate in front of the database pool; each request gets its client's ticket. */
  dbAdmission?: AdmissionGate;
  /** The longest a refused connection is left unread (admission.quietOnRefusalMaxMs); 0: never. */
  quietOnRefusalMaxMs?: number;
}

const MAX_METHOD_NAME = 128;
const MAX_STRING_ID = 128;
const MAX_ARGS = 8;
const MAX_TOKEN = 4096;

export class Dispatcher {
  /**
   * The connections each user's requests came on last, and the user's last quiet: a refusal that
   * is the user's (details.per "user") leaves them all unread, not only the one it came on, and a
   * user refused again as soon as a quiet ends is left unread twice as long each time, up to
   * quietOnRefusalMaxMs (docs/fairness.md, "Refusals and quiet"). Bounded: a connection is listed
   * under one user, and leaves with forget() when it closes.
   */
  private readonly users = new Map<number, { callers: Set<CallerState>; quietMs: number; untilMs: number }>();

  constructor(private readonly opts: DispatcherOptions) {}

  /** The connection closed. */
  forget(caller: CallerState): void {
    if (caller.seenUser === undefined) return;
    const user = this.users.get(caller.seenUser);
    user?.callers.delete(caller);
    if (user?.callers.size === 0) this.users.delete(caller.seenUser);
    caller.seenUser = undefined;
  }

  private seen(caller: CallerState, userId: number): void {
    if (caller.seenUser === userId) return;
    this.forget(caller);
    caller.seenUser = userId;
    let user = this.users.get(userId);
    if (!user) this.users.set(userId, (user = { callers: new Set(), quietMs: 0, untilMs: 0 }));
    user.callers.add(caller);
  }

  /**
   * A refusal of the caller's user: every connection of the user is left unread until the time
   * returned (ms from now) — retryAfterMs, or twice the user's last quiet when this refusal came
   * within that long of its end.
   */
  private quietUser(caller: CallerState, retryMs: number, maxMs: number, nowMs: number): number {
    const user = caller.seenUser === undefined ? undefined : this.users.get(caller.seenUser);
    if (!user) return Math.min(retryMs, maxMs);
    const again = user.untilMs > 0 && nowMs < user.untilMs + user.quietMs;
    const quietMs = Math.min(maxMs, again ? Math.max(retryMs, user.quietMs * 2) : retryMs);
    user.quietMs = quietMs;
    user.untilMs = nowMs + quietMs;
    for (const other of user.callers) {
      if (other.quietUntilMs! >= user.untilMs) continue;
      other.quietUntilMs = user.untilMs;
      if (other !== caller) other.quiet?.();
    }
    return quietMs;
  }

  /**
   * Returns the encoded reply: synchronously when the handler is synchronous (PING), as a
   * promise otherwise. `rpcIdOf` lets the session answer a request it gives up on.
   */
  dispatch(request: Record<string, unknown>, caller: CallerState, nowMs: number): EncodedFrame | Promise<EncodedFrame> {
    const rawId = request.rpcId;
    const rpcId: RpcId = isValidId(rawId) ? rawId : null;
    const method = request.method;
    const started = performance.now();
    const name = typeof method === 'string' && method.length <= MAX_METHOD_NAME ? method : '(invalid)';
    try {
      if (rpcId === null) throw new CarrelError(ErrorCode.INVALID_REQUEST, 'rpcId must be an integer or a short string');
      if (name === '(invalid)') throw new CarrelError(ErrorCode.INVALID_REQUEST, 'method must be a string');
      refuseMalformedStrings(request);
      const args = request.args;
      if (args !== undefined && (!Array.isArray(args) || args.length > MAX_ARGS)) {
        throw new CarrelError(ErrorCode.INVALID_REQUEST, `args must be an array of at most ${MAX_ARGS} items`);
      }
      const def = this.opts.registry.get(name);
      if (!def) throw new CarrelError(ErrorCode.UNKNOWN_METHOD, `unknown method ${JSON.stringify(name)}`);
      const user = this.resolveUser(request.token, caller, nowMs);
      if (user) this.seen(caller, user.id);
      if (def.access !== 'public') {
        if (!user) throw new CarrelError(ErrorCode.UNAUTHENTICATED, `${name} needs a token (auth.login)`);
        if (def.access === 'admin' && user.role !== 'admin') {
          throw new CarrelError(ErrorCode.PERMISSION_DENIED, `${name} is for admins`);
        }
      }
      this.opts.admit?.(def, user, caller, nowMs);
      const input = parseArgs(def.args, (args as unknown[] | undefined)?.[0]);
      const ctx: MethodContext = {
        user,
        remoteAddress: caller.remoteAddress ?? 'local',
        deadlineMs: nowMs + this.opts.requestTimeoutMs,
        admission: this.ticketFor(user, caller),
        adoptToken: (token) => {
          const adopted = this.opts.tokens.verify(token);
          caller.user = adopted;
          caller.userExpMs = adopted.expMs;
          return adopted;
        },
        holdReading: (until) => caller.hold?.(until),
        log: this.opts.log,
      };
      const result = def.handler(input, ctx);
      if (result instanceof Promise) {
        return result.then(
          (value) => this.success(rpcId, name, value, started),
          (err) => this.failure(rpcId, name, err, started, caller),
        );
      }
      return this.success(rpcId, name, result, started);
    } catch (err) {
      return this.failure(rpcId, name, err, started, caller);
    }
  }

  /**
   * The request's place at the database gate: its user's, or its address's without a token. Made
   * once per connection and caller, not per request: a PING pays nothing for it.
   */
  private ticketFor(user: AuthUser | null, caller: CallerState): AdmissionTicket | undefined {
    const gate = this.opts.dbAdmission;
    if (!gate) return undefined;
    const owner = user ? user.id : null;
    if (caller.ticket === undefined || caller.ticketOwner !== owner) {
      caller.ticket = gate.ticket(user ? `user:${user.id}` : `address:${(caller.client ??= clientAddress(caller.remoteAddress))}`);
      caller.ticketOwner = owner;
    }
    return caller.ticket;
  }

  /** The reply for a request the session stopped waiting for. */
  deadlineExceeded(rpcId: RpcId, method: string): Buffer {
    this.opts.observe?.(method, ErrorCode.DEADLINE_EXCEEDED, this.opts.requestTimeoutMs);
    return encodeErrorFrame('rpc', { code: ErrorCode.DEADLINE_EXCEEDED, message: `no answer within ${this.opts.requestTimeoutMs} ms` }, rpcId);
  }

  private resolveUser(token: unknown, caller: CallerState, nowMs: number): AuthUser | null {
    if (token !== undefined && token !== null) {
      if (typeof token !== 'string' || token.length > MAX_TOKEN) {
        throw new CarrelError(ErrorCode.INVALID_REQUEST, 'token must be a string');
      }
      return this.opts.tokens.verify(token);
    }
    if (caller.user && caller.userExpMs <= nowMs) {
      caller.user = null;
      throw new CarrelError(ErrorCode.UNAUTHENTICATED, 'token has expired');
    }
    return caller.user;
  }

  private success(rpcId: RpcId, method: string, value: unknown, started: number): EncodedFrame {
    this.opts.observe?.(method, null, performance.now() - started);
    const idJson = JSON.stringify(rpcId);
    if (value instanceof RawJson) return encodeSpliced(`{"rpcId":${idJson},"result":`, value.bytes, ',"error":null}');
    const resultJson = value === undefined ? 'null' : JSON.stringify(value);
    return encodeJsonText(`{"rpcId":${idJson},"result":${resultJson},"error":null}`);
  }

  private failure(rpcId: RpcId, method: string, err: unknown, started: number, caller?: CallerState): Buffer {
    let wire = toWireError(err, this.opts.log, method);
    const quietMax = this.opts.quietOnRefusalMaxMs ?? 0;
    if (caller && quietMax > 0 && wire.code === ErrorCode.RESOURCE_EXHAUSTED) {
      const details = wire.details as { retryAfterMs?: unknown; per?: unknown } | undefined;
      const retry = details?.retryAfterMs;
      if (typeof retry === 'number' && retry > 0) {
        const now = Date.now();
        if (details!.per === 'user') {
          // The user's own limit: every connection of the user waits, or each would earn a refusal;
          // the reply says how long that is.
          const quietMs = this.quietUser(caller, retry, quietMax, now);
          if (quietMs !== retry) wire = { ...wire, details: { ...details, retryAfterMs: quietMs } };
        } else {
          const until = now + Math.min(retry, quietMax);
          if (!(caller.quietUntilMs! >= until)) caller.quietUntilMs = until;
        }
      }
    }
    this.opts.observe?.(method, wire.code, performance.now() - started);
    return encodeErrorFrame('rpc', wire, rpcId);
  }
}

function isValidId(id: unknown): id is number | string {
  return (
    (typeof id === 'number' && Number.isSafeInteger(id)) ||
    (typeof id === 'string' && id.length > 0 && id.length <= MAX_STRING_ID)
  );
}

function parseArgs(schema: z.ZodType, value: unknown): unknown {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 5).map((i) => ({
    path: i.path.map(String).join('.') || '(args[0])',
    message: i.message,
  }));
  const first = issues[0]!;
  throw new CarrelError(ErrorCode.INVALID_ARGUMENT, `${first.path}: ${first.message}`, { issues });
}

/** Maps anything thrown to a wire error; never lets a stack trace or SQL reach the peer. */
export function toWireError(err: unknown, log: Logger, method: string): WireError {
  if (err instanceof CarrelError) return err.toWire();
  const correlationId = randomUUID();
  log.error({ err, method, correlationId }, 'internal error');
  return { code: ErrorCode.INTERNAL, message: 'internal error', details: { correlationId } };
}
