// `carrel bench signage`: how long the entrance display (/signage/<branch>, docs/web.md) takes to
// apply one seat event, measured inside a real browser with the Performance API. The page, opened
// with `?perf`, marks each event from the moment its WebSocket message is handled to the moment
// the change is committed to the DOM with style and layout done (`signage.apply`); readings go in
// through the sensor port at a steady rate, one seat each, across the branch's 2,000 seats.
//
// Beside it, in the same page and the same window, a task that changes nothing is timed the same
// way: on a busy machine both have the same tail, which is the machine's.
//
// It also reads the page's DOM node count, event listeners and JS heap (Chrome DevTools Protocol,
// after a garbage collection) before and after the run: a display that runs for days must end as
// it began.
//
// Needs Debian's chromium (CHROMIUM_PATH, else /usr/bin/chromium) and playwright-core, which is a
// development dependency: this runs from a checkout, like the tests.
import { existsSync } from 'node:fs';
import type net from 'node:net';
import { LatencyHistogram } from './histogram.js';
import { frameJson, frameText } from './frames.js';
import { customRecord, round1, sampleServer, type RunRecord } from './record.js';
import { connect } from './rpcLoad.js';
import type { BenchContext } from './scenarios.js';

export interface SignageOptions {
  branch: string;
  /** Readings sent per second (one seat each). */
  rate: number;
  warmupMs: number;
  durationMs: number;
}

/** Page script: every `everyMs`, a hop to the next task, then style and layout, measured as `baseline.hop`. */
function startHops(everyMs: number): string {
  return `{
    const channel = new MessageChannel();
    let t0 = 0;
    channel.port1.onmessage = () => {
      void document.body.offsetHeight;
      performance.measure('baseline.hop', { start: t0, end: performance.now() });
    };
    window.benchHop = setInterval(() => {
      t0 = performance.now();
      channel.port2.postMessage(0);
    }, ${everyMs});
  }`;
}

interface PageFigures {
  nodes: number;
  listeners: number;
  heapMb: number;
}

export async function signage(ctx: BenchContext, opts: SignageOptions): Promise<RunRecord> {
  const executablePath = process.env.CHROMIUM_PATH || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
  if (!executablePath) throw new Error('bench signage needs chromium: apt-get install chromium, or set CHROMIUM_PATH');
  const { chromium } = await import('playwright-core');
  const label = `signage: ${opts.rate} readings/s on the page of ${opts.branch}`;
  const args = ['--disable-gpu', '--disable-dev-shm-usage'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath, headless: true, args });
  let gateway: net.Socket | undefined;
  try {
    const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const figures = async (): Promise<PageFigures> => {
      await cdp.send('HeapProfiler.collectGarbage');
      const { metrics } = await cdp.send('Performance.getMetrics');
      const m = new Map(metrics.map((x) => [x.name, x.value]));
      return { nodes: m.get('Nodes') ?? 0, listeners: m.get('JSEventListeners') ?? 0, heapMb: round1((m.get('JSHeapUsedSize') ?? 0) / 1048576) };
    };

    await page.goto(`http://${ctx.host}:${ctx.target.ports.http}/signage/${encodeURIComponent(opts.branch)}?perf`);
    await page.locator('.status.live').waitFor({ timeout: 30_000 });
    await page.locator('[data-seat]').first().waitFor({ timeout: 30_000 });
    const shown = await page.locator('[data-seat]').evaluateAll((els) => els.map((e) => [e.getAttribute('data-seat'), e.getAttribute('data-state')] as const));
    const seats = shown.map(([id]) => Number(id));
    // Each reading flips its seat, starting from what the page shows, so every one is a change.
    const occupied = new Map(shown.map(([id, state]) => [Number(id), state === 'occupied']));
    const snapshotMs = await page.evaluate(() => performance.getEntriesByName('signage.snapshot').at(-1)?.duration ?? null);

    gateway = await connect(ctx.host, ctx.target.ports.sensor);
    gateway.resume(); // acks are not read here, only drained
    gateway.write(frameJson({ type: 'hello', sensorId: 'bench-signage', key: 'dev-sensor-key' }));
    let i = 0;
    let sent = 0;
    const send = () => {
      const seatId = seats[i++ % seats.length]!;
      const now = !(occupied.get(seatId) ?? false);
      occupied.set(seatId, now);
      gateway!.write(frameText(`{"type":"occupancy","readings":[{"seatId":${seatId},"occupied":${now},"at":"${new Date().toISOString()}"}]}`));
      sent++;
    };
    const pace = async (ms: number) => {
      const start = performance.now();
      for (let n = 0; performance.now() - start < ms; n++) {
        const due = start + (n * 1000) / opts.rate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        send();
      }
    };

    await pace(opts.warmupMs);
    // The baseline, in the same page meanwhile: a task that changes nothing, timed the same way
    // (a hop to the next task, then style and layout). What it costs is the machine's, not the map's.
    await page.evaluate(startHops(Math.max(5, Math.round(1000 / opts.rate))));
    await page.evaluate(() => performance.clearMeasures());
    const before = await figures();
    const sentBefore = sent;
    const sampling = sampleServer(ctx.target);
    const windowStart = performance.now();
    await pace(opts.durationMs);
    const windowMs = performance.now() - windowStart;
    const server = sampling.stop();
    await page.evaluate('clearInterval(window.benchHop)');
    await new Promise((r) => setTimeout(r, 500)); // the last events reach the page
    const durations = await page.evaluate(() => performance.getEntriesByName('signage.apply').map((e) => e.duration));
    const hops = await page.evaluate(() => performance.getEntriesByName('baseline.hop').map((e) => e.duration));
    // The marks themselves are the page's only growth in ?perf mode: the figures are taken without them.
    await page.evaluate(() => performance.clearMeasures());
    const after = await figures();
    const applied = await page.locator('[data-state="occupied"]').count();

    const latency = new LatencyHistogram();
    for (const d of durations) latency.recordMs(d);
    const baseline = new LatencyHistogram();
    for (const d of hops) baseline.recordMs(d);
    const over16 = durations.filter((d) => d >= 16).length;
    return customRecord({
      scenario: 'signage',
      label,
      target: ctx.target.describe,
      connections: 1,
      depth: 1,
      rate: opts.rate,
      windowS: round1(windowMs / 1000),
      throughput: Math.round(durations.length / (windowMs / 1000)),
      unit: 'events applied/s',
      latencyHistogram: latency,
      errors: durations.length < (sent - sentBefore) * 0.95 ? { EVENTS_NOT_APPLIED: sent - sentBefore - durations.length } : {},
      connectFailures: 0,
      neverAnswered: 0,
      unanswered: 0,
      serverRssMb: server.maxRssMb,
      serverCpuPct: server.cpuPct,
      clientCpuPct: 0,
      extra: {
        latencyIs: 'in the browser: WebSocket message handled → change committed to the DOM, style and layout done (performance.measure "signage.apply")',
        seats: seats.length,
        readingsSent: sent - sentBefore,
        eventsMeasured: durations.length,
        eventsAt16MsOrMore: over16,
        baselineIs: 'in the same page meanwhile: a task that changes nothing, timed the same way (next task, then style and layout)',
        baseline: { ...baseline.summary(), at16MsOrMore: hops.filter((d) => d >= 16).length },
        snapshotRenderMs: snapshotMs === null ? null : round1(snapshotMs),
        occupiedAtEnd: applied,
        page: { before, after },
        chromium: browser.version(),
      },
    });
  } finally {
    gateway?.destroy();
    await browser.close();
  }
}
