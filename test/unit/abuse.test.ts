// The abuse scenario's own parts: its seats.list windows are all distinct (so no cache can hold
// them), HTTP answers are counted whatever the chunking, its flooders ignore every refusal and
// keep going without crashing, and the report's targets are met only when the well-behaved client
// was served (a quick refusal is not a quick answer).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { StatusScanner, errorKey, requestSource, startFlood, type FloodResult } from '../../loadtest/flooder.js';
import { ABUSE_DEFAULTS, abuseComparisons, abuseMarkdown, abuseRecord, codeOf, medianFloods, type ActivityFigures, type FloodFigures } from '../../loadtest/abuse.js';
import { toSvg } from '../../loadtest/report.js';
import { FrameSplitter, frameJson } from '../../loadtest/frames.js';
import { LatencyHistogram } from '../../loadtest/histogram.js';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function listen(onSocket: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer(onSocket);
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** An RPC server that answers every request with `reply(rpcId)`, and counts them. */
async function fakeRpc(reply: (rpcId: unknown) => unknown): Promise<{ port: number; requests: () => number }> {
  let n = 0;
  const port = await listen((socket) => {
    const splitter = new FrameSplitter();
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) =>
      splitter.push(chunk, (text) => {
        n++;
        socket.write(frameJson(reply((JSON.parse(text) as { rpcId: unknown }).rpcId) as object));
      }),
    );
  });
  return { port, requests: () => n };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('abuse flood requests', () => {
  it('seats.list windows never repeat across 20,000 requests, lie in the days ahead, and stay valid', () => {
    const baseMs = Date.parse('2026-12-01T10:00:00Z');
    const next = requestSource({ method: 'seats.list', baseMs });
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const { args } = JSON.parse(next()) as { args: [{ start: string; end: string }] };
      const [start, end] = [Date.parse(args[0].start), Date.parse(args[0].end)];
      expect(start).toBeGreaterThanOrEqual(baseMs);
      expect(start).toBeLessThan(baseMs + 3 * 86_400_000);
      expect(end - start).toBeGreaterThanOrEqual(30 * 60_000);
      expect(end - start).toBeLessThan(86_400_000);
      seen.add(`${args[0].start}/${args[0].end}`);
    }
    expect(seen.size).toBe(20_000);
  });

  it('names the branch when asked, and registers an existing id every time', () => {
    expect(JSON.parse(requestSource({ method: 'seats.list', branch: 'Main "Library"', baseMs: 0 })()).args[0].branch).toBe('Main "Library"');
    const reg = requestSource({ method: 'auth.register', studentId: 's1001' });
    expect(reg()).toBe(reg());
    expect(JSON.parse(reg()).args[0].studentId).toBe('s1001');
  });
});

describe('StatusScanner', () => {
  it('counts every status line of a keep-alive stream whatever the chunking', () => {
    const response = (code: number): string => `HTTP/1.1 ${code} X\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{"status":"ok"}`;
    fc.assert(
      fc.property(fc.array(fc.constantFrom(200, 503, 404), { minLength: 1, maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }), (codes, cuts) => {
        const stream = codes.map(response).join('');
        const s = new StatusScanner();
        const seen: string[] = [];
        for (let off = 0, i = 0; off < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          seen.push(...s.push(stream.slice(off, off + n)));
          off += n;
        }
        expect(seen).toEqual(codes.map(String));
      }),
      { seed: 20261206, numRuns: 200 },
    );
  });
});

describe('error keys', () => {
  it('name the limit that refused, when the server names one', () => {
    expect(errorKey('{"rpcId":1,"result":null,"error":{"code":"RESOURCE_EXHAUSTED","message":"m","details":{"retryAfterMs":50,"limit":"auth"}}}')).toBe('RESOURCE_EXHAUSTED (auth)');
    expect(errorKey('{"rpcId":1,"result":null,"error":{"code":"CONFLICT","message":"m"}}')).toBe('CONFLICT');
    expect(errorKey('garbage')).toBe('BAD_REPLY');
    expect(codeOf({ error: { code: 'RESOURCE_EXHAUSTED', message: 'm', details: { limit: 'auth.maxQueuedHashJobs' } } })).toBe('RESOURCE_EXHAUSTED (auth.maxQueuedHashJobs)');
    expect(codeOf({ error: null })).toBe('OK');
  });
});

describe('flooders', () => {
  const rpcFlood = (port: number, depth = 4) =>
    startFlood({ kind: 'rpc', host: '127.0.0.1', port, connections: 2, depth, requests: { method: 'branches.list' }, countAfterMs: 0 });

  it('ignore RESOURCE_EXHAUSTED and its retryAfterMs: they keep every slot full and count the refusals', async () => {
    const server = await fakeRpc((rpcId) => ({ rpcId, result: null, error: { code: 'RESOURCE_EXHAUSTED', message: 'slow down', details: { retryAfterMs: 60_000, limit: 'auth' } } }));
    const flood = rpcFlood(server.port);
    await flood.started;
    await sleep(200);
    const r = await flood.stop();
    // 60 s asked for; a well-behaved client would have sent 8 requests and waited.
    expect(server.requests()).toBeGreaterThan(100);
    expect(Object.keys(r.answers)).toEqual(['RESOURCE_EXHAUSTED (auth)']);
    expect(r.answers['RESOURCE_EXHAUSTED (auth)']).toBeGreaterThan(100);
    expect(r.sent).toBeGreaterThanOrEqual(r.answers['RESOURCE_EXHAUSTED (auth)']!);
    expect(r.unanswered).toBeLessThanOrEqual(2 * 4);
    expect(r.connectionsOpen).toBe(2);
  });

  it('survive a server that closes every connection, reconnecting and counting what was lost', async () => {
    let accepted = 0;
    const port = await listen((socket) => {
      accepted++;
      socket.on('error', () => undefined);
      // Takes one request's bytes, then hangs up: the requests in flight are lost.
      socket.once('data', () => socket.destroy());
    });
    const flood = rpcFlood(port);
    await flood.started;
    await sleep(450);
    const r = await flood.stop();
    expect(r.closedByServer).toBeGreaterThanOrEqual(4);
    expect(accepted).toBeGreaterThan(r.closedByServer - 1);
    expect(r.lostToClose).toBeGreaterThan(0);
    expect(r.answers).toEqual({});
  });

  it('survive a port nobody listens on: they count failed connects and never start a socket storm', async () => {
    const port = await listen(() => undefined);
    await new Promise((r) => servers.pop()!.close(r));
    const flood = rpcFlood(port);
    await sleep(350);
    const r: FloodResult = await flood.stop();
    expect(r.connectFailures).toBeGreaterThanOrEqual(2);
    // One attempt per connection every 100 ms at the most.
    expect(r.connectFailures).toBeLessThanOrEqual(2 * 6);
    expect(r.connectionsOpen).toBe(0);
  });

  it('keep-alive HTTP pollers each send on their own beat and count statuses; a server that hangs up is reconnected to', async () => {
    let served = 0;
    const port = await listen((socket) => {
      socket.on('error', () => undefined);
      socket.on('data', () => {
        served++;
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{"status":"ok"}');
        // Every third answer, the server closes the connection.
        if (served % 3 === 0) socket.end();
      });
    });
    const flood = startFlood({ kind: 'http', host: '127.0.0.1', port, connections: 3, path: '/healthz', everyMs: 50, countAfterMs: 0 });
    await flood.started;
    await sleep(400);
    const r = await flood.stop();
    expect(r.answers['200']).toBeGreaterThanOrEqual(10);
    // 3 connections every 50 ms for 0.4 s: about 24, less what the reconnects cost.
    expect(r.sent).toBeLessThanOrEqual(3 * 9 + 3);
    expect(r.closedByServer).toBeGreaterThan(0);
  });
});

describe('abuse report', () => {
  const activity = (count: number, ok: number, ms: number[], outcomes: Record<string, number>): ActivityFigures => {
    const h = new LatencyHistogram();
    for (const v of ms) h.recordMs(v);
    return { count, ok, outcomes, latency: h.summary(), wait: h.summary() };
  };
  const figures = (underFlood: FloodFigures['underFlood']['activities']): FloodFigures => ({
    flood: 'reads',
    run: 1,
    runs: 1,
    describe: '2 anonymous connections × 4 pipelined seats.list',
    idle: { windowS: 10, activities: { mine: activity(100, 100, Array(100).fill(2), { OK: 100 }), book: activity(50, 50, Array(50).fill(5), { OK: 50 }), readyz: activity(50, 50, Array(50).fill(1), { '200': 50 }) } },
    underFlood: { windowS: 10, activities: underFlood },
    flooders: null,
    floodCpuPct: null,
    recoveredInS: 1.5,
    server: null,
  });

  it('meets the targets when the client is served as when idle', () => {
    const f = figures({ mine: activity(100, 100, Array(100).fill(5), { OK: 100 }), book: activity(40, 40, Array(40).fill(9), { OK: 40 }), readyz: activity(50, 50, Array(50).fill(1), { '200': 50 }) });
    const c = abuseComparisons(f, 10);
    expect(c.map((x) => [x.what, x.met])).toEqual([
      ['reads: reservations.mine p50', true],
      ['reads: reservations.mine p99', true],
      ['reads: bookings a second', true],
      ['reads: /readyz answered 200', true],
    ]);
    expect(abuseMarkdown([f])).toContain('| /readyz answered 200 | 100% (50 of 50) | 100% (50 of 50) |  |');
  });

  it('misses them when calls fail fast, bookings slow to a trickle or a probe is refused', () => {
    // Refused in a millisecond: fast, but not served.
    const f = figures({
      mine: activity(100, 90, Array(90).fill(2), { OK: 90, 'RESOURCE_EXHAUSTED (user)': 10 }),
      book: activity(3, 3, [3000, 3000, 3000], { OK: 3 }),
      readyz: activity(50, 49, Array(49).fill(1), { '200': 49, ECONNRESET: 1 }),
    });
    const c = abuseComparisons(f, 10);
    expect(c.every((x) => x.met === false)).toBe(true);
    expect(c[0]!.what).toBe('reads: reservations.mine p50, 10 of 100 failed');
    const md = abuseMarkdown([f]);
    expect(md).toContain('| reservations.mine calls | 100 (failed 0) | 100 (failed 10: RESOURCE_EXHAUSTED (user) 10) |');
    expect(md).toContain('98% (49 of 50; 1: ECONNRESET 1)');
    expect(md).toMatch(/\| reservations\.create p50 \/ max ms, failures included \| 5\.00 \/ 5\.0 \| 3,000\.\d+ \/ 3,000\.\d \|/);
    expect(md).toContain('the flood process did not report');
  });

  it('shows "–", not 0 ms, for a latency where nothing succeeded', () => {
    const f = figures({ mine: activity(5, 0, [], { TIMEOUT: 5 }), book: activity(0, 0, [], {}), readyz: activity(0, 0, [], {}) });
    expect(abuseMarkdown([f])).toContain('| reservations.mine p50 ms | 2.00 | – | – |');
  });

  it('medians of several runs: each count and code, and latency only from the runs where something succeeded', () => {
    const run = (n: number, mine: ActivityFigures): FloodFigures => ({ ...figures({ mine, book: activity(1, 1, [5], { OK: 1 }), readyz: activity(1, 1, [1], { '200': 1 }) }), run: n, runs: 3, recoveredInS: n === 2 ? null : n });
    const [m] = medianFloods([
      run(1, activity(3, 3, [3000, 3000, 3000], { OK: 3 })),
      run(2, activity(2, 0, [], { DEADLINE_EXCEEDED: 2 })),
      run(3, activity(5, 4, [1000, 1000, 1000, 1000], { OK: 4, DEADLINE_EXCEEDED: 1 })),
    ]);
    const mine = m!.underFlood.activities.mine!;
    expect({ run: m!.run, runs: m!.runs, count: mine.count, ok: mine.ok, outcomes: mine.outcomes }).toEqual({ run: 0, runs: 3, count: 3, ok: 3, outcomes: { OK: 3, DEADLINE_EXCEEDED: 1 } });
    // The median of 3,000 and 1,000 (runs 1 and 3); run 2 had no latency to give.
    expect(mine.latency.p50Ms).toBeGreaterThan(1990);
    expect(mine.latency.p50Ms).toBeLessThan(2010);
    expect(m!.recoveredInS).toBe(2);
    expect(abuseMarkdown([m!])).toContain('#### reads: 2 anonymous connections × 4 pipelined seats.list (medians of 3 runs)');
  });

  it('keeps the floods out of the throughput chart: their connection counts are no sweep', () => {
    const opts = { floods: [], durationMs: 1, settleMs: 0, repeats: 1, ...ABUSE_DEFAULTS };
    const f = figures({ mine: activity(1, 1, [1], { OK: 1 }) });
    const records = [abuseRecord(f, 'carrel', opts), abuseRecord({ ...f, flood: 'branches' }, 'carrel', opts)];
    expect(records.map((r) => r.connections)).toEqual([32, 8]);
    expect(toSvg(records)).toBeNull();
  });
});
