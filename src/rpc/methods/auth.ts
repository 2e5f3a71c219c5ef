// auth.* (docs/protocol.md, "RPC methods"): register, log in (the connection adopts the token),
// adopt a token, who am I. Student ids are folded to one canonical form (docs/accounts.md):
// register stores it and answers with it, login looks it up and the login throttle counts under it.
import type { StrikeService } from '../../core/strikes.js';
import { CarrelError, ErrorCode } from '../../errors.js';
import type { TokenService } from '../../auth/tokens.js';
import { canonicalStudentId } from '../../auth/studentId.js';
import { WRONG_CREDENTIALS, type AccountService } from '../../core/accounts.js';
import type { LoginThrottle } from '../../auth/loginThrottle.js';
import { deadlineOf, defineMethod, type MethodContext, type MethodDef } from '../registry.js';
import { methodArgs } from '../../wire/args.js';

export interface AuthDeps {
  accounts: AccountService;
  tokens: TokenService;
  /** Failed-login slowdown; absent in tools that need none. */
  throttle?: LoginThrottle;
  /** The caller's own strikes for auth.me (docs/rules.md, "Strikes and suspension"). */
  strikes: StrikeService;
}

export function authMethods({ accounts, tokens, throttle, strikes }: AuthDeps): MethodDef<any>[] {
  const currentUser = async (id: number, ctx: MethodContext) => {
    const user = await accounts.getUser(id, deadlineOf(ctx));
    if (!user) throw new CarrelError(ErrorCode.UNAUTHENTICATED, 'the account no longer exists');
    return user;
  };
  return [
    defineMethod({
      name: 'auth.register',
      access: 'public',
      args: methodArgs['auth.register'],
      summary: 'create a student account: {studentId, name, password} → {user}',
      handler: async (input, ctx) => ({ user: await accounts.register(input, { deadlineMs: ctx.deadlineMs }) }),
    }),
    defineMethod({
      name: 'auth.login',
      access: 'public',
      args: methodArgs['auth.login'],
      summary: 'log in: {studentId, password} → {token, expiresAt, user}; this connection uses the token from now on',
      handler: async ({ studentId: typed, password }, ctx) => {
        // A locked key is refused before any bcrypt work (src/auth/loginThrottle.ts). begin()
        // checks and reserves at once, so pipelined guesses cannot all slip past the check
        // while the first one is hashing. Every spelling of an id is counted as its account.
        const sid = canonicalStudentId(typed);
        const attempt = throttle?.begin(sid, ctx.remoteAddress);
        let check;
        try {
          check = await accounts.checkPassword(sid, password, { deadlineMs: ctx.deadlineMs });
        } catch (err) {
          attempt?.abandoned();
          throw pastDeadline(ctx) ?? err;
        }
        if (!check.ok) attempt?.failed({ accountExists: check.accountExists });
        // The caller has been told DEADLINE_EXCEEDED (or is about to be): a late success must
        // not quietly log the connection in (audit). Wrong or right, a late login answers the
        // same, so the answer does not tell whether the password was right.
        const late = pastDeadline(ctx);
        if (late) {
          attempt?.abandoned();
          throw late;
        }
        if (!check.ok) throw new CarrelError(ErrorCode.UNAUTHENTICATED, WRONG_CREDENTIALS);
        const user = check.user;
        attempt?.succeeded();
        const { token, expiresAt } = tokens.issue(user);
        ctx.adoptToken(token);
        return { token, expiresAt, user };
      },
    }),
    defineMethod({
      name: 'auth.use',
      access: 'public',
      args: methodArgs['auth.use'],
      summary: 'make this connection use a token: {token} → {user}',
      handler: async ({ token }, ctx) => {
        const adopted = ctx.adoptToken(token);
        return { user: await currentUser(adopted.id, ctx) };
      },
    }),
    defineMethod({
      name: 'auth.me',
      access: 'user',
      args: methodArgs['auth.me'],
      summary: 'who the token belongs to, and their strikes: {user: {id, studentId, name, role}, strikes: {strikes, limit, windowDays, suspendedUntil}}',
      handler: async (_input, ctx) => {
        const user = await currentUser(ctx.user!.id, ctx);
        return { user, strikes: await strikes.of(user.id, deadlineOf(ctx)) };
      },
    }),
  ];
}

/** DEADLINE_EXCEEDED once the request's deadline has passed (ctx.deadlineMs is wall-clock time). */
function pastDeadline(ctx: MethodContext): CarrelError | undefined {
  if (Date.now() < ctx.deadlineMs) return undefined;
  return new CarrelError(ErrorCode.DEADLINE_EXCEEDED, 'the login did not finish within the request deadline; nothing was adopted');
}
