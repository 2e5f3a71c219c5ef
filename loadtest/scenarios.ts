// The RPC scenarios (their figures: BENCHMARKS.md): ping, search, book, mixed and storm. Each sets
// itself up outside the measured window and returns one RunRecord. The live-seat scenarios are in
// live.ts, the opening rush in rush.ts.
import { RpcClient } from '../clients/rpcClient.js';
import { LatencyHistogram } from './histogram.js';
import { customRecord, recordFromLoad, round1, sampleServer, type RunRecord } from './record.js';
import { runLoad, type LoadRequest, type Workload } from './rpcLoad.js';
import { SlotAllocator, branchSeats, registerUsers, type BenchUser, type SeatRef } from './setup.js';
import { BENCH_BRANCH, type Target } from './target.js';
import { frameText, FrameSplitter } from './frames.js';
import { openSockets } from './rpcLoad.js';
import type { ReservationWire, SeatWire } from '../src/wire/types.js';

export interface RunShape {
  connections: number;
  depth: number;
  durationMs: number;
  warmupMs: number;
  rate?: number;
}

/** What scenarios of one bench invocation share: users, seat lists, the slot allocator. */
export class BenchContext {
  private readonly users = new Map<string, BenchUser[]>();
  private readonly seatCache = new Map<string, SeatRef[]>();
  private allocator: SlotAllocator | undefined;
  private readonly tag = Date.now().toString(36);
  onProgress: ((label: string, fraction: number, detail: string) => void) | undefined;

  constructor(readonly target: Target) {}

  get host(): string {
    return this.target.host;
  }

  get rpcPort(): number {
    return this.target.ports.rpc;
  }

  /**
   * At least n users, registered once per invocation and reused. A scenario whose users must
   * hold nothing of the others' (the rush's) asks for a pool of its own.
   */
  async usersFor(n: number, pool = 'bench'): Promise<BenchUser[]> {
    const users = this.users.get(pool) ?? [];
    this.users.set(pool, users);
    if (users.length < n) {
      const more = await registerUsers(this.host, this.rpcPort, n - users.length, `${pool}-${this.tag}-${users.length}`);
      users.push(...more);
    }
    return users.slice(0, n);
  }

  async seats(branch: string): Promise<SeatRef[]> {
    let s = this.seatCache.get(branch);
    if (!s) {
      s = await branchSeats(this.host, this.rpcPort, branch);
      if (s.length === 0) throw new Error(`branch ${branch} has no seats on ${this.target.describe}`);
      this.seatCache.set(branch, s);
    }
    return s;
  }

  /** Distinct seat/slot pairs on the bench branch, shared by every booking run of this invocation. */
  async slots(): Promise<SlotAllocator> {
    if (!this.allocator) {
      const seats = await this.seats(BENCH_BRANCH).catch((err: Error) => {
        throw new Error(`${err.message}: booking scenarios need the "${BENCH_BRANCH}" branch that \`carrel bench\` creates in the database it starts (run without --server)`);
      });
      // Slots from day 10 on are left to the pgbench baseline.
      this.allocator = new SlotAllocator(seats.map((s) => s.id), 0, 10 * 48);
    }
    return this.allocator;
  }

  progress(label: string, durationMs: number): (elapsedMs: number, replies: number) => void {
    return (elapsed, replies) => {
      const secs = Math.max(elapsed / 1000, 0.001);
      this.onProgress?.(label, Math.min(1, elapsed / durationMs), `${Math.round(replies / secs).toLocaleString('en')}/s`);
    };
  }
}

function shapeLabel(s: RunShape): string {
  return s.rate ? `${s.connections} conns, open loop ${s.rate.toLocaleString('en')}/s` : `${s.connections} conns × depth ${s.depth}`;
}

async function measureLoad(
  ctx: BenchContext,
  scenario: string,
  label: string,
  shape: RunShape,
  workload: Workload,
  extra: () => Record<string, unknown> = () => ({}),
): Promise<RunRecord> {
  const sampling = sampleServer(ctx.target);
  const r = await runLoad(workload, {
    host: ctx.host,
    port: ctx.rpcPort,
    connections: shape.connections,
    depth: shape.depth,
    durationMs: shape.durationMs,
    warmupMs: shape.warmupMs,
    rate: shape.rate,
    onProgress: ctx.progress(label, shape.durationMs + shape.warmupMs),
  });
  return recordFromLoad(scenario, label, ctx.target, r, sampling.stop(), extra());
}

// --- ping ---------------------------------------------------------------------------------

export async function ping(ctx: BenchContext, shape: RunShape): Promise<RunRecord> {
  const req: LoadRequest = { body: '{"method":"PING"}', kind: 'PING' };
  const who = ctx.target.describe.startsWith('echo') ? 'echo baseline: ' : '';
  return measureLoad(ctx, 'ping', `${who}PING ${shapeLabel(shape)}`, shape, { next: () => req });
}

// --- search -------------------------------------------------------------------------------

export interface SearchOptions {
  branch: string;
  /** "now": the default window (now → +1 h, the cached case); "random": random windows in the next week. */
  windows: 'now' | 'random';
}

const SLOT = 15 * 60_000;

/**
 * Checks that the listing is fresh: a seat booked just now must show as unavailable in the very
 * next search for the same window, whatever the cache holds. Returns what it saw.
 */
export async function checkSearchFreshness(ctx: BenchContext, branch: string): Promise<{ fresh: boolean; seatId: number | null; detail: string }> {
  const [user] = await ctx.usersFor(1);
  const client = await RpcClient.connect(ctx.host, ctx.rpcPort);
  try {
    const before = await client.call<SeatWire[]>('seats.list', { branch });
    // The listing's default window is the slot under way → +1 h; booking exactly that window.
    const startMs = Math.floor(Date.now() / SLOT) * SLOT;
    const window = { start: new Date(startMs).toISOString(), end: new Date(startMs + 60 * 60_000).toISOString() };
    const free = before.find((s) => s.available);
    if (!free) return { fresh: false, seatId: null, detail: `no available seat in ${branch} to test with` };
    const listed = await client.call<SeatWire[]>('seats.list', { branch, ...window });
    if (!listed.find((s) => s.id === free.id)?.available) return { fresh: false, seatId: free.id, detail: 'seat not available for the window' };
    const booked = await client.request('reservations.create', [{ seatId: free.id, ...window }], user!.token);
    if (booked.error) return { fresh: false, seatId: free.id, detail: `booking failed: ${booked.error.code} ${booked.error.message}` };
    const after = await client.call<SeatWire[]>('seats.list', { branch, ...window });
    const seen = after.find((s) => s.id === free.id);
    const id = (booked.result as ReservationWire).id;
    await client.request('reservations.cancel', [{ id }], user!.token);
    const again = await client.call<SeatWire[]>('seats.list', { branch, ...window });
    const freedAgain = again.find((s) => s.id === free.id)?.available === true;
    const fresh = seen?.available === false && freedAgain;
    return { fresh, seatId: free.id, detail: fresh ? 'booked seat unavailable in the next search, available again after cancel' : `after booking available=${String(seen?.available)}, after cancel available=${String(freedAgain)}` };
  } finally {
    client.close();
  }
}

export async function search(ctx: BenchContext, shape: RunShape, opts: SearchOptions): Promise<RunRecord> {
  const echo = ctx.target.describe.startsWith('echo');
  // The echo baseline books nothing: only carrel's listing can be checked for freshness.
  const freshness = echo ? null : await checkSearchFreshness(ctx, opts.branch).catch((err: Error) => ({ fresh: false, seatId: null, detail: err.message }));
  const branchJson = JSON.stringify(opts.branch);
  const fixed: LoadRequest = { body: `{"method":"seats.list","args":[{"branch":${branchJson}}]}`, kind: 'seats.list' };
  let seed = 12345;
  const rand = (): number => {
    // A fixed-seed generator: the same windows in every run, so runs compare.
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const base = Math.ceil(Date.now() / SLOT) * SLOT;
  const next = (): LoadRequest => {
    if (opts.windows === 'now') return fixed;
    const start = base + Math.floor(rand() * 7 * 24 * 4) * SLOT;
    const end = start + (2 + Math.floor(rand() * 7)) * SLOT;
    return {
      body: `{"method":"seats.list","args":[{"branch":${branchJson},"start":"${new Date(start).toISOString()}","end":"${new Date(end).toISOString()}"}]}`,
      kind: 'seats.list',
    };
  };
  const label = `${echo ? 'echo baseline (same-size reply): ' : ''}seats.list ${opts.branch} (${opts.windows === 'now' ? 'now' : 'random windows'}) ${shapeLabel(shape)}`;
  return measureLoad(ctx, 'search', label, shape, { next }, () => ({ freshness }));
}

// --- book ---------------------------------------------------------------------------------

export async function book(ctx: BenchContext, shape: RunShape, opts: { users: number }): Promise<RunRecord> {
  const users = await ctx.usersFor(opts.users);
  const slots = await ctx.slots();
  if (users.length < shape.connections * shape.depth) {
    throw new Error(`book needs at least as many users (${users.length}) as bookings in flight (${shape.connections * shape.depth}): a person books one thing at a time`);
  }
  let u = 0;
  const before = slots.used;
  // Round robin over the users without one in flight: the server refuses a user's second booking
  // while one is in flight (bookingInFlight), and the allocator keeps a user's bookings apart in time.
  const inFlight = new Set<number>();
  const booker = new WeakMap<LoadRequest, number>();
  const next = (): LoadRequest => {
    let i = u++ % users.length;
    while (inFlight.has(i)) i = u++ % users.length;
    inFlight.add(i);
    const s = slots.nextFor(i);
    const req: LoadRequest = {
      body: `{"method":"reservations.create","args":[{"seatId":${s.seatId},"start":"${s.start}","end":"${s.end}"}],"token":"${users[i]!.token}"}`,
      kind: 'reservations.create',
    };
    booker.set(req, i);
    return req;
  };
  const onReply = (_conn: number, req: LoadRequest): void => void inFlight.delete(booker.get(req)!);
  return measureLoad(ctx, 'book', `reservations.create ${shapeLabel(shape)}, ${users.length} users`, shape, { next, onReply }, () => ({
    users: users.length,
    bookingsAttempted: slots.used - before,
  }));
}

// --- mixed --------------------------------------------------------------------------------

/** The mix, in percent: what a library's traffic looks like (mostly looking, some booking). */
export const MIXED_RATIO = { 'seats.list': 55, 'seats.availability': 10, 'reservations.mine': 15, 'reservations.create': 12, 'reservations.cancel': 8 };

export async function mixed(ctx: BenchContext, shape: RunShape, opts: { users: number }): Promise<RunRecord> {
  const users = await ctx.usersFor(opts.users);
  const slots = await ctx.slots();
  const branches = ['Main Library', 'Engineering Library', 'Medical Library'];
  const seatIds = (await Promise.all(branches.map((b) => ctx.seats(b)))).flat().map((s) => s.id);
  // Per connection: the reservations it made and may cancel, and whose they are.
  const mine: Array<Array<{ id: number; token: string }>> = Array.from({ length: shape.connections }, () => []);
  let n = 0;
  let seed = 777;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const cut = Object.entries(MIXED_RATIO).reduce<Array<[string, number]>>((acc, [k, v]) => {
    acc.push([k, (acc.at(-1)?.[1] ?? 0) + v]);
    return acc;
  }, []);
  // Users with a booking in flight: a person books one thing at a time (the server refuses a
  // second, bookingInFlight), so a create goes to another of the connection's users, or becomes a read.
  const creating = new Set<number>();
  const creator = new WeakMap<LoadRequest, number>();
  const next = (conn: number): LoadRequest => {
    const pick = (conn + shape.connections * (n++ % 4)) % users.length;
    const user = users[pick]!;
    const roll = rand() * 100;
    let kind = cut.find(([, upTo]) => roll < upTo)![0];
    if (kind === 'reservations.cancel' && mine[conn]!.length === 0) kind = 'reservations.create';
    let booker: number | undefined;
    if (kind === 'reservations.create') {
      for (let j = 0; j < 4 && booker === undefined; j++) {
        const candidate = (conn + shape.connections * ((pick + j) % 4)) % users.length;
        if (!creating.has(candidate)) booker = candidate;
      }
      if (booker === undefined) kind = 'seats.list';
    }
    switch (kind) {
      case 'seats.list':
        return { kind, body: `{"method":"seats.list","args":[{"branch":"${branches[Math.floor(rand() * 3)]}","availableOnly":true}]}` };
      case 'seats.availability':
        return { kind, body: `{"method":"seats.availability","args":[{"seatId":${seatIds[Math.floor(rand() * seatIds.length)]}}]}` };
      case 'reservations.mine':
        return { kind, body: `{"method":"reservations.mine","args":[{"limit":10}],"token":"${user.token}"}` };
      case 'reservations.cancel': {
        const r = mine[conn]!.shift()!;
        return { kind, body: `{"method":"reservations.cancel","args":[{"id":${r.id}}],"token":"${r.token}"}` };
      }
      default: {
        const s = slots.nextFor(booker!);
        creating.add(booker!);
        const req: LoadRequest = {
          kind: 'reservations.create',
          body: `{"method":"reservations.create","args":[{"seatId":${s.seatId},"start":"${s.start}","end":"${s.end}"}],"token":"${users[booker!]!.token}"}`,
        };
        creator.set(req, booker!);
        return req;
      }
    }
  };
  const onReply = (conn: number, req: LoadRequest, ok: boolean, text: string): void => {
    if (req.kind === 'reservations.create') creating.delete(creator.get(req)!);
    if (!ok || req.kind !== 'reservations.create') return;
    const id = (JSON.parse(text) as { result: ReservationWire }).result.id;
    const token = /"token":"([^"]+)"/.exec(req.body)![1]!;
    mine[conn]!.push({ id, token });
  };
  return measureLoad(ctx, 'mixed', `mixed ${Object.entries(MIXED_RATIO).map(([k, v]) => `${v}% ${k}`).join(', ')}; ${shapeLabel(shape)}`, shape, { next, onReply }, () => ({
    users: users.length,
    ratio: MIXED_RATIO,
  }));
}

// --- storm --------------------------------------------------------------------------------

/**
 * N users on one seat and slot at the same instant, `rounds` times (a new slot each round).
 * Exactly one may win each round; the report says whether that held, and how long the losers
 * waited for their CONFLICT.
 */
export async function storm(ctx: BenchContext, opts: { users: number; rounds: number; connections: number }): Promise<RunRecord> {
  const users = await ctx.usersFor(opts.users);
  const slots = await ctx.slots();
  const { sockets, failures } = await openSockets(ctx.host, ctx.rpcPort, Math.min(opts.connections, opts.users));
  const latency = new LatencyHistogram();
  const errors: Record<string, number> = {};
  let roundsWithOneWinner = 0;
  let winners = 0;
  let unanswered = 0;
  const sampling = sampleServer(ctx.target);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const splitters = sockets.map(() => new FrameSplitter());
  for (let round = 0; round < opts.rounds; round++) {
    // A whole slot for the round, no user's booking anywhere in it: a winner of an earlier round
    // meets CONFLICT here, not its own booking (overlapsOwnBooking).
    const s = slots.wholeSlot();
    let answered = 0;
    let won = 0;
    const sentAt = performance.now();
    await new Promise<void>((resolve) => {
      // A round that is not fully answered in 10 s counts its missing replies and moves on.
      const timeout = setTimeout(() => {
        sockets.forEach((sk, j) => sk.off('data', handlers[j]!));
        unanswered += users.length - answered;
        resolve();
      }, 10_000);
      const handlers = sockets.map((sock, i) => {
        const h = (chunk: Buffer): void =>
          splitters[i]!.push(chunk, (text) => {
            latency.recordMs(performance.now() - sentAt);
            if (text.endsWith('"error":null}')) won++;
            else {
              const code = /"code":"([A-Z_]+)"/.exec(text)?.[1] ?? 'BAD_REPLY';
              errors[code] = (errors[code] ?? 0) + 1;
            }
            if (++answered === users.length) {
              clearTimeout(timeout);
              sockets.forEach((sk, j) => sk.off('data', handlers[j]!));
              resolve();
            }
          });
        sock.on('data', h);
        return h;
      });
      users.forEach((user, i) => {
        sockets[i % sockets.length]!.write(
          frameText(`{"rpcId":${round * users.length + i},"method":"reservations.create","args":[{"seatId":${s.seatId},"start":"${s.start}","end":"${s.end}"}],"token":"${user.token}"}`),
        );
      });
    });
    winners += won;
    if (won === 1) roundsWithOneWinner++;
    ctx.onProgress?.(`storm ${users.length} users × ${opts.rounds} rounds`, (round + 1) / opts.rounds, `${roundsWithOneWinner}/${round + 1} rounds with one winner`);
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  for (const s of sockets) s.destroy();
  const server = sampling.stop();
  return customRecord({
    scenario: 'storm',
    label: `storm: ${users.length} users on one seat and slot × ${opts.rounds} rounds`,
    target: ctx.target.describe,
    connections: sockets.length,
    depth: Math.ceil(users.length / Math.max(1, sockets.length)),
    rate: null,
    windowS: round1(wallMs / 1000),
    throughput: Math.round((opts.rounds * users.length) / (wallMs / 1000)),
    unit: 'req/s',
    latencyHistogram: latency,
    errors,
    connectFailures: failures,
    neverAnswered: 0,
    unanswered,
    serverRssMb: server.maxRssMb,
    serverCpuPct: server.cpuPct,
    clientCpuPct: round1(((cpu.user + cpu.system) / 1000 / wallMs) * 100),
    extra: { rounds: opts.rounds, roundsWithOneWinner, winners, conflicts: errors.CONFLICT ?? 0 },
  });
}
