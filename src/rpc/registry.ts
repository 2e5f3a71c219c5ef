// Methods declare themselves (STYLE §3): a wire name, a schema for args[0], who may call it,
// and a handler. The registry is the API's table of contents; names are API.
//
// Admin rights are confirmed where they are granted. The dispatcher refuses a token whose role
// claim is not admin; but a claim outlives a demotion (tokens live auth.tokenTtlSec, 12 h), so
// every admin method the registry holds first asks `isAdmin` — the users table — and answers
// PERMISSION_DENIED when the caller is no longer an admin (audit). Admin calls are rare: one
// query each is cheap.
import type { z } from 'zod';
import type { AuthUser } from '../auth/tokens.js';
import type { Logger } from '../obs/log.js';
import { CarrelError, ErrorCode } from '../errors.js';
import { deadlineAt, type AdmissionTicket, type Deadline } from '../deadline.js';

/** public: anyone; user: a valid token; admin: a valid token with role admin. */
export type Access = 'public' | 'user' | 'admin';

export interface MethodContext {
  /** The caller, when a valid token came with the request or was adopted by the connection. */
  readonly user: AuthUser | null;
  /** The peer's IP address (no port), for per-address limits such as the login throttle. */
  readonly remoteAddress: string;
  /** Absolute time (ms since epoch) after which the caller has been told DEADLINE_EXCEEDED. */
  readonly deadlineMs: number;
  /** The caller's place at the fair database gate (src/deadline.ts); absent when there is none. */
  readonly admission?: AdmissionTicket;
  /** Makes the connection use this token for later requests (auth.login, auth.use). */
  adoptToken(token: string): AuthUser;
  /**
   * The request waits for `until` (its user's booking in flight): read nothing more from its
   * connection until that settles, so that what the peer pipelined meanwhile waits in the socket
   * (docs/fairness.md, "The opening rush").
   */
  holdReading(until: Promise<unknown>): void;
  readonly log: Logger;
}

/** The request's deadline and turn for the work a handler asks of the database (src/deadline.ts). */
export function deadlineOf(ctx: MethodContext): Deadline {
  return deadlineAt(ctx.deadlineMs, Date.now, ctx.admission);
}

/** A result that is already JSON text (a cached listing): spliced into the reply unparsed. */
export { RawJson } from '../core/rawJson.js';

export interface MethodDef<S extends z.ZodType = z.ZodType> {
  name: string;
  access: Access;
  /** Schema for args[0]; methods without options use a schema that accepts undefined. */
  args: S;
  handler: (input: z.output<S>, ctx: MethodContext) => unknown;
  /** One line for `carrel call --help` and server.info. */
  summary: string;
}

export function defineMethod<S extends z.ZodType>(def: MethodDef<S>): MethodDef<S> {
  return def;
}

export interface RegistryOptions {
  /** Whether the user is an admin now, from the source of truth; needed to register admin methods. */
  isAdmin?: (userId: number, deadline: Deadline) => Promise<boolean>;
}

export class MethodRegistry {
  private readonly methods = new Map<string, MethodDef>();

  constructor(private readonly opts: RegistryOptions = {}) {}

  add(...defs: MethodDef<any>[]): this {
    for (const def of defs) {
      if (this.methods.has(def.name)) throw new Error(`method ${def.name} registered twice`);
      this.methods.set(def.name, def.access === 'admin' ? this.confirmingAdmin(def as MethodDef) : (def as MethodDef));
    }
    return this;
  }

  get(name: string): MethodDef | undefined {
    return this.methods.get(name);
  }

  names(): string[] {
    return [...this.methods.keys()].sort();
  }

  private confirmingAdmin(def: MethodDef): MethodDef {
    const isAdmin = this.opts.isAdmin;
    if (!isAdmin) throw new Error(`admin method ${def.name} needs a registry that can confirm admins (isAdmin)`);
    const handler = def.handler;
    return {
      ...def,
      handler: async (input, ctx) => {
        // The dispatcher has checked the token's claim; this checks it still holds.
        if (!ctx.user || !(await isAdmin(ctx.user.id, deadlineOf(ctx)))) {
          throw new CarrelError(ErrorCode.PERMISSION_DENIED, `${def.name} is for admins`);
        }
        return handler(input, ctx);
      },
    };
  }
}
