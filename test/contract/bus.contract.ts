// The one contract every EventBus keeps (STYLE §8), run against LocalBus and RedisBus.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { BusHandlers, EventBus } from '../../src/bus/bus.js';
import type { CoreEvent } from '../../src/core/events.js';
import type { SeatChange, SeatEvent } from '../../src/core/liveSeats.js';

export interface BusFactory {
  /** Buses of separate "instances" sharing one backing (broker or Redis key prefix). */
  make(instanceId: string, opts: { retainEvents: number; shared: string }): EventBus;
}

interface Recorder {
  seats: SeatEvent[];
  facts: CoreEvent[];
  handlers: BusHandlers;
  waitSeats(n: number): Promise<SeatEvent[]>;
}

function recorder(): Recorder {
  const r: Recorder = {
    seats: [],
    facts: [],
    handlers: {
      seat: (ev) => {
        r.seats.push(ev);
      },
      fact: (ev) => {
        r.facts.push(ev);
      },
      resync: () => undefined,
      ownStates: () => [],
      reconnected: () => undefined,
    },
    async waitSeats(n) {
      const deadline = Date.now() + 5000;
      while (r.seats.length < n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} seat events, got ${r.seats.length}`);
        await new Promise((res) => setTimeout(res, 5));
      }
      return r.seats;
    },
  };
  return r;
}

function change(origin: string, branchId: number, seatId: number, state: SeatChange['state'], flags = 0): SeatChange {
  return { origin, branchId, seatId, state, flags, cause: 'sensor', at: new Date().toISOString(), sensor: { occupied: state === 'occupied', readingAtMs: Date.now(), contactAtMs: Date.now() } };
}

let shared = 0;

/** The database identity the buses of one test belong to, unless a test says otherwise. */
const DEPLOYMENT = randomUUID();

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function busContract(name: string, factory: BusFactory): void {
  describe(`EventBus contract: ${name}`, () => {
    const open: EventBus[] = [];
    const make = (id: string, key: string, retainEvents = 100) => {
      const bus = factory.make(id, { retainEvents, shared: key });
      open.push(bus);
      return bus;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((b) => b.close()));
    });

    it('delivers a change published on one instance to every instance, with the same seq, in order', async () => {
      const key = `c${shared++}`;
      const a = make('A', key);
      const b = make('B', key);
      const ra = recorder();
      const rb = recorder();
      const seqA = await a.start([1, 2], ra.handlers, DEPLOYMENT);
      const seqB = await b.start([1, 2], rb.handlers, DEPLOYMENT);
      expect(seqA.get(1)).toBe(seqB.get(1));
      const base = seqA.get(1)!;
      a.publishSeat(change('A', 1, 10, 'occupied'));
      b.publishSeat(change('B', 1, 11, 'reserved'));
      a.publishSeat(change('A', 1, 12, 'occupied'));
      await ra.waitSeats(3);
      await rb.waitSeats(3);
      expect(ra.seats.map((e) => [e.seq, e.seatId, e.origin])).toEqual(rb.seats.map((e) => [e.seq, e.seatId, e.origin]));
      expect(ra.seats.map((e) => e.seq)).toEqual([base + 1, base + 2, base + 3]);
      expect(ra.seats[0]).toMatchObject({ branchId: 1, seatId: 10, state: 'occupied', cause: 'sensor', sensor: { occupied: true } });
    });

    it('numbers each branch on its own', async () => {
      const key = `c${shared++}`;
      const a = make('A', key);
      const ra = recorder();
      const seqs = await a.start([1, 2], ra.handlers, DEPLOYMENT);
      a.publishSeat(change('A', 1, 10, 'occupied'));
      a.publishSeat(change('A', 2, 20, 'occupied'));
      a.publishSeat(change('A', 2, 21, 'occupied'));
      await ra.waitSeats(3);
      const by = (b: number) => ra.seats.filter((e) => e.branchId === b).map((e) => e.seq);
      expect(by(1)).toEqual([seqs.get(1)! + 1]);
      expect(by(2)).toEqual([seqs.get(2)! + 1, seqs.get(2)! + 2]);
    });

    it('drops a change that repeats the seat\'s last published state, whoever publishes it', async () => {
      const key = `c${shared++}`;
      const a = make('A', key);
      const b = make('B', key);
      const ra = recorder();
      await a.start([1], ra.handlers, DEPLOYMENT);
      await b.start([1], recorder().handlers, DEPLOYMENT);
      a.publishSeat(change('A', 1, 10, 'reserved'));
      await ra.waitSeats(1);
      b.publishSeat(change('B', 1, 10, 'reserved'));
      // A and B publish over different connections: let B's repeat be judged before A moves on,
      // or A's next change could land first and make B's no longer a repeat.
      for (let i = 0; i < 200 && b.stats().deduplicated === 0; i++) await new Promise((r) => setTimeout(r, 5));
      a.publishSeat(change('A', 1, 10, 'occupied', 1));
      await ra.waitSeats(2);
      await new Promise((r) => setTimeout(r, 50));
      expect(ra.seats.map((e) => e.state)).toEqual(['reserved', 'occupied']);
      expect(a.stats().deduplicated + b.stats().deduplicated).toBe(1);
    });

    it('keeps history for since, and says when it is no longer retained', async () => {
      const key = `c${shared++}`;
      const a = make('A', key, 5);
      const ra = recorder();
      const base = (await a.start([1], ra.handlers, DEPLOYMENT)).get(1)!;
      for (let i = 0; i < 3; i++) a.publishSeat(change('A', 1, 10 + i, 'occupied'));
      await ra.waitSeats(3);
      expect((await a.history(1, base + 1, 100))!.map((e) => e.seq)).toEqual([base + 2, base + 3]);
      expect(await a.history(1, base + 3, 100)).toEqual([]);
      for (let i = 0; i < 200; i++) a.publishSeat(change('A', 1, 100 + i, i % 2 ? 'occupied' : 'free'));
      await ra.waitSeats(203);
      expect(await a.history(1, base, 100)).toBeNull();
      // A later instance joining the same backing starts from the shared seq and reads the same history.
      const late = make('C', key, 5);
      const seqs = await late.start([1], recorder().handlers, DEPLOYMENT);
      expect(seqs.get(1)).toBe(base + 203);
      expect((await late.history(1, base + 201, 10))!.map((e) => e.seq)).toEqual([base + 202, base + 203]);
    });

    it('hands core facts to the other instances, not back to the publisher', async () => {
      const key = `c${shared++}`;
      const a = make('A', key);
      const b = make('B', key);
      const ra = recorder();
      const rb = recorder();
      await a.start([1], ra.handlers, DEPLOYMENT);
      await b.start([1], rb.handlers, DEPLOYMENT);
      const fact: CoreEvent = { type: 'seatStatus', cause: 'admin', seatId: 10, branchId: 1, status: 'OUT_OF_SERVICE', at: new Date().toISOString() };
      a.publishFact(fact);
      const deadline = Date.now() + 5000;
      while (rb.facts.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(rb.facts).toEqual([fact]);
      expect(ra.facts).toEqual([]);
    });

    it('buses of two deployments on one backing share nothing: not seqs, states, history, facts nor the seq epoch', async () => {
      const key = `c${shared++}`;
      const [one, two] = [randomUUID(), randomUUID()];
      const a = make('A', key);
      const a2 = make('A2', key);
      const b = make('B', key);
      const [ra, ra2, rb] = [recorder(), recorder(), recorder()];
      await a.start([1], ra.handlers, one);
      await a2.start([1], ra2.handlers, one);
      // One deployment's instances share an epoch; another deployment's differs.
      expect(a.seqEpoch).toBe(a2.seqEpoch);
      a.publishSeat(change('A', 1, 10, 'occupied'));
      a.publishSeat(change('A', 1, 11, 'occupied'));
      await ra.waitSeats(2);
      const seqs = await b.start([1], rb.handlers, two);
      expect(b.seqEpoch).not.toBe(a.seqEpoch);
      expect(seqs.get(1)).toBe(0);
      expect(await b.history(1, 0, 10)).toEqual([]);
      // The same state of the same seat is news in the other deployment, numbered from its own start.
      b.publishSeat(change('B', 1, 10, 'occupied'));
      await rb.waitSeats(1);
      expect(rb.seats.map((e) => [e.seq, e.seatId])).toEqual([[1, 10]]);
      b.publishFact({ type: 'seatStatus', cause: 'admin', seatId: 10, branchId: 1, status: 'OUT_OF_SERVICE', at: new Date().toISOString() });
      a.publishFact({ type: 'seatStatus', cause: 'admin', seatId: 11, branchId: 1, status: 'OUT_OF_SERVICE', at: new Date().toISOString() });
      await until('A2 has A\'s fact', () => ra2.facts.length === 1);
      await new Promise((r) => setTimeout(r, 50));
      expect(ra2.facts.map((f) => (f.type === 'seatStatus' ? f.seatId : 0))).toEqual([11]);
      expect(rb.facts).toEqual([]);
      expect(ra.seats.map((e) => e.seq)).toEqual([1, 2]);
      expect(ra2.seats.map((e) => e.seq)).toEqual([1, 2]);
    });

    it('a change repeating a state published before this instance started following the branch is published: its view came from the database', async () => {
      const key = `c${shared++}`;
      const a = make('A', key);
      const ra = recorder();
      const base = (await a.start([1], ra.handlers, DEPLOYMENT)).get(1)!;
      a.publishSeat(change('A', 1, 10, 'occupied'));
      await ra.waitSeats(1);
      await a.close();
      // B starts after that publication (say its database was restored to before it) and sees seat 10 free.
      const b = make('B', key);
      const rb = recorder();
      expect((await b.start([1], rb.handlers, DEPLOYMENT)).get(1)).toBe(base + 1);
      b.publishSeat(change('B', 1, 10, 'occupied'));
      await rb.waitSeats(1);
      expect(rb.seats.map((e) => [e.seq, e.seatId, e.state])).toEqual([[base + 2, 10, 'occupied']]);
      // From here on a repeat is a repeat again.
      const c = make('C', key);
      const rc = recorder();
      await c.start([1], rc.handlers, DEPLOYMENT);
      b.publishSeat(change('B', 1, 11, 'reserved'));
      c.publishSeat(change('C', 1, 11, 'reserved'));
      await rb.waitSeats(2);
      await until('the repeat is judged', () => b.stats().deduplicated + c.stats().deduplicated === 1);
      await new Promise((r) => setTimeout(r, 50));
      expect(rb.seats.map((e) => e.seatId)).toEqual([10, 11]);
    });
  });
}
