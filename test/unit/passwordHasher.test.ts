import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it } from 'vitest';
import { PasswordHasher } from '../../src/auth/passwordHasher.js';
import { CarrelError } from '../../src/errors.js';
import { codeOf } from '../support/codeOf.js';

let hasher: PasswordHasher | undefined;
afterEach(async () => {
  await hasher?.close();
  hasher = undefined;
});

/** One-worker hashers by default; registrations get a quarter of the starts while logins wait. */
function options(workers: number, maxQueuedJobs: number, maxQueuedRegisterJobs = 4) {
  return { workers, maxQueuedJobs, maxQueuedRegisterJobs, registerWorkerShare: 0.25 };
}

describe('password hasher', () => {
  it('hashes and compares on a worker thread, compatible with bcryptjs on the main thread', async () => {
    hasher = new PasswordHasher(options(1, 4));
    const hash = await hasher.hash('correct horse', 4);
    expect(hash).toMatch(/^\$2b\$04\$/);
    expect(bcrypt.compareSync('correct horse', hash)).toBe(true);
    expect(await hasher.compare('correct horse', bcrypt.hashSync('correct horse', 4))).toBe(true);
    expect(await hasher.compare('wrong horse', hash)).toBe(false);
    expect(hasher.stats).toEqual({ workers: 1, running: 0, queued: 0 });
  });

  it('refuses past workers + maxQueuedJobs places with RESOURCE_EXHAUSTED and a retry hint, then admits again', async () => {
    hasher = new PasswordHasher(options(1, 2));
    const hash = bcrypt.hashSync('pw', 4);
    const admitted = [hasher.compare('pw', hash), hasher.compare('pw', hash), hasher.compare('pw', hash)];
    const refused = hasher.compare('pw', hash);
    const err = await refused.catch((e: CarrelError) => e);
    expect(err).toBeInstanceOf(CarrelError);
    expect((err as CarrelError).code).toBe('RESOURCE_EXHAUSTED');
    expect((err as CarrelError).details).toMatchObject({ retryAfterMs: expect.any(Number), limit: 'auth.maxQueuedHashJobs' });
    expect((err as CarrelError).details!.retryAfterMs as number).toBeGreaterThan(0);
    expect(hasher.refused).toBe(1);
    expect(await Promise.all(admitted)).toEqual([true, true, true]);
    expect(await hasher.compare('pw', hash)).toBe(true);
  });

  it('a ticket holds its place until used or released, and runs one job', async () => {
    hasher = new PasswordHasher(options(1, 0));
    const ticket = hasher.reserve();
    expect(() => hasher!.reserve()).toThrow(/too many password checks/);
    ticket.release();
    ticket.release(); // once only
    const again = hasher.reserve();
    expect(() => hasher!.reserve()).toThrow(CarrelError);
    expect(await again.hash('pw', 4)).toMatch(/^\$2b\$04\$/);
    await expect(again.compare('pw', 'x'.repeat(60))).rejects.toThrow(/one job/);
    again.release(); // after its job: nothing to give back
    expect(hasher.stats.queued).toBe(0);
    expect(await hasher.compare('pw', bcrypt.hashSync('pw', 4))).toBe(true);
  });

  it('drops a waiting job whose deadline has passed without running it', async () => {
    hasher = new PasswordHasher(options(1, 4));
    const hash = bcrypt.hashSync('pw', 4);
    const first = hasher.compare('pw', hash);
    const late = hasher.compare('pw', hash, { deadlineMs: Date.now() - 1 });
    expect(await codeOf(late)).toBe('DEADLINE_EXCEEDED');
    expect(await first).toBe(true);
    expect(hasher.expired).toBe(1);
  });

  it('close() refuses what waits and what comes after, and stops the workers', async () => {
    hasher = new PasswordHasher(options(1, 4));
    const hash = bcrypt.hashSync('pw', 4);
    const outcomes = [codeOf(hasher.compare('pw', hash)), codeOf(hasher.compare('pw', hash))];
    await hasher.close();
    expect(await Promise.all(outcomes)).toEqual(['UNAVAILABLE', 'UNAVAILABLE']);
    expect(await codeOf(hasher.compare('pw', hash))).toBe('UNAVAILABLE');
    expect(hasher.stats).toEqual({ workers: 1, running: 0, queued: 0 });
  });
});

describe('password hasher lanes: logins and registrations', () => {
  const hashOf = bcrypt.hashSync('pw', 4);

  it('a full registration lane refuses registrations, naming its own limit, and leaves every login place free', async () => {
    hasher = new PasswordHasher(options(1, 2, 3));
    const registrations = Array.from({ length: 4 }, () => hasher!.hash('pw', 4)); // 1 running + 3 waiting
    const err = await hasher.hash('pw', 4).catch((e: CarrelError) => e);
    expect((err as CarrelError).code).toBe('RESOURCE_EXHAUSTED');
    expect((err as CarrelError).details).toMatchObject({ limit: 'auth.maxQueuedRegisterJobs', retryAfterMs: expect.any(Number) });
    expect((err as CarrelError).message).toMatch(/too many registrations waiting/);
    const logins = [hasher.compare('pw', hashOf), hasher.compare('pw', hashOf), hasher.compare('pw', hashOf)];
    expect(hasher.lanes.login).toMatchObject({ refused: 0 });
    expect(hasher.lanes.register).toMatchObject({ refused: 1 });
    expect(await Promise.all(logins)).toEqual([true, true, true]);
    await Promise.all(registrations);
    expect(hasher.stats).toEqual({ workers: 1, running: 0, queued: 0 });
  });

  it('with one worker, a login queued behind registrations runs as soon as the running hash is done', async () => {
    hasher = new PasswordHasher(options(1, 4, 8));
    const done: string[] = [];
    const registrations = Array.from({ length: 6 }, (_, i) => hasher!.hash('pw', 4).then(() => done.push(`r${i}`)));
    const login = hasher.compare('pw', hashOf).then(() => done.push('login'));
    await Promise.all([...registrations, login]);
    expect(done.indexOf('login')).toBe(1);
  });

  it('while both lanes wait, registrations get their share of the starts (a quarter), not more and not none', async () => {
    hasher = new PasswordHasher(options(1, 16, 16));
    // Logins compare against a cost-9 hash, registrations hash at cost 4 (32 times less work),
    // so the registrations' time budget is always back before their turn: what orders the
    // starts here is their share of the starts alone. One hash first, and the budget it spent
    // waited out, so the worker's first hash (which loads its crypto) is not among them.
    await hasher.hash('pw', 4);
    await new Promise((r) => setTimeout(r, Math.ceil(hasher!.lanes.register.busyMs / 0.25) + 5));
    const slowHash = bcrypt.hashSync('pw', 9);
    const done: string[] = [];
    const blocker = hasher.compare('pw', slowHash); // holds the worker while both lanes fill
    const jobs = [
      ...Array.from({ length: 8 }, () => hasher!.hash('pw', 4).then(() => done.push('R'))),
      ...Array.from({ length: 8 }, () => hasher!.compare('pw', slowHash).then(() => done.push('L'))),
    ];
    await Promise.all([blocker, ...jobs]);
    expect(done.slice(0, 8).join('')).toBe('LLLRLLLR');
    expect(hasher.lanes.register.started).toBe(9);
  });

  it('registrations alone are held to their share of the worker\'s time: the worker idles three quarters of a flood', async () => {
    hasher = new PasswordHasher(options(1, 4, 16));
    const t0 = performance.now();
    const lastDone: number[] = [];
    await Promise.all(Array.from({ length: 8 }, () => hasher!.hash('pw', 6).then(() => lastDone.push(performance.now()))));
    const elapsed = Math.max(...lastDone) - t0;
    const { busyMs, started } = hasher.lanes.register;
    expect(started).toBe(8);
    // Each hash is followed by three times its duration without one: at least busy/0.25 less
    // the last hash's share. (0.9: timers are rounded to whole milliseconds.)
    expect(elapsed).toBeGreaterThanOrEqual(0.9 * (busyMs / 0.25 - (3 * busyMs) / 8));
  });

  it('registrations never hold more than their share of the workers; the rest stay free for logins', async () => {
    hasher = new PasswordHasher(options(4, 8, 8)); // a quarter of 4 workers: 1 for registrations
    const registrations = Array.from({ length: 4 }, () => hasher!.hash('pw', 4));
    expect(hasher.lanes.register).toMatchObject({ running: 1, queued: 3 });
    const logins = Array.from({ length: 3 }, () => hasher!.compare('pw', hashOf));
    expect(hasher.lanes.login).toMatchObject({ running: 3, queued: 0 });
    await Promise.all([...registrations, ...logins]);
    expect(hasher.lanes.register).toMatchObject({ running: 0, queued: 0, started: 4 });
  });

  it('a registration that could not start before its deadline is refused at once, with a retry hint, instead of waiting to be dropped', async () => {
    hasher = new PasswordHasher(options(1, 4, 16));
    const ahead = Array.from({ length: 4 }, () => hasher!.hash('pw', 6)); // 1 running, 3 waiting
    const err = await hasher.hash('pw', 6, { deadlineMs: Date.now() + 1 }).catch((e: CarrelError) => e);
    expect((err as CarrelError).code).toBe('RESOURCE_EXHAUSTED');
    expect((err as CarrelError).details).toMatchObject({ limit: 'auth.maxQueuedRegisterJobs' });
    expect((err as CarrelError).details!.retryAfterMs as number).toBeGreaterThan(0);
    // With time enough, the same registration waits its turn; logins are never refused this way.
    const patient = hasher.hash('pw', 6, { deadlineMs: Date.now() + 60_000 });
    expect(await hasher.compare('pw', bcrypt.hashSync('pw', 4), { deadlineMs: Date.now() + 1_000 })).toBe(true);
    await Promise.all([...ahead, patient]);
    expect(hasher.lanes.register).toMatchObject({ refused: 1, expired: 0, started: 5 });
  });

  it('a single registration on an idle hasher starts at once', async () => {
    hasher = new PasswordHasher(options(1, 4, 16));
    const t0 = performance.now();
    await hasher.hash('pw', 4);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(hasher.lanes.register).toMatchObject({ started: 1, running: 0, queued: 0 });
  });
});
