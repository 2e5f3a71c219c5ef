// Password hashing off the event loop, with a bound on the work waiting for it, and a fair
// split of that work between logins and registrations (docs/accounts.md, "Password work").
//
// bcryptjs is pure JavaScript: on the main thread, 2 connections × 100 pipelined auth.login
// (inside the per-connection burst) stalled every other request for 6-8 s (audit: PING 7.9 s).
// Here each hash or compare runs on one of a few worker threads (auth.hashWorkers; by default
// one fewer than the cores, at least one), one job per worker at a time.
//
// Jobs wait in one of two lanes, each with its own bound, so neither can fill the other's:
//   login     compares for auth.login, at most auth.maxQueuedHashJobs waiting, on any worker;
//   register  hashes for auth.register, at most auth.maxQueuedRegisterJobs waiting, and never
//             more than auth.registerWorkerShare of the workers: at most that share of them
//             at once (rounded down, at least one), at most that share of the workers' time,
//             and while logins also wait, at most that share of the jobs started.
// Before the lanes, 4 connections keeping 40 registrations each in flight filled the one shared
// queue of 64, and every honest login behind them was refused (docs/accounts.md has the figures).
// The time share matters on small machines: with one worker, a share of the starts alone still
// let back-to-back registration hashes keep the worker (and its core) busy, so every login
// waited for a running hash and computed its own on a contended CPU — 6x the idle median. A
// budget of worker time (share × workers per elapsed ms; a hash's duration is spent when it
// ends) keeps registrations to their share, so a flood of new ids leaves the worker idle most
// of the time. A registration arriving when the budget is not overdrawn starts at once.
//
// A place in a lane is taken before the caller does other work for the job (the user lookup);
// past the lane's bound — or, for a registration, when the ones ahead would keep it from
// starting before its request deadline — reserve() refuses at once with RESOURCE_EXHAUSTED and
// a retry hint (how long the lane's work ahead should take): an overload answer the client can
// act on, never UNAVAILABLE or INTERNAL. A job whose request deadline passes while it waits
// anyway is dropped before it costs any CPU.
//
// Logins of known and unknown accounts share the login lane, so a wrong password and an unknown
// student id still cost the same work and wait in the same line (src/core/accounts.ts).
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
  /** Login jobs that may wait for a free worker; past it new ones are refused. */
  maxQueuedJobs: number;
  /** Registration jobs that may wait; past it new ones are refused. */
  maxQueuedRegisterJobs: number;
  /**
   * Share (0-1) of the workers registrations may hold at once (rounded down, at least one),
   * and of the jobs started while logins wait too.
   */
  registerWorkerShare: number;
}

export interface JobOptions {
  /** Absolute time (ms since epoch, Date.now()) after which nobody waits for the answer. */
  deadlineMs?: number;
}

/** login: compares for auth.login. register: hashes for auth.register. */
export type HashLane = 'login' | 'register';

export interface LaneStats {
  /** Jobs running on a worker. */
  running: number;
  /** Places taken and not running: reserved for a job or waiting for a worker. */
  queued: number;
  /** Jobs handed to a worker since start. */
  started: number;
  /** Places refused because the lane was full. */
  refused: number;
  /** Jobs dropped unrun because their deadline passed while they waited. */
  expired: number;
  /** Worker time spent on the lane's finished jobs since start, ms. */
  busyMs: number;
}

type Op = 'hash' | 'compare';

interface Job {
  id: number;
  lane: Lane;
  op: Op;
  password: string;
  /** The cost for hash, the stored hash for compare. */
  arg: number | string;
  deadlineMs: number | undefined;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Lane {
  readonly name: HashLane;
  readonly queue: Job[];
  /** Workers this lane may hold at once. */
  readonly maxRunning: number;
  /** Places: running, waiting and reserved-but-unused jobs together. */
  readonly maxAdmitted: number;
  /** The config key a refusal names. */
  readonly limitKey: string;
  /** Mean job time, for retry hints and the registrations' expected wait; starts at a cost-10 guess. */
  meanJobMs: number;
  admitted: number;
  running: number;
  started: number;
  refused: number;
  expired: number;
  busyMs: number;
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

/** A place in a lane, taken before other work (the user lookup); run one job with it or release it. */
export interface HashTicket {
  hash(password: string, cost: number, opts?: JobOptions): Promise<string>;
  compare(password: string, hash: string, opts?: JobOptions): Promise<boolean>;
  /** Gives the place back if no job used it; does nothing after one did. */
  release(): void;
}

export class PasswordHasher {
  readonly size: number;
  private readonly slots: Slot[];
  private readonly login: Lane;
  private readonly register: Lane;
  private readonly registerShare: number;
  /**
   * How many starts registrations are owed while logins wait too: grows by registerShare per
   * start while registrations wait (up to one), a registration is started when it reaches one.
   */
  private registerCredit = 0;
  /**
   * Worker time (ms) registrations may still use: refilled at registerShare × size per elapsed
   * ms, up to 0; a finished hash spends its duration. A registration starts only while it is 0.
   */
  private registerBudgetMs = 0;
  private registerBudgetAtMs = performance.now();
  /** Wakes pump() when the budget is back to 0 and registrations wait. */
  private budgetTimer: NodeJS.Timeout | undefined;
  private readonly bcryptPath = createRequire(import.meta.url).resolve('bcryptjs');
  private nextId = 1;
  private closed = false;

  constructor(opts: PasswordHasherOptions) {
    this.size = opts.workers > 0 ? opts.workers : defaultHashWorkers();
    this.slots = Array.from({ length: this.size }, () => ({ worker: undefined, job: undefined, startedMs: 0 }));
    this.registerShare = Math.min(1, Math.max(0.01, opts.registerWorkerShare));
    const registerWorkers = Math.max(1, Math.floor(this.size * this.registerShare));
    this.login = newLane('login', this.size, this.size + opts.maxQueuedJobs, 'auth.maxQueuedHashJobs');
    this.register = newLane('register', registerWorkers, registerWorkers + opts.maxQueuedRegisterJobs, 'auth.maxQueuedRegisterJobs');
  }

  hash(password: string, cost: number, opts: JobOptions = {}, lane: HashLane = 'register'): Promise<string> {
    try {
      return this.reserve(lane, opts).hash(password, cost, opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  compare(password: string, hash: string, opts: JobOptions = {}, lane: HashLane = 'login'): Promise<boolean> {
    try {
      return this.reserve(lane, opts).compare(password, hash, opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Takes a place in a lane for one job, or throws RESOURCE_EXHAUSTED (details.retryAfterMs:
   * roughly how long the lane's work ahead takes; details.limit: the lane's config key) when
   * the lane holds all the places it may — or, for a registration with a deadline, when the
   * registrations ahead of it would not let it start before that deadline: told now to come
   * back, rather than dropped unhashed when the deadline passes.
   */
  reserve(laneName: HashLane = 'login', opts: JobOptions = {}): HashTicket {
    if (this.closed) throw new CarrelError(ErrorCode.UNAVAILABLE, 'server shutting down');
    const lane = laneName === 'register' ? this.register : this.login;
    const full = lane.admitted >= lane.maxAdmitted;
    const tooLate = lane === this.register && opts.deadlineMs !== undefined && Date.now() + this.registerWaitMs() >= opts.deadlineMs;
    if (full || tooLate) {
      lane.refused++;
      const retryAfterMs = Math.max(
        1,
        Math.ceil(lane === this.register ? this.registerWaitMs() + lane.meanJobMs / this.registerRate() : (lane.admitted * lane.meanJobMs) / this.size),
      );
      const what = laneName === 'register' ? 'registrations' : 'password checks';
      throw new CarrelError(
        ErrorCode.RESOURCE_EXHAUSTED,
        `too many ${what} waiting; try again in ${retryAfterMs} ms`,
        { retryAfterMs, limit: lane.limitKey },
      );
    }
    lane.admitted++;
    let used = false;
    const use = (op: Op, password: string, arg: number | string, opts: JobOptions = {}): Promise<unknown> => {
      if (used) return Promise.reject(new Error('a hash ticket runs one job'));
      used = true;
      return this.run(lane, op, password, arg, opts);
    };
    return {
      hash: (password, cost, opts) => use('hash', password, cost, opts) as Promise<string>,
      compare: (password, hash, opts) => use('compare', password, hash, opts) as Promise<boolean>,
      release: () => {
        if (used) return;
        used = true;
        lane.admitted--;
      },
    };
  }

  /** Jobs running on a worker and jobs waiting for one, both lanes together (places reserved for a job count as queued). */
  get stats(): { workers: number; running: number; queued: number } {
    const running = this.login.running + this.register.running;
    return { workers: this.size, running, queued: this.login.admitted + this.register.admitted - running };
  }

  /** The same, and the counters, per lane. */
  get lanes(): Record<HashLane, LaneStats> {
    const of = (l: Lane): LaneStats => ({
      running: l.running,
      queued: l.admitted - l.running,
      started: l.started,
      refused: l.refused,
      expired: l.expired,
      busyMs: l.busyMs,
    });
    return { login: of(this.login), register: of(this.register) };
  }

  /** Places refused because a lane was full, both lanes. */
  get refused(): number {
    return this.login.refused + this.register.refused;
  }

  /** Jobs dropped unrun because their deadline passed while they waited, both lanes. */
  get expired(): number {
    return this.login.expired + this.register.expired;
  }

  /** Refuses queued jobs and stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.budgetTimer);
    const gone = new CarrelError(ErrorCode.UNAVAILABLE, 'server shutting down');
    for (const job of [...this.login.queue.splice(0), ...this.register.queue.splice(0)]) this.settle(job, gone);
    await Promise.all(
      this.slots.map(async (slot) => {
        const { worker, job } = slot;
        slot.worker = undefined;
        slot.job = undefined;
        if (job) {
          job.lane.running--;
          this.settle(job, gone);
        }
        if (worker) await worker.terminate();
      }),
    );
  }

  /** Runs a job on a place already taken. */
  private run(lane: Lane, op: Op, password: string, arg: number | string, opts: JobOptions): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const job: Job = { id: this.nextId++, lane, op, password, arg, deadlineMs: opts.deadlineMs, resolve, reject };
      if (this.closed) return this.settle(job, new CarrelError(ErrorCode.UNAVAILABLE, 'server shutting down'));
      lane.queue.push(job);
      this.pump();
    });
  }

  /** Ends a job, gives its place back. */
  private settle(job: Job, err: Error | undefined, value?: unknown): void {
    job.lane.admitted--;
    if (err) job.reject(err);
    else job.resolve(value);
  }

  /** The first waiting job of a lane whose deadline has not passed; the expired ones are dropped. */
  private head(lane: Lane): Job | undefined {
    let job: Job | undefined;
    while ((job = lane.queue[0])) {
      if (job.deadlineMs === undefined || Date.now() < job.deadlineMs) return job;
      lane.queue.shift();
      lane.expired++;
      this.settle(job, new CarrelError(ErrorCode.DEADLINE_EXCEEDED, 'the request deadline passed before the password was checked'));
    }
    return undefined;
  }

  /**
   * The lane the next free worker serves: logins, except that registrations get their share of
   * the starts while both wait, and whatever waits when only one lane does. Registrations
   * never hold more than their workers, nor start while their time budget is overdrawn.
   */
  private nextLane(): Lane | undefined {
    const loginWaits = this.head(this.login) !== undefined;
    if (this.head(this.register) === undefined) return loginWaits ? this.login : undefined;
    const registerMay = this.register.running < this.register.maxRunning && this.registerBudgetReady();
    if (!loginWaits) return registerMay ? this.register : undefined;
    // Owed while they wait, whether or not they may start now; at most one start owed.
    this.registerCredit = Math.min(1, this.registerCredit + this.registerShare);
    if (registerMay && this.registerCredit >= 1) {
      this.registerCredit -= 1;
      return this.register;
    }
    return this.login;
  }

  /** Worker time registrations may use per elapsed ms. */
  private registerRate(): number {
    return this.registerShare * this.size;
  }

  /** The budget refilled up to now. */
  private refillRegisterBudget(): void {
    const now = performance.now();
    this.registerBudgetMs = Math.min(0, this.registerBudgetMs + (now - this.registerBudgetAtMs) * this.registerRate());
    this.registerBudgetAtMs = now;
  }

  /** Roughly how long a registration admitted now waits to start: the budget owed, then the ones queued ahead. */
  private registerWaitMs(): number {
    this.refillRegisterBudget();
    const queued = this.register.admitted - this.register.running;
    return (-this.registerBudgetMs + queued * this.register.meanJobMs) / this.registerRate();
  }

  /** Whether the registrations' time budget allows a start now; if not, pump() is woken when it will. */
  private registerBudgetReady(): boolean {
    const rate = this.registerRate();
    this.refillRegisterBudget();
    if (this.registerBudgetMs >= 0) return true;
    if (!this.budgetTimer && !this.closed) {
      this.budgetTimer = setTimeout(() => {
        this.budgetTimer = undefined;
        this.pump();
      }, Math.ceil(-this.registerBudgetMs / rate));
    }
    return false;
  }

  /** Hands waiting jobs to idle workers. */
  private pump(): void {
    for (const slot of this.slots) {
      if (slot.job) continue;
      const lane = this.nextLane();
      if (!lane) return;
      const job = lane.queue.shift()!;
      lane.running++;
      lane.started++;
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
      job.lane.running--;
      const tookMs = performance.now() - slot.startedMs;
      job.lane.busyMs += tookMs;
      if (job.lane === this.register) this.registerBudgetMs -= tookMs;
      job.lane.meanJobMs += (tookMs - job.lane.meanJobMs) / 8;
      worker.unref();
      this.settle(job, m.error === undefined ? undefined : new Error(`password ${job.op} failed: ${m.error}`), m.value);
      this.pump();
    });
    const lost = (err: Error): void => {
      if (slot.worker !== worker) return;
      const job = slot.job;
      slot.worker = undefined;
      slot.job = undefined;
      if (job) {
        job.lane.running--;
        this.settle(job, err);
      }
      if (!this.closed) this.pump();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`password worker exited with code ${code}`)));
    return worker;
  }
}

function newLane(name: HashLane, maxRunning: number, maxAdmitted: number, limitKey: string): Lane {
  return { name, queue: [], maxRunning, maxAdmitted, limitKey, meanJobMs: 50, admitted: 0, running: 0, started: 0, refused: 0, expired: 0, busyMs: 0 };
}
