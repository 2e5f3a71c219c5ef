// Password hashing off the event loop, with a bound on the work waiting for it.
//
// bcryptjs is pure JavaScript: on the main thread, 2 connections × 100 pipelined auth.login
// (inside the per-connection burst) stalled every other request for 6-8 s (audit: PING 7.9 s).
// Here each hash or compare runs on one of a few worker threads (auth.hashWorkers; by default
// one fewer than the cores, at least one), one job per worker at a time, and jobs wait in one
// global FIFO of at most auth.maxQueuedHashJobs. A place in it is taken before the caller does
// other work for the job (the user lookup); past the bound, reserve() refuses at once
// with RESOURCE_EXHAUSTED and a retry hint (how long the work ahead should take) — an overload
// answer the client can act on, never UNAVAILABLE or INTERNAL. A job whose request deadline
// passes while it waits is dropped before it costs any CPU.
//
// The queue serves known and unknown accounts alike, so a wrong password and an unknown student
// id still cost the same work and wait in the same line (src/core/accounts.ts).
//
// The worker is a short CommonJS script run with `eval`, so the same code serves the compiled
// server and the TypeScript sources under test; it loads bcryptjs by the absolute path this
// module resolves. Workers start on first use, are unref'd while idle (they never keep the
// process alive by themselves), and one that dies is replaced on the next job.
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { CarrelError, ErrorCode } from '../errors.js';

export interface PasswordHasherOptions {
  /** Worker threads; 0 picks availableParallelism() − 1, at least 1. */
  workers: number;
  /** Jobs that may wait for a free worker; past it new jobs are refused. */
  maxQueuedJobs: number;
}

export interface JobOptions {
  /** Absolute time (ms since epoch, Date.now()) after which nobody waits for the answer. */
  deadlineMs?: number;
}

type Op = 'hash' | 'compare';

interface Job {
  id: number;
  op: Op;
  password: string;
  /** The cost for hash, the stored hash for compare. */
  arg: number | string;
  deadlineMs: number | undefined;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker | undefined;
  job: Job | undefined;
  startedMs: number;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', ({ id, op, password, arg }) => {
  try {
    const value = op === 'hash' ? bcrypt.hashSync(password, arg) : bcrypt.compareSync(password, arg);
    parentPort.postMessage({ id, value });
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

export function defaultHashWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** A place in the hash queue, taken before other work (the user lookup); run one job with it or release it. */
export interface HashTicket {
  hash(password: string, cost: number, opts?: JobOptions): Promise<string>;
  compare(password: string, hash: string, opts?: JobOptions): Promise<boolean>;
  /** Gives the place back if no job used it; does nothing after one did. */
  release(): void;
}

export class PasswordHasher {
  readonly size: number;
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private readonly bcryptPath = createRequire(import.meta.url).resolve('bcryptjs');
  /** Places taken: reserved and unused, queued, or running. At most size + maxQueuedJobs. */
  private admitted = 0;
  private nextId = 1;
  private closed = false;
  /** Mean job time, for the retry hint; starts at a cost-10 guess. */
  private meanJobMs = 50;
  /** Jobs refused because the queue was full. */
  refused = 0;
  /** Jobs dropped unrun because their deadline passed while they waited. */
  expired = 0;

  constructor(private readonly opts: PasswordHasherOptions) {
    this.size = opts.workers > 0 ? opts.workers : defaultHashWorkers();
    this.slots = Array.from({ length: this.size }, () => ({ worker: undefined, job: undefined, startedMs: 0 }));
  }

  hash(password: string, cost: number, opts: JobOptions = {}): Promise<string> {
    try {
      return this.reserve().hash(password, cost, opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  compare(password: string, hash: string, opts: JobOptions = {}): Promise<boolean> {
    try {
      return this.reserve().compare(password, hash, opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Takes a place for one job, or throws RESOURCE_EXHAUSTED (details.retryAfterMs: roughly how
   * long the work ahead takes) when every worker is busy and maxQueuedJobs places are taken.
   */
  reserve(): HashTicket {
    if (this.closed) throw new CarrelError(ErrorCode.UNAVAILABLE, 'server shutting down');
    if (this.admitted >= this.size + this.opts.maxQueuedJobs) {
      this.refused++;
      const retryAfterMs = Math.max(1, Math.ceil((this.admitted * this.meanJobMs) / this.size));
      throw new CarrelError(
        ErrorCode.RESOURCE_EXHAUSTED,
        `too many password checks waiting; try again in ${retryAfterMs} ms`,
        { retryAfterMs, limit: 'auth.maxQueuedHashJobs' },
      );
    }
    this.admitted++;
    let used = false;
    const use = (op: Op, password: string, arg: number | string, opts: JobOptions = {}): Promise<unknown> => {
      if (used) return Promise.reject(new Error('a hash ticket runs one job'));
      used = true;
      return this.run(op, password, arg, opts);
    };
    return {
      hash: (password, cost, opts) => use('hash', password, cost, opts) as Promise<string>,
      compare: (password, hash, opts) => use('compare', password, hash, opts) as Promise<boolean>,
      release: () => {
        if (used) return;
        used = true;
        this.admitted--;
      },
    };
  }

  /** Jobs running on a worker and jobs waiting for one (places reserved for a job count as queued). */
  get stats(): { workers: number; running: number; queued: number } {
    const running = this.slots.filter((s) => s.job).length;
    return { workers: this.size, running, queued: this.admitted - running };
  }

  /** Refuses queued jobs and stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const gone = new CarrelError(ErrorCode.UNAVAILABLE, 'server shutting down');
    for (const job of this.queue.splice(0)) this.settle(job, gone);
    await Promise.all(
      this.slots.map(async (slot) => {
        const { worker, job } = slot;
        slot.worker = undefined;
        slot.job = undefined;
        if (job) this.settle(job, gone);
        if (worker) await worker.terminate();
      }),
    );
  }

  /** Runs a job on a place already taken. */
  private run(op: Op, password: string, arg: number | string, opts: JobOptions): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const job: Job = { id: this.nextId++, op, password, arg, deadlineMs: opts.deadlineMs, resolve, reject };
      if (this.closed) return this.settle(job, new CarrelError(ErrorCode.UNAVAILABLE, 'server shutting down'));
      this.queue.push(job);
      this.pump();
    });
  }

  /** Ends a job, gives its place back. */
  private settle(job: Job, err: Error | undefined, value?: unknown): void {
    this.admitted--;
    if (err) job.reject(err);
    else job.resolve(value);
  }

  /** Hands waiting jobs to idle workers. */
  private pump(): void {
    for (const slot of this.slots) {
      if (slot.job) continue;
      let job: Job | undefined;
      while ((job = this.queue.shift())) {
        if (job.deadlineMs === undefined || Date.now() < job.deadlineMs) break;
        this.expired++;
        this.settle(job, new CarrelError(ErrorCode.DEADLINE_EXCEEDED, 'the request deadline passed before the password was checked'));
      }
      if (!job) return;
      const worker = (slot.worker ??= this.spawn(slot));
      slot.job = job;
      slot.startedMs = performance.now();
      worker.ref();
      worker.postMessage({ id: job.id, op: job.op, password: job.password, arg: job.arg });
    }
  }

  private spawn(slot: Slot): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath: this.bcryptPath } });
    worker.unref();
    worker.on('message', (m: { id: number; value?: unknown; error?: string }) => {
      const job = slot.job;
      if (slot.worker !== worker || !job || job.id !== m.id) return;
      slot.job = undefined;
      this.meanJobMs += (performance.now() - slot.startedMs - this.meanJobMs) / 8;
      worker.unref();
      this.settle(job, m.error === undefined ? undefined : new Error(`password ${job.op} failed: ${m.error}`), m.value);
      this.pump();
    });
    const lost = (err: Error): void => {
      if (slot.worker !== worker) return;
      const job = slot.job;
      slot.worker = undefined;
      slot.job = undefined;
      if (job) this.settle(job, err);
      if (!this.closed) this.pump();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`password worker exited with code ${code}`)));
    return worker;
  }
}
