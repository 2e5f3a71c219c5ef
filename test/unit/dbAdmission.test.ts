import { describe, expect, it } from 'vitest';
import type { ReleaseSlot } from '../../src/deadline.js';
import { DbAdmission, MAX_RETRY_AFTER_MS } from '../../src/db/admission.js';
import { CarrelError } from '../../src/errors.js';

const gate = (over: Partial<ConstructorParameters<typeof DbAdmission>[0]> = {}) =>
  new DbAdmission({ slots: 2, perClient: 1, queuePerClient: 100, maxQueued: 1000, ...over });

/** Acquires and records the order in which clients were served. */
function track(g: DbAdmission, served: string[], client: string, tag = client): Promise<ReleaseSlot> {
  return g.acquire(client, 10_000).then((release) => {
    served.push(tag);
    return release;
  });
}

const flush = () => new Promise((r) => setImmediate(r));

describe('fair database admission', () => {
  it('a hundred pipelined requests of one client take turns with the single requests of others', async () => {
    const g = gate();
    const served: string[] = [];
    const hog = Array.from({ length: 100 }, (_, i) => track(g, served, 'hog', `hog${i}`));
    const a = track(g, served, 'alice');
    const b = track(g, served, 'bob');
    await flush();
    // hog0 got a slot at once (perClient 1); alice the other. bob waits, behind nobody of hog's.
    expect(served).toEqual(['hog0', 'alice']);
    (await a)();
    await flush();
    expect(served).toEqual(['hog0', 'alice', 'bob']);
    (await hog[0]!)();
    await flush();
    expect(served.at(-1)).toBe('hog1');
    (await b)();
    await flush();
    // Nobody else waits: the hog has the free slot too, but never more than perClient at once.
    expect(g.inUse).toBe(1);
    expect(served.at(-1)).toBe('hog1');
    for (let i = 1; i < 100; i++) (await hog[i]!)();
    expect(served.length).toBe(102);
    expect(g.inUse).toBe(0);
    expect(g.waiting()).toEqual({ requests: 0, clients: 0 });
  });

  it("a ticket's share lets a client that stands for many hold more connections, and it still takes turns", async () => {
    const g = gate({ slots: 4, perClient: 1 });
    const ticket = g.ticket('bookings', 3);
    expect(ticket).toMatchObject({ client: 'bookings', share: 3 });
    const held = await Promise.all([1, 2, 3].map(() => g.acquire(ticket.client, 1000, ticket.share)));
    expect(g.inUse).toBe(3);
    // A fourth waits past its share although a slot is free; another client takes that slot.
    const served: string[] = [];
    const fourth = g.acquire(ticket.client, 10_000, ticket.share).then((release) => {
      served.push('bookings');
      return release;
    });
    const alice = track(g, served, 'alice');
    await flush();
    expect(served).toEqual(['alice']);
    (await alice)();
    held[0]!();
    await flush();
    expect(served).toEqual(['alice', 'bookings']);
    (await fourth)();
    for (const r of held.slice(1)) r();
    expect(g.inUse).toBe(0);
  });

  it('serves waiting clients round-robin, one request each per turn', async () => {
    const g = gate({ slots: 1, perClient: 1 });
    const served: string[] = [];
    const first = await g.acquire('x', 1000);
    const all: Array<Promise<ReleaseSlot>> = [];
    for (let i = 0; i < 3; i++) for (const c of ['a', 'b', 'c']) all.push(track(g, served, c));
    first();
    for (const p of all) (await p)();
    expect(served).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
  });

  it("refuses at once past a client's queue, with retryAfterMs, and others still queue", async () => {
    const g = gate({ slots: 1, perClient: 1, queuePerClient: 3 });
    const held = await g.acquire('hog', 1000);
    const queued = [1, 2, 3].map(() => g.acquire('hog', 1000));
    const refused = await g.acquire('hog', 1000).catch((e: CarrelError) => e);
    expect(refused).toBeInstanceOf(CarrelError);
    expect((refused as CarrelError).code).toBe('RESOURCE_EXHAUSTED');
    expect((refused as CarrelError).details).toMatchObject({ limit: 'database' });
    expect((refused as CarrelError).details!.retryAfterMs).toBeGreaterThan(0);
    const other = g.acquire('alice', 1000);
    held();
    // the hog has just had its turn: alice, who has had none, goes first
    const order: string[] = [];
    void other.then((r) => {
      order.push('alice');
      r();
    });
    for (const q of queued) void q.then((r) => {
      order.push('hog');
      r();
    });
    await Promise.all([other, ...queued]);
    await flush();
    expect(order).toEqual(['alice', 'hog', 'hog', 'hog']);
    expect(g.stats.shed).toBe(1);
  });

  it('past maxQueued the longest queue gives up its newest request, not the newcomer', async () => {
    const g = gate({ slots: 1, perClient: 1, queuePerClient: 100, maxQueued: 10 });
    const held = await g.acquire('x', 1000);
    const hog = Array.from({ length: 10 }, () =>
      g.acquire('hog', 1000).then(
        (r) => {
          r();
          return 'ok';
        },
        (e: CarrelError) => e.code,
      ),
    );
    const newcomer = g.acquire('alice', 1000).then((r) => {
      r();
      return 'ok';
    });
    await flush();
    held();
    const hogResults = await Promise.all(hog);
    expect(await newcomer).toBe('ok');
    expect(hogResults.filter((r) => r === 'RESOURCE_EXHAUSTED')).toHaveLength(1);
    expect(hogResults.at(-1)).toBe('RESOURCE_EXHAUSTED');
  });

  it('a request that waits past its deadline gets DEADLINE_EXCEEDED and leaves no trace', async () => {
    const g = gate({ slots: 1 });
    const held = await g.acquire('x', 1000);
    const late = await g.acquire('y', 20).catch((e: CarrelError) => e.code);
    expect(late).toBe('DEADLINE_EXCEEDED');
    expect(g.waiting()).toEqual({ requests: 0, clients: 0 });
    held();
    held(); // idempotent
    expect(g.inUse).toBe(0);
  });

  it('a flood of distinct clients is bounded: memory holds only the queued and running ones', async () => {
    const g = gate({ slots: 2, perClient: 1, maxQueued: 50 });
    const results = await Promise.allSettled(
      Array.from({ length: 5000 }, (_, i) =>
        g.acquire(`c${i}`, 10_000).then((r) => {
          r();
        }),
      ),
    );
    // Every client had one request: none is longer than the newcomer's, so newcomers are refused.
    expect(results.filter((r) => r.status === 'fulfilled').length).toBe(52);
    expect(g.waiting()).toEqual({ requests: 0, clients: 0 });
    expect(g.inUse).toBe(0);
  });

  it('tells a refused request to come back within MAX_RETRY_AFTER_MS however many clients wait and however slow the holds were', async () => {
    const g = gate({ slots: 1, perClient: 1, queuePerClient: 2, maxQueued: 100_000 });
    // A slow hold first, so the gate's estimate of a hold is long.
    const slow = await g.acquire('slow', 60_000);
    await new Promise((r) => setTimeout(r, 200));
    slow();
    const held = await g.acquire('holder', 60_000);
    const waiting = Array.from({ length: 3000 }, (_, i) => g.acquire(`client${i}`, 60_000).catch(() => undefined));
    const q1 = g.acquire('hog', 60_000);
    const q2 = g.acquire('hog', 60_000);
    const refused = await g.acquire('hog', 60_000).catch((e: CarrelError) => e);
    expect((refused as CarrelError).code).toBe('RESOURCE_EXHAUSTED');
    const hint = (refused as CarrelError).details!.retryAfterMs as number;
    expect(hint).toBeGreaterThan(0);
    expect(hint).toBeLessThanOrEqual(MAX_RETRY_AFTER_MS);
    // Without the cap the estimate here is minutes: 3,000 clients ahead, each hold ~12 ms.
    held();
    for (const w of [...waiting, q1, q2]) void Promise.resolve(w).then((r) => (typeof r === 'function' ? r() : undefined));
  });
});

