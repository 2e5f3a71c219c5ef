// Set-up the scenarios share, done before any measured window: real users registered and
// logged in over RPC (so their tokens are the server's own), the seats to aim at, and an
// allocator of distinct seat-and-slot pairs so that booking load is never a conflict storm.
import { RpcClient, type RpcReply } from '../clients/rpcClient.js';
import type { MethodResults, SeatWire } from '../src/wire/types.js';

export interface BenchUser {
  studentId: string;
  token: string;
}

export interface SeatRef {
  id: number;
  branch: string;
}

/** The password of every user the load generator registers (the abuse scenario logs them in again). */
export const BENCH_PASSWORD = 'bench-password-1';

/**
 * Registers `n` users (ids `<prefix>-<i>`) and logs each in. Spread over enough connections
 * that the shipped per-connection auth limit (burst 100) is never reached.
 */
export async function registerUsers(host: string, port: number, n: number, prefix: string): Promise<BenchUser[]> {
  const perConn = 40;
  const conns = Math.max(1, Math.ceil(n / perConn));
  const users: BenchUser[] = new Array(n);
  await Promise.all(
    Array.from({ length: conns }, async (_, c) => {
      const client = await RpcClient.connect(host, port);
      try {
        for (let i = c; i < n; i += conns) {
          const studentId = `${prefix}-${i}`;
          const reg = await withRetryHint(() => client.request('auth.register', [{ studentId, name: `Bench User ${i}`, password: BENCH_PASSWORD }]));
          if (reg.error && reg.error.code !== 'CONFLICT') throw new Error(`auth.register ${studentId}: ${reg.error.code} ${reg.error.message}`);
          const login = await withRetryHint(() => client.request('auth.login', [{ studentId, password: BENCH_PASSWORD }]));
          if (login.error) throw new Error(`auth.login ${studentId}: ${login.error.code} ${login.error.message}`);
          users[i] = { studentId, token: (login.result as MethodResults['auth.login']).token };
        }
      } finally {
        client.close();
      }
    }),
  );
  return users;
}

/**
 * Retries a call the server refused as busy (RESOURCE_EXHAUSTED), after the wait it asked for,
 * for up to `giveUpAfterMs`. A bound on time, not on attempts: registering thousands of users at
 * once (the rush's) keeps the registration queue full for tens of seconds, and each refusal
 * only says when to come back.
 */
async function withRetryHint(call: () => Promise<RpcReply>, giveUpAfterMs = 120_000): Promise<RpcReply> {
  const until = performance.now() + giveUpAfterMs;
  for (;;) {
    const reply = await call();
    if (reply.error?.code !== 'RESOURCE_EXHAUSTED' || performance.now() >= until) return reply;
    const wait = Number(reply.error.details?.retryAfterMs ?? 100);
    await new Promise((r) => setTimeout(r, Math.min(5000, Math.max(10, wait))));
  }
}

/** Seat ids of a branch, in id order. */
export async function branchSeats(host: string, port: number, branch: string): Promise<SeatRef[]> {
  const client = await RpcClient.connect(host, port);
  try {
    // Any window will do: the listing is what we want, not the availability.
    const seats = await client.call<SeatWire[]>('seats.list', { branch });
    return seats.map((s) => ({ id: s.id, branch: s.branch })).sort((a, b) => a.id - b.id);
  } finally {
    client.close();
  }
}

const SLOT_MS = 30 * 60_000;

/**
 * Hands out distinct (seat, 30-minute slot) pairs on a branch open around the clock, counting from
 * the first whole half hour at least `leadMs` from now. `firstSlot` offsets the range so that two
 * users of one database (carrel's runs and the pgbench baseline) never ask for the same pair.
 *
 * A user's pairs never overlap in time (the server books one seat at a time per person,
 * rules.oneSeatAtATime): each user walks the slots from the first, one booking a slot, and takes
 * the next seat of that slot that nobody has been handed. A storm round takes a whole slot from the
 * top of the range, which no user is then handed.
 */
export class SlotAllocator {
  private k = 0;
  readonly baseMs: number;
  /** Per user (by its index), the next slot it may be handed. */
  private readonly userNext = new Map<number, number>();
  /** Per slot (from firstSlot), the seats of it handed out. */
  private readonly filled: number[] = [];
  /** Slots from here up were taken whole. */
  private top: number;

  constructor(
    private readonly seats: readonly number[],
    readonly firstSlot = 0,
    readonly maxSlots = 13 * 48,
    nowMs = Date.now(),
    leadMs = 30 * 60_000,
  ) {
    if (seats.length === 0) throw new Error('no seats to book');
    this.baseMs = Math.ceil((nowMs + leadMs) / SLOT_MS) * SLOT_MS;
    this.top = maxSlots;
  }

  /** Pairs handed out. */
  get used(): number {
    return this.k;
  }

  /** The next pair for user `user`: a slot after every one it was handed, a seat nobody was handed in it. */
  nextFor(user: number): { seatId: number; start: string; end: string } {
    let slot = this.userNext.get(user) ?? this.firstSlot;
    while (slot < this.top && (this.filled[slot - this.firstSlot] ?? 0) >= this.seats.length) slot++;
    if (slot >= this.top) throw new Error(`the bench branch has no free slots left for user ${user} (${this.k} pairs used)`);
    const i = this.filled[slot - this.firstSlot] ?? 0;
    this.filled[slot - this.firstSlot] = i + 1;
    this.userNext.set(user, slot + 1);
    this.k++;
    return this.pair(this.seats[i]!, slot);
  }

  /** A pair of a slot no user has been or will be handed (a storm round: everyone on one seat and slot). */
  wholeSlot(): { seatId: number; start: string; end: string } {
    const slot = this.top - 1;
    const handed = this.filled[slot - this.firstSlot] ?? 0;
    if (slot < this.firstSlot || handed > 0) throw new Error(`the bench branch has no whole slot left (${this.k} pairs used)`);
    this.top = slot;
    this.k++;
    return this.pair(this.seats[0]!, slot);
  }

  private pair(seatId: number, slot: number): { seatId: number; start: string; end: string } {
    const startMs = this.baseMs + slot * SLOT_MS;
    return { seatId, start: new Date(startMs).toISOString(), end: new Date(startMs + SLOT_MS).toISOString() };
  }
}
