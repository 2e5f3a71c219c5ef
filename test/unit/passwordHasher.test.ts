import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it } from 'vitest';
import { PasswordHasher } from '../../src/auth/passwordHasher.js';
import { CarrelError } from '../../src/errors.js';

let hasher: PasswordHasher | undefined;
afterEach(async () => {
  await hasher?.close();
  hasher = undefined;
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CarrelError) return err.code;
    throw err;
  }
  return 'OK';
}

describe('password hasher', () => {
  it('hashes and compares on a worker thread, compatible with bcryptjs on the main thread', async () => {
    hasher = new PasswordHasher({ workers: 1, maxQueuedJobs: 4 });
    const hash = await hasher.hash('correct horse', 4);
    expect(hash).toMatch(/^\$2b\$04\$/);
    expect(bcrypt.compareSync('correct horse', hash)).toBe(true);
    expect(await hasher.compare('correct horse', bcrypt.hashSync('correct horse', 4))).toBe(true);
    expect(await hasher.compare('wrong horse', hash)).toBe(false);
    expect(hasher.stats).toEqual({ workers: 1, running: 0, queued: 0 });
  });

  it('refuses past workers + maxQueuedJobs places with RESOURCE_EXHAUSTED and a retry hint, then admits again', async () => {
    hasher = new PasswordHasher({ workers: 1, maxQueuedJobs: 2 });
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
    hasher = new PasswordHasher({ workers: 1, maxQueuedJobs: 0 });
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
    hasher = new PasswordHasher({ workers: 1, maxQueuedJobs: 4 });
    const hash = bcrypt.hashSync('pw', 4);
    const first = hasher.compare('pw', hash);
    const late = hasher.compare('pw', hash, { deadlineMs: Date.now() - 1 });
    expect(await codeOf(late)).toBe('DEADLINE_EXCEEDED');
    expect(await first).toBe(true);
    expect(hasher.expired).toBe(1);
  });

  it('close() refuses what waits and what comes after, and stops the workers', async () => {
    hasher = new PasswordHasher({ workers: 1, maxQueuedJobs: 4 });
    const hash = bcrypt.hashSync('pw', 4);
    const outcomes = [codeOf(hasher.compare('pw', hash)), codeOf(hasher.compare('pw', hash))];
    await hasher.close();
    expect(await Promise.all(outcomes)).toEqual(['UNAVAILABLE', 'UNAVAILABLE']);
    expect(await codeOf(hasher.compare('pw', hash))).toBe('UNAVAILABLE');
    expect(hasher.stats).toEqual({ workers: 1, running: 0, queued: 0 });
  });
});
