// The load generator's own parts: histograms merge exactly, the client's frame splitter agrees
// with the server's framing under any chunking, the slot allocator never repeats a pair, and
// the report says what was measured in every format.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LatencyHistogram } from '../../loadtest/histogram.js';
import { FrameSplitter, WsFrameSplitter, bytesAreSuccess, bytesRpcId, frameJson, replyErrorCode, wsClientText } from '../../loadtest/frames.js';
import { SlotAllocator } from '../../loadtest/setup.js';
import { benchDatabaseName } from '../../loadtest/target.js';
import { toCsv, toMarkdown, toSvg, type Report } from '../../loadtest/report.js';
import type { RunRecord } from '../../loadtest/record.js';
import { bucketPercentiles } from '../../loadtest/live.js';
import { pairs } from '../../loadtest/suite.js';
import { rushComparisons, type RushFigures } from '../../loadtest/rush.js';
import { median } from '../../loadtest/histogram.js';

describe('LatencyHistogram', () => {
  it('merging two histograms gives the percentiles of all their values together', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    const all = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) {
      const v = i * 0.01; // 0.01 … 10 ms
      (i % 3 === 0 ? a : b).recordMs(v);
      all.recordMs(v);
    }
    a.merge(b);
    expect(a.count).toBe(1000);
    expect(a.summary()).toEqual(all.summary());
    expect(a.summary().p50Ms).toBeCloseTo(5, 1);
    expect(a.summary().p99Ms).toBeCloseTo(9.9, 1);
    expect(a.summary().maxMs).toBeCloseTo(10, 1);
  });

  it('keeps three significant digits from microseconds to seconds', () => {
    const h = new LatencyHistogram();
    h.recordMs(0.0123);
    h.recordMs(1234.5);
    expect(h.summary().p50Ms).toBeCloseTo(0.012, 3);
    expect(h.summary().maxMs / 1234.5).toBeGreaterThan(0.999);
    expect(h.summary().maxMs / 1234.5).toBeLessThan(1.001);
  });

  it('round-trips through its encoded form, and counts what it had to clamp', () => {
    const h = new LatencyHistogram();
    for (const v of [0.5, 1, 2, 4, 8]) h.recordMs(v);
    h.recordMs(120_000);
    expect(h.clamped).toBe(1);
    const back = LatencyHistogram.decode(h.encode()).summary();
    const orig = h.summary();
    expect({ ...back, maxMs: 0 }).toEqual({ ...orig, maxMs: 0 });
    // The encoded form keeps each value to its bucket's precision (3 significant digits).
    expect(Math.abs(back.maxMs - orig.maxMs) / orig.maxMs).toBeLessThan(0.001);
  });

  it('keeps minutes exactly when asked to, and decodes them again', () => {
    const h = new LatencyHistogram(180_000);
    h.recordMs(1);
    h.recordMs(150_000);
    expect(h.clamped).toBe(0);
    expect(h.summary().maxMs).toBeCloseTo(150_000, -3);
    const back = LatencyHistogram.decode(h.encode()).summary();
    expect({ ...back, maxMs: 0 }).toEqual({ ...h.summary(), maxMs: 0 });
    expect(Math.abs(back.maxMs - 150_000) / 150_000).toBeLessThan(0.001);
  });

  it('reports zeros, not NaN, when empty', () => {
    expect(new LatencyHistogram().summary()).toEqual({ count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 });
  });
});

describe('FrameSplitter', () => {
  const payload = fc.oneof(
    fc.record({ rpcId: fc.nat(), result: fc.string(), error: fc.constant(null) }),
    fc.record({ rpcId: fc.nat(), result: fc.constant(null), error: fc.record({ code: fc.constantFrom('CONFLICT', 'INTERNAL'), message: fc.string({ unit: 'grapheme' }) }) }),
  );

  it('gives the same payloads for any chunking of any frames', () => {
    fc.assert(
      fc.property(fc.array(payload, { minLength: 1, maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 50 }), (msgs, cuts) => {
        const stream = Buffer.concat(msgs.map((m) => frameJson(m)));
        const out: unknown[] = [];
        const s = new FrameSplitter();
        let off = 0;
        let i = 0;
        while (off < stream.length) {
          const n = cuts[i++ % cuts.length]!;
          s.push(stream.subarray(off, off + n), (text) => out.push(JSON.parse(text)));
          off += n;
        }
        expect(out).toEqual(msgs);
      }),
      { seed: 20261201, numRuns: 300 },
    );
  });

  it('reads rpcId and success from the bytes, without decoding', () => {
    const check = (v: unknown): { id: number; ok: boolean } => {
      const f = frameJson(v);
      return { id: bytesRpcId(f, 4, f.length), ok: bytesAreSuccess(f, 4, f.length) };
    };
    expect(check({ rpcId: 4711, result: 'PONG', error: null })).toEqual({ id: 4711, ok: true });
    expect(check({ rpcId: 9, result: null, error: { code: 'CONFLICT', message: 'x' } })).toEqual({ id: 9, ok: false });
    expect(check({ rpcId: null, result: null, error: { code: 'BAD_FRAME', message: 'x' } })).toEqual({ id: -1, ok: false });
    expect(check({ result: 1, rpcId: 3, error: null })).toEqual({ id: -1, ok: true });
    expect(replyErrorCode('{"rpcId":1,"result":null,"error":{"code":"CONFLICT","message":"m"}}')).toBe('CONFLICT');
    expect(replyErrorCode('not json')).toBe('BAD_REPLY');
  });

  it('refuses a frame over its limit', () => {
    const s = new FrameSplitter(10);
    expect(() => s.push(frameJson({ big: 'x'.repeat(20) }), () => undefined)).toThrow(/over the client's limit/);
  });
});

describe('WsFrameSplitter and wsClientText (the load generator\'s /ws/live client)', () => {
  /** A server frame: unmasked, with a 7-, 16- or 64-bit length. */
  const serverFrame = (opcode: number, payload: Buffer, fin = true): Buffer => {
    const n = payload.length;
    const head = n < 126 ? Buffer.from([0, n]) : n < 65_536 ? Buffer.from([0, 126, n >> 8, n & 0xff]) : Buffer.concat([Buffer.from([0, 127, 0, 0, 0, 0]), Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff])]);
    head[0] = (fin ? 0x80 : 0) | opcode;
    return Buffer.concat([head, payload]);
  };

  it('gives the same messages and control frames for any chunking, fragments joined', () => {
    const texts = ['{"type":"pong"}', JSON.stringify({ pad: 'é'.repeat(200) }), JSON.stringify({ pad: 'x'.repeat(70_000) })];
    const stream = Buffer.concat([
      serverFrame(1, Buffer.from(texts[0]!)),
      serverFrame(1, Buffer.from(texts[1]!)),
      // The third in three fragments, a ping between two of them.
      serverFrame(1, Buffer.from(texts[2]!.slice(0, 10)), false),
      serverFrame(0x9, Buffer.from('hi')),
      serverFrame(0, Buffer.from(texts[2]!.slice(10, 40_000)), false),
      serverFrame(0, Buffer.from(texts[2]!.slice(40_000))),
      serverFrame(0x8, Buffer.from([0x03, 0xe8])),
    ]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5_000 }), { minLength: 1, maxLength: 30 }), (cuts) => {
        const s = new WsFrameSplitter();
        const got: string[] = [];
        const control: string[] = [];
        let off = 0;
        for (let i = 0; off < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          s.push(stream.subarray(off, off + n), (t) => got.push(t), (op, p) => control.push(`${op}:${p.toString('hex')}`));
          off += n;
        }
        expect(got).toEqual(texts);
        expect(control).toEqual(['9:6869', '8:03e8']);
      }),
      { seed: 20261206, numRuns: 100 },
    );
  });

  it('masks what the client sends, as a server requires', () => {
    for (const text of ['{"type":"subscribe","branch":"Main Library"}', 'x'.repeat(300)]) {
      const f = wsClientText(text);
      expect(f[0]).toBe(0x81);
      expect(f[1]! & 0x80).toBe(0x80);
      const n = f[1]! & 0x7f;
      const [len, at] = n === 126 ? [f.readUInt16BE(2), 4] : [n, 2];
      const mask = f.subarray(at, at + 4);
      const body = Buffer.from(f.subarray(at + 4).map((b, i) => b ^ mask[i % 4]!));
      expect(len).toBe(body.length);
      expect(body.toString('utf8')).toBe(text);
    }
  });
});

describe('the bench database', () => {
  it('is carrel_bench unless CARREL_BENCH_DB names another plain identifier', () => {
    expect(benchDatabaseName(undefined)).toBe('carrel_bench');
    expect(benchDatabaseName('')).toBe('carrel_bench');
    expect(benchDatabaseName('book_bench_2')).toBe('book_bench_2');
    for (const bad of ['Bench', 'x; DROP DATABASE postgres', 'a-b', '1abc', 'x'.repeat(64)]) expect(() => benchDatabaseName(bad)).toThrow(/CARREL_BENCH_DB/);
  });
});

describe('SlotAllocator', () => {
  it('hands out distinct seat/slot pairs on half-hour boundaries, after the lead time, never two of one user at once', () => {
    const now = Date.parse('2026-12-01T10:07:00Z');
    const a = new SlotAllocator([11, 12, 13], 0, 4, now);
    const seen = new Set<string>();
    const byUser = new Map<number, Set<string>>();
    for (let i = 0; i < 12; i++) {
      const user = i % 3;
      const s = a.nextFor(user);
      const start = Date.parse(s.start);
      expect(start % (30 * 60_000)).toBe(0);
      expect(start).toBeGreaterThanOrEqual(now + 30 * 60_000);
      expect(Date.parse(s.end) - start).toBe(30 * 60_000);
      seen.add(`${s.seatId}@${s.start}`);
      const mine = byUser.get(user) ?? new Set<string>();
      expect(mine.has(s.start)).toBe(false);
      byUser.set(user, mine.add(s.start));
    }
    expect(seen.size).toBe(12);
    expect(a.used).toBe(12);
    expect(() => a.nextFor(0)).toThrow(/no free slots/);
  });

  it('a user goes on to later slots when its next one is full; a whole slot is nobody\'s', () => {
    const a = new SlotAllocator([1, 2], 0, 3, Date.now());
    const storm = a.wholeSlot();
    const starts = [a.nextFor(0), a.nextFor(1), a.nextFor(2)].map((p) => p.start);
    // Slot 0 takes users 0 and 1; user 2 goes to slot 1, then has no slot left below the whole one.
    expect(starts[2]).not.toBe(starts[0]);
    expect(starts).not.toContain(storm.start);
    expect(() => a.nextFor(2)).toThrow(/no free slots/);
    expect(() => a.wholeSlot()).toThrow(/no whole slot/);
  });

  it('keeps an offset range apart from the default one', () => {
    const now = Date.now();
    const ours = new SlotAllocator([1, 2], 0, 10, now);
    const theirs = new SlotAllocator([1, 2], 10, 20, now);
    const a = new Set(Array.from({ length: 20 }, (_, i) => ours.nextFor(i % 2).start));
    const b = Array.from({ length: 20 }, (_, i) => theirs.nextFor(i % 2).start);
    expect(b.some((s) => a.has(s))).toBe(false);
  });
});

function run(partial: Partial<RunRecord>): RunRecord {
  const h = new LatencyHistogram();
  h.recordMs(1);
  return {
    scenario: 'ping', label: 'PING 1 conns × depth 1', target: 'carrel', connections: 1, depth: 1, rate: null, windowS: 1,
    throughput: 1000, unit: 'req/s', latency: h.summary(), histogram: h.encode(), errors: {}, connectFailures: 0,
    neverAnswered: 0, unanswered: 0, serverRssMb: 50, serverCpuPct: 90, clientCpuPct: 60, extra: {}, ...partial,
  };
}

describe('report', () => {
  const runs = [
    run({ connections: 1, throughput: 1000 }),
    run({ connections: 16, throughput: 9000, label: 'PING 16, "quoted"', errors: { CONFLICT: 3 } }),
    run({ connections: 1, throughput: 1500, target: 'echo baseline (process 1)' }),
    run({ connections: 16, throughput: 11000, target: 'echo baseline (process 1)' }),
  ];
  const report: Report = {
    startedAt: '2026-12-01T00:00:00Z',
    machine: { cpus: 2, cpuModel: 'x', memGb: 24, node: 'v20', platform: 'linux' },
    runs,
    comparisons: [{ what: 'PING 16', value: 9000, unit: 'req/s', baseline: 'echo 16×1', baselineValue: 11000, ratio: 9000 / 11000, target: '≥ 0.8× echo', met: true }],
  };

  it('writes a CSV row per run, quoting what needs it', () => {
    const lines = toCsv(runs).trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^scenario,label,connections,depth/);
    expect(lines[2]).toContain('"PING 16, ""quoted"""');
    expect(lines[2]).toContain('CONFLICT:3');
  });

  it('writes the comparisons and runs as Markdown tables', () => {
    const md = toMarkdown(report);
    expect(md).toContain('| PING 16 | 9,000 req/s | echo 16×1: 11,000 | 0.82 | ≥ 0.8× echo | yes |');
    expect(md.split('\n').filter((l) => l.startsWith('| PING') || l.startsWith('| echo'))).toHaveLength(5);
    expect(md).toContain('CONFLICT 3');
  });

  it('charts throughput and p99 against connections for swept runs only', () => {
    const svg = toSvg(runs)!;
    expect(svg).toMatch(/^<svg/);
    // carrel and echo, each a line in both panels.
    expect(svg.match(/<polyline/g)).toHaveLength(4);
    expect(svg).toContain('ping (echo), depth 1');
    expect(toSvg([run({})])).toBeNull();
  });
});

describe('rush report', () => {
  const summary = { count: 1, meanMs: 1, p50Ms: 1, p90Ms: 1, p99Ms: 1, p999Ms: 1, maxMs: 1 };
  const figures = (f: Partial<RushFigures>): RushFigures => ({
    mode: 'best', branch: 'Rush Library', window: { start: 'a', end: 'b' }, seats: 2000, users: 5000, scripts: 50,
    scriptConnections: 20, scriptDepth: 100, requests: 105_000, expectedSuccesses: 2000, successes: 2000,
    lastSuccessMs: 1500, allTakenMs: 1500, halfTakenMs: 700, releaseWriteMs: 200,
    outcomes: { OK: 2000, 'CONFLICT (noSeatFree)': 3050 }, retried: { 'RESOURCE_EXHAUSTED (bookingInFlight)': 9 },
    retryHints: summary, attempts: 105_009, serverCpuUsPerOp: 50, successLatency: summary, userLatency: { ...summary, p99Ms: 800 },
    scriptLatency: { ...summary, p99Ms: 900 }, successRate: { users: 0.396, scripts: 0.4, ratio: 1.01 }, seatsHeldByScripts: 20,
    sql: { bookings: 2000, seats: 2000, users: 2000, maxSeatsPerUser: 1, overlappingPairs: 0, seatsDoubleBooked: 0 },
    setup: { registerS: 30, connectS: 2 }, ...f,
  });
  const rushRun = (f: Partial<RushFigures>, latency: Partial<RunRecord['latency']> = {}): RunRecord => {
    const r = run({ scenario: 'rush', label: 'rush, best-available', unit: 'bookings/s', extra: { ...figures(f) } });
    return { ...r, latency: { ...r.latency, p99Ms: 900, ...latency } };
  };

  it('meets every target only when every one holds', () => {
    expect(rushComparisons(rushRun({})).map((c) => c.met)).toEqual([true, true, true, true, true]);
    const bad = rushComparisons(
      rushRun(
        { allTakenMs: null, successes: 1990, sql: { bookings: 1990, seats: 1989, users: 1980, maxSeatsPerUser: 3, overlappingPairs: 1, seatsDoubleBooked: 1 }, successRate: { users: 0.35, scripts: 1, ratio: 2.86 } },
        { p99Ms: 1200 },
      ),
    );
    expect(bad.map((c) => c.met)).toEqual([false, false, false, false, false]);
    // More bookings than min(U + B, seats) is a failure too: someone holds two.
    expect(rushComparisons(rushRun({ successes: 2100 }))[0]!.met).toBe(false);
  });

  it('gives the rush its own table: successes beside SQL, fairness, every final answer', () => {
    const md = toMarkdown({ startedAt: 'x', machine: { cpus: 2, cpuModel: 'x', memGb: 1, node: 'v20', platform: 'linux' }, runs: [rushRun({})], comparisons: [] });
    const row = md.split('\n').find((l) => l.startsWith('| rush, best-available | 2,000 (2,000; SQL 2,000)'));
    expect(row).toBeDefined();
    expect(row).toContain('| 800.0 / 900.0 |');
    expect(row).toContain('40.0% / 39.6% (1.01)');
    expect(row).toContain('CONFLICT (noSeatFree) 3,050, OK 2,000');
    expect(row).toContain('RESOURCE_EXHAUSTED (bookingInFlight) 9');
    expect(toSvg([rushRun({}), { ...rushRun({}), connections: 10 }])).toBeNull();
  });
});

describe('bucketPercentiles', () => {
  it("reads what a Prometheus histogram gained between two reads, as its buckets' upper bounds", () => {
    const before: Array<[number, number]> = [[0.001, 10], [0.005, 10], [Infinity, 10]];
    // Gained: 90 at ≤ 1 ms, 9 in (1, 5] ms, 1 above 5 ms.
    const after: Array<[number, number]> = [[0.001, 100], [0.005, 109], [Infinity, 110]];
    expect(bucketPercentiles(before, after)).toEqual({ count: 100, p50Ms: 1, p90Ms: 1, p99Ms: 5, p999Ms: Infinity });
  });
});

describe('suite ratios over alternating pairs', () => {
  it('reports the median of the per-pair ratios, so one slow baseline run cannot make carrel look fast', () => {
    const pair = (carrel: number, base: number): [RunRecord, RunRecord] => [run({ throughput: carrel }), run({ throughput: base })];
    // The middle pair's baseline ran while the machine was slow: its ratio alone would be 2.0.
    const p = pairs([pair(80, 100), pair(60, 30), pair(90, 100)]);
    expect(p.ratios).toEqual([0.8, 2, 0.9]);
    expect(p.ratio).toBe(0.9);
    expect(p.value).toBe(80);
    expect(p.base).toBe(100);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
