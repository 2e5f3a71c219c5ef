// Group commit for bookings (docs/architecture.md, "Group commit"): every reservations.create —
// of one seat or of the best available — waits here, and whenever a database connection is free
// every booking waiting then (up to booking.maxBatch) goes in ONE round trip, carrel_book_batch
// (db/functions/carrel_book_batch.sql): one statement, one transaction, one commit, each booking
// in a subtransaction of its own with an outcome row of its own.
//
// - No timer is added: exactly one batch at a time waits for a connection, and it takes its
//   bookings when the connection arrives (Db builds the statement then). At low load that is one
//   booking; under load, everything that arrived while the previous batch ran. Beside a running
//   batch, another goes only with half a batch of bookings to carry (dispatch).
// - The batch passes the fair gate in front of the pool (db/admission.ts) as one client of its
//   own, "bookings", which may hold booking.maxBatchesInFlight connections at once and takes its
//   turn in the round robin like every other client; fairness between users' bookings is this
//   queue's (first come, first served, and at most one booking of a user in it:
//   ReservationService).
// - The opening lottery (docs/fairness.md): bookings that arrive in the first
//   rules.openingLotteryMs after their day's bookings open are held until that window ends and
//   then join the queue in a random order (crypto-random; tests give a seeded one).
// - A booking whose deadline has passed is answered DEADLINE_EXCEEDED without being sent; one
//   whose search is known full (seatSearches.ts) is answered noSeatFree without being sent; one
//   the database answered 'busy' (its seat's lock held by another transaction) goes to the front
//   of the queue for the next batch.
//
// Bounded: a user has at most one booking here (ReservationService refuses a second one), and
// each is a request in flight, which the RPC port bounds.
import { randomInt } from 'node:crypto';
import { CarrelError, ErrorCode } from '../errors.js';
import type { Db } from '../db/db.js';
import { DEADLINE_MARGIN_MS, deadlineExceeded, lockBudgetMs } from '../db/deadline.js';
import { LockClass } from '../db/lockKeys.js';
import type { Deadline } from '../deadline.js';
import type { Clock } from './clock.js';
import type { ReservationRow } from './reservationRow.js';
import type { RulesConfig } from './rules.js';
import { SeatSearches, type SearchShape, type WalkStart } from './seatSearches.js';
import { periodParams, type UserRuleInputs } from './userRules.js';

/** Batches that may walk one best-available shape at once. */
const WALKS_PER_SHAPE = 2;

/** The gate's client for batches: one client, whatever users are in them. */
export const BOOKINGS_CLIENT = 'bookings';

/** A best-available search: its shape, its key in SeatSearches, and the seat to be near. */
export interface SeatSearch {
  shape: SearchShape;
  key: string;
  near?: number;
}

/** One booking to make: a seat (seatId) or the best free one (search). */
export interface BookingRequest {
  userId: number;
  seatId?: number;
  search?: SeatSearch;
  startMs: number;
  endMs: number;
  idempotencyKey?: string;
  limits: UserRuleInputs;
  deadline?: Deadline;
}

export type BookOutcomeKind =
  | 'created'
  | 'existing'
  | 'suspended'
  | 'overlapsOwnBooking'
  | 'maxActive'
  | 'quota'
  | 'outOfService'
  | 'clash'
  | 'busy'
  | 'userBusy'
  | 'noSeatFree'
  | 'deadline'
  | 'accountGone';

/** What became of a booking: an outcome of carrel_book_batch, the reservation when there is one. */
export interface BookOutcome {
  outcome: Exclude<BookOutcomeKind, 'busy'>;
  row?: ReservationRow;
  period: number | null;
  used: number | null;
  otherId: number | null;
  /** 'clash': PostgreSQL's detail naming the clashing hold. */
  detail: string | null;
  /** 'noSeatFree' answered from what this instance knew, without the database. */
  known?: boolean;
}

/** A row of carrel_book_batch: the reservation's columns are null unless there is one. */
type BatchRow = { [K in keyof ReservationRow]: ReservationRow[K] | null } & {
  item: number;
  outcome: BookOutcomeKind;
  period: number | null;
  used: number | null;
  other_id: number | null;
  detail: string | null;
  resume_area: string | null;
  resume_label: string | null;
  resume_seat: number | null;
};

interface Queued {
  req: BookingRequest;
  /** When it was submitted (performance.now()). */
  since: number;
  resolve: (o: BookOutcome) => void;
  reject: (err: unknown) => void;
  /** The branch's SeatSearches generation when the batch that carries it was built. */
  gen?: number;
  /** Sent in the last attempt of its batch. */
  sent?: boolean;
}

export interface BookingQueueOptions {
  db: Db;
  clock: Clock;
  rules: Pick<RulesConfig, 'maxActivePerUser' | 'oneSeatAtATime'>;
  searches: SeatSearches;
  maxBatch: number;
  /** Batches that may hold a database connection at once (the gate's share of the bookings client). */
  maxBatchesInFlight: number;
  /** A number in [0, 1) for the opening lottery's shuffle; crypto-random by default. */
  random?: () => number;
}

/** The lottery's default shuffle: a crypto-random number in [0, 1) (randomInt takes at most 2^48 - 1). */
export const cryptoRandom = (): number => randomInt(2 ** 47) / 2 ** 47;

export class BookingQueue {
  private waiting: Queued[] = [];
  /** A batch is waiting for its connection; the next one starts once it has taken its bookings. */
  private connecting = false;
  /** Batches that took their bookings and have not been answered. */
  private readonly batches = new Set<Queued[]>();
  /**
   * Best-available shapes (SeatSearch.key) a batch is walking now, and the waiting bookings of
   * each shape. One batch at a time walks a shape: a second one would start where the first did
   * and step over every seat the first holds locked, and at the end of a filling branch walk it
   * all (measured: 3.5 ms of walking a booking with four batches of one shape at once).
   */
  private readonly walking = new Map<string, number>();
  private readonly waitingByShape = new Map<string, number>();
  /** Bookings held for an opening lottery, by the time of its draw. */
  private readonly draws = new Map<number, Queued[]>();
  private readonly random: () => number;
  readonly stats = { batches: 0, sent: 0, busy: 0, knownFull: 0, expired: 0 };
  /** How long a booking recently took from submit to its answer (ms, a moving average). */
  private answerMs = 10;

  constructor(private readonly opts: BookingQueueOptions) {
    this.random = opts.random ?? cryptoRandom;
  }

  /**
   * About when a booking submitted now will have been answered (ms): how long bookings took
   * lately, or longer while the oldest one still unanswered has waited longer (at the opening
   * rush nothing is answered yet while thousands arrive). The retryAfterMs of a refusal that waits
   * on one (bookingInFlight), 10 ms to 1 s.
   */
  retryAfterMs(): number {
    let oldest = this.waiting[0]?.since ?? Infinity;
    for (const batch of this.batches) oldest = Math.min(oldest, batch[0]?.since ?? Infinity);
    const waited = oldest === Infinity ? 0 : performance.now() - oldest;
    return Math.min(1_000, Math.max(10, Math.round(Math.max(this.answerMs, waited))));
  }

  /** Bookings waiting for a batch, and held for a lottery's draw (gauges). */
  get depth(): { waiting: number; held: number } {
    let held = 0;
    for (const q of this.draws.values()) held += q.length;
    return { waiting: this.waiting.length, held };
  }

  /**
   * The booking's outcome once a batch carried it. With drawAtMs in the future it is first held
   * for that lottery's draw.
   */
  submit(req: BookingRequest, drawAtMs?: number): Promise<BookOutcome> {
    return new Promise<BookOutcome>((resolve, reject) => {
      const q: Queued = { req, resolve, reject, since: performance.now() };
      const now = this.opts.clock.now();
      if (drawAtMs !== undefined && drawAtMs > now) {
        this.hold(q, drawAtMs, now);
        return;
      }
      // A draw whose time has come goes first, even if its timer has not run yet (a busy event
      // loop runs it late): what arrived in its window is never overtaken by what came after.
      this.drawDue(now);
      this.enqueue([q]);
      this.dispatch();
    });
  }

  // --- the opening lottery ------------------------------------------------------------------

  private hold(q: Queued, drawAtMs: number, now: number): void {
    let held = this.draws.get(drawAtMs);
    if (!held) {
      held = [];
      this.draws.set(drawAtMs, held);
      setTimeout(() => this.draw(drawAtMs), drawAtMs - now).unref();
    }
    held.push(q);
  }

  private drawDue(now: number): void {
    for (const at of [...this.draws.keys()]) if (at <= now) this.draw(at);
  }

  /** The lottery's window is over: its bookings join the queue in a random order (Fisher-Yates). */
  private draw(drawAtMs: number): void {
    const held = this.draws.get(drawAtMs);
    if (!held) return; // drawn already (drawDue ran before its timer)
    this.draws.delete(drawAtMs);
    for (let i = held.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [held[i], held[j]] = [held[j]!, held[i]!];
    }
    this.enqueue(held);
    this.dispatch();
  }

  // --- batches ------------------------------------------------------------------------------

  /**
   * Starts a batch unless one is already waiting for its connection. Beside a batch that is
   * running, another starts only with half a batch (booking.maxBatch / 2) of bookings waiting:
   * else it would carry a booking or two and a commit of its own, and the bookings arriving
   * meanwhile are better sent together when the running one is answered. A backlog (the opening
   * rush) runs up to booking.maxBatchesInFlight batches at once.
   */
  private dispatch(): void {
    if (this.connecting) return;
    const ready = this.takeable();
    if (ready === 0) return;
    if (this.batches.size > 0 && ready < Math.ceil(this.opts.maxBatch / 2)) return;
    this.connecting = true;
    let taken: Queued[] | undefined;
    const deadline = this.batchDeadline(() => taken ?? this.waiting);
    this.opts.db
      .query<BatchRow>(() => {
        if (!taken) {
          taken = this.take();
          this.batches.add(taken);
          this.connecting = false;
          queueMicrotask(() => this.dispatch());
        }
        return this.statement(taken);
      }, deadline)
      .then(
        (res) => this.settle(taken!, res.rows),
        (err: unknown) => this.fail(taken, err),
      );
  }

  /**
   * The batch's deadline: the latest of its bookings' (those waiting, until it takes them), and
   * its place at the gate as the bookings client. None when a booking has none (work that is not
   * a request).
   */
  private batchDeadline(items: () => Queued[]): Deadline | undefined {
    const first = this.waiting[0]?.req.deadline;
    if (!first || this.waiting.some((q) => !q.req.deadline)) return undefined;
    const gate = this.waiting.find((q) => q.req.deadline?.admission)?.req.deadline?.admission?.gate;
    return {
      // Until it takes its bookings, the first maxBatch waiting are the ones it would take.
      remainingMs: () => {
        let ms = -Infinity;
        const list = items();
        for (let i = 0; i < list.length && i < this.opts.maxBatch; i++) ms = Math.max(ms, list[i]!.req.deadline?.remainingMs() ?? Infinity);
        return ms;
      },
      admission: gate?.ticket(BOOKINGS_CLIENT, this.opts.maxBatchesInFlight),
    };
  }

  /** Waiting bookings a batch could take now: all but those of a shape another batch is walking. */
  private takeable(): number {
    let blocked = 0;
    for (const [key, n] of this.walking) if (n >= WALKS_PER_SHAPE) blocked += this.waitingByShape.get(key) ?? 0;
    return this.waiting.length - blocked;
  }

  private enqueue(items: Queued[], front = false): void {
    for (const q of items) {
      const key = q.req.search?.key;
      if (key !== undefined) this.waitingByShape.set(key, (this.waitingByShape.get(key) ?? 0) + 1);
    }
    if (front) this.waiting = items.concat(this.waiting);
    else for (const q of items) this.waiting.push(q);
  }

  /** Out of the waiting line (taken, answered, or failed there). */
  private dequeued(q: Queued): void {
    const key = q.req.search?.key;
    if (key === undefined) return;
    const n = (this.waitingByShape.get(key) ?? 1) - 1;
    if (n > 0) this.waitingByShape.set(key, n);
    else this.waitingByShape.delete(key);
  }

  /**
   * Up to maxBatch bookings, first come first; those of a shape another batch is walking stay in
   * line, in their places; those known full are answered here and not sent.
   */
  private take(): Queued[] {
    const taken: Queued[] = [];
    const shapes = new Set<string>();
    const left: Queued[] = [];
    let i = 0;
    for (; i < this.waiting.length && taken.length < this.opts.maxBatch; i++) {
      const q = this.waiting[i]!;
      const search = q.req.search;
      if (search && (this.walking.get(search.key) ?? 0) >= WALKS_PER_SHAPE) {
        left.push(q);
        continue;
      }
      this.dequeued(q);
      if (search && this.opts.searches.isFull(search.key)) {
        this.stats.knownFull++;
        q.resolve(knownFull());
        continue;
      }
      if (search) shapes.add(search.key);
      taken.push(q);
    }
    this.waiting = left.concat(this.waiting.slice(i));
    for (const key of shapes) this.walking.set(key, (this.walking.get(key) ?? 0) + 1);
    return taken;
  }

  /** The batch is over: the shapes it walked may be walked again. */
  private released(taken: Queued[]): void {
    const shapes = new Set<string>();
    for (const q of taken) if (q.req.search) shapes.add(q.req.search.key);
    for (const key of shapes) {
      const n = (this.walking.get(key) ?? 1) - 1;
      if (n > 0) this.walking.set(key, n);
      else this.walking.delete(key);
    }
  }

  /** The batch's statement; bookings whose time has run out are left out (and answered in settle). */
  private statement(taken: Queued[]): { name: string; text: string; values: unknown[] } {
    const { searches, rules } = this.opts;
    const shapes = new Map<string, number>();
    const items: unknown[] = [];
    taken.forEach((q, i) => {
      const r = q.req;
      let ms: number | null;
      try {
        ms = lockBudgetMs(r.deadline);
      } catch {
        q.sent = false;
        return;
      }
      q.sent = true;
      const [ps, pe, pq] = periodParams(r.limits);
      const item: Record<string, unknown> = {
        i,
        u: r.userId,
        st: new Date(r.startMs).toISOString(),
        en: new Date(r.endMs).toISOString(),
        k: r.idempotencyKey,
        ps: ps.map((d) => d.toISOString()),
        pe: pe.map((d) => d.toISOString()),
        pq,
        ms: ms ?? undefined,
      };
      if (r.seatId !== undefined) item.s = r.seatId;
      else if (r.search) {
        const s = r.search;
        let sh = shapes.get(s.key);
        if (sh === undefined) shapes.set(s.key, (sh = shapes.size + 1));
        q.gen = searches.generation(s.shape.branchId);
        const from = s.near === undefined ? searches.walkStart(s.key) : null;
        Object.assign(item, {
          b: s.shape.branchId,
          a: s.shape.area,
          pw: s.shape.hasPower,
          mo: s.shape.hasMonitor,
          n: s.near,
          sh,
          fa: from?.area,
          fl: from?.label,
          fs: from?.seatId,
        });
      }
      items.push(item);
    });
    this.stats.batches++;
    this.stats.sent += items.length;
    return {
      name: 'carrel.bookBatch',
      text: 'SELECT * FROM carrel_book_batch($1::jsonb, $2, $3, $4, $5)',
      values: [JSON.stringify(items), new Date(this.opts.clock.now()), LockClass.userBooking, rules.maxActivePerUser, rules.oneSeatAtATime],
    };
  }

  /**
   * The batch's answers. What its walks found is learnt and the next batch is on its way before
   * any booking is answered, so that the database walks on while this instance replies.
   */
  private settle(taken: Queued[], rows: BatchRow[]): void {
    this.batches.delete(taken);
    this.released(taken);
    const byItem = new Map(rows.map((r) => [r.item, r]));
    const again: Queued[] = [];
    const answers: Array<[Queued, BatchRow | undefined]> = [];
    taken.forEach((q, i) => {
      const row = q.sent ? byItem.get(i) : undefined;
      if (row) this.learn(q, row);
      if (row?.outcome === 'busy') {
        this.stats.busy++;
        again.push(q);
      } else answers.push([q, row]);
    });
    this.enqueue(again, true);
    this.dispatch();
    const now = performance.now();
    for (const [q, row] of answers) {
      if (!row) {
        this.stats.expired++;
        q.reject(deadlineExceeded('before its booking was sent to the database'));
        continue;
      }
      this.answerMs += (now - q.since - this.answerMs) / 32;
      q.resolve(outcomeOf(row));
    }
  }

  /** What the walk found, for the next request of its shape. */
  private learn(q: Queued, row: BatchRow): void {
    const search = q.req.search;
    if (!search || q.gen === undefined) return;
    const { searches } = this.opts;
    if (row.outcome === 'noSeatFree') searches.learn(search.key, search.shape.branchId, q.gen, { full: true });
    else if (row.resume_seat !== null && row.resume_area !== null && row.resume_label !== null) {
      const from: WalkStart = { area: row.resume_area, label: row.resume_label, seatId: row.resume_seat };
      searches.learn(search.key, search.shape.branchId, q.gen, { from });
    }
  }

  /**
   * The batch failed as a whole. Taken: its bookings share the error. Not taken (no connection
   * within the deadline, the gate refused): the bookings whose own time ran out get
   * DEADLINE_EXCEEDED; a refusal of the gate is every waiting booking's.
   */
  private fail(taken: Queued[] | undefined, err: unknown): void {
    if (taken) {
      this.batches.delete(taken);
      this.released(taken);
      for (const q of taken) q.reject(err);
    } else {
      this.connecting = false;
      const timedOut = err instanceof CarrelError && err.code === ErrorCode.DEADLINE_EXCEEDED;
      for (let i = this.waiting.length - 1; i >= 0; i--) {
        const q = this.waiting[i]!;
        const left = q.req.deadline?.remainingMs() ?? Infinity;
        if (!timedOut || left <= DEADLINE_MARGIN_MS) {
          this.waiting.splice(i, 1);
          this.dequeued(q);
          q.reject(err);
        }
      }
    }
    this.dispatch();
  }
}

function knownFull(): BookOutcome {
  return { outcome: 'noSeatFree', period: null, used: null, otherId: null, detail: null, known: true };
}

function outcomeOf(r: BatchRow): BookOutcome {
  const out: BookOutcome = {
    outcome: r.outcome as BookOutcome['outcome'],
    period: r.period,
    used: r.used,
    otherId: r.other_id,
    detail: r.detail,
  };
  if (r.id !== null) {
    out.row = {
      id: r.id,
      seat_id: r.seat_id!,
      user_id: r.user_id!,
      branch_id: r.branch_id!,
      start_at: r.start_at!,
      end_at: r.end_at!,
      status: r.status!,
      created_at: r.created_at!,
      checked_in_at: r.checked_in_at,
      offer_expires_at: r.offer_expires_at,
      waitlist_id: r.waitlist_id,
    };
  }
  return out;
}
