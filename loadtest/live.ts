// The live-seat scenarios (docs/sensors.md; docs/protocol.md, "Subscriber port"): a sensor flood
// (readings/s and ack latency), fan-out to many subscribers — on the subscriber port or over
// /ws/live ("WebSocket transports") — with end-to-end latency from a reading's send to each
// delivery, PING latency with and without stalled subscribers, and the memory of many open
// connections.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { LatencyHistogram, median } from './histogram.js';
import { FrameSplitter, WsFrameSplitter, frameJson, frameText, wsClientText } from './frames.js';
import { customRecord, round1, sampleServer, type RunRecord } from './record.js';
import { connect, openSockets } from './rpcLoad.js';
import type { BenchContext, RunShape } from './scenarios.js';
import { ping } from './scenarios.js';
import type { SnapshotFrame } from '../src/wire/types.js';

const DEV_KEY = 'dev-sensor-key';

type Frame = Record<string, unknown>;

/** How subscribers reach the server: the subscriber port, or /ws/live on the HTTP port (docs/protocol.md). */
export type LiveTransport = 'tcp' | 'ws';
/** A fan-out's subscribers: all on one transport, or half on each, interleaved, in the same run. */
export type FanoutTransport = LiveTransport | 'mixed';

/**
 * A live connection that parses every frame it receives (the live ports' traffic is modest per
 * connection): a framed TCP socket, or a WebSocket whose every message is one frame.
 */
abstract class LiveConn {
  abstract readonly transport: LiveTransport;
  closed = false;
  private waiters: Array<{ pred: (f: Frame) => boolean; resolve: (f: Frame) => void; reject: (e: Error) => void }> = [];

  constructor(private onFrame: (f: Frame, text: string) => void = () => undefined) {}

  /** The TCP socket under either transport. */
  abstract readonly socket: net.Socket;
  abstract send(f: Frame): void;

  /** Stops reading: the server's writes back up, as a stalled subscriber's do. */
  pause(): void {
    this.socket.pause();
  }

  /** Reads and throws away from now on, without parsing: a subscriber that keeps up for free. */
  discardFrames(): void {
    this.socket.removeAllListeners('data');
    this.socket.on('data', () => undefined);
  }

  onClose(cb: () => void): void {
    this.socket.once('close', cb);
  }

  destroy(): void {
    this.socket.destroy();
  }

  protected frame(text: string): void {
    const f = JSON.parse(text) as Frame;
    for (const w of this.waiters) {
      if (w.pred(f)) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(f);
        break;
      }
    }
    this.onFrame(f, text);
  }

  protected ended(): void {
    this.closed = true;
    for (const w of this.waiters) w.reject(new Error('closed'));
    this.waiters = [];
  }

  setHandler(onFrame: (f: Frame, text: string) => void): void {
    this.onFrame = onFrame;
  }

  waitFor(pred: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (f) => {
          clearTimeout(t);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });
  }
}

/** A framed TCP socket. */
class LiveSocket extends LiveConn {
  readonly transport = 'tcp';
  private readonly splitter = new FrameSplitter();

  constructor(
    readonly socket: net.Socket,
    onFrame?: (f: Frame, text: string) => void,
  ) {
    super(onFrame);
    socket.on('data', (chunk: Buffer) => this.splitter.push(chunk, (text) => this.frame(text)));
    socket.on('error', () => undefined);
    socket.on('close', () => this.ended());
  }

  send(f: Frame): void {
    this.socket.write(frameJson(f));
  }
}

/** A WebSocket to /ws/live, one text message a frame, read as leanly as LiveSocket reads TCP. */
class WsLiveSocket extends LiveConn {
  readonly transport = 'ws';
  private readonly splitter = new WsFrameSplitter();

  constructor(
    readonly socket: net.Socket,
    early: Buffer,
  ) {
    super();
    const onData = (chunk: Buffer): void =>
      this.splitter.push(chunk, (text) => this.frame(text), (opcode, payload) => {
        // Close: end ours too. Ping: pong with the same payload (the server sends none today).
        if (opcode === 0x8) socket.end();
        else if (opcode === 0x9) socket.write(wsClientControl(0xa, payload));
      });
    socket.on('data', onData);
    socket.on('error', () => undefined);
    socket.on('close', () => this.ended());
    if (early.length > 0) onData(early);
  }

  send(f: Frame): void {
    this.socket.write(wsClientText(JSON.stringify(f)));
  }
}

/** A control frame from a client (masked with zeros: the payload is the server's own). */
function wsClientControl(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

/** The WebSocket handshake to `path` on the HTTP port, by hand (the bytes past the 101 are the first messages). */
function openWs(host: string, port: number, path: string, timeoutMs = 10_000): Promise<WsLiveSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => socket.destroy(new Error(`${path}: no handshake within ${timeoutMs} ms`)), timeoutMs);
    let head = Buffer.alloc(0);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.off('error', fail);
      clearTimeout(timer);
      const status = head.toString('latin1', 0, head.indexOf('\r\n'));
      if (!status.startsWith('HTTP/1.1 101')) {
        socket.destroy();
        reject(new Error(`${path}: ${status}`));
        return;
      }
      resolve(new WsLiveSocket(socket, head.subarray(end + 4)));
    };
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('connect', () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
  });
}

async function sensorGateway(host: string, port: number, id: string): Promise<LiveSocket> {
  const s = new LiveSocket(await connect(host, port));
  const welcome = s.waitFor((f) => f.type === 'welcome' || f.type === 'error');
  s.send({ type: 'hello', sensorId: id, key: DEV_KEY });
  const w = await welcome;
  if (w.type !== 'welcome') throw new Error(`sensor hello refused: ${JSON.stringify(w)}`);
  return s;
}

/** Readings whose `at` only ever moves forward per seat, so none is stale. */
class ReadingSource {
  private readonly lastAt = new Map<number, number>();
  private readonly occupied = new Map<number, boolean>();
  private i = 0;

  constructor(private readonly seats: readonly number[], initial?: Map<number, boolean>) {
    for (const s of seats) this.occupied.set(s, initial?.get(s) ?? false);
  }

  /** The next reading: seats in turn, each one flipping its occupancy. */
  next(): { seatId: number; occupied: boolean; at: string } {
    const seatId = this.seats[this.i++ % this.seats.length]!;
    const occupied = !this.occupied.get(seatId);
    this.occupied.set(seatId, occupied);
    const at = Math.max(Date.now(), (this.lastAt.get(seatId) ?? 0) + 1);
    this.lastAt.set(seatId, at);
    return { seatId, occupied, at: new Date(at).toISOString() };
  }
}

interface ServerMetrics {
  /** Figures a run reports as deltas (drops, cut-offs), and the queued events now. */
  counters: Record<string, number>;
  /** The server's own histogram of arrival → write to each subscriber (cumulative buckets, by bound in seconds). */
  delivery: Array<[number, number]> | null;
}

const COUNTERS = ['carrel_pubsub_queued_events', 'carrel_pubsub_dropped_total', 'carrel_pubsub_slow_consumers_total', 'carrel_pubsub_events_total', 'carrel_sensor_readings_total', 'carrel_sensor_stale_readings_total'];

/** One read of the server's /metrics (nothing without its metrics port, or when it does not answer). */
async function scrape(ctx: BenchContext): Promise<ServerMetrics> {
  const none: ServerMetrics = { counters: {}, delivery: null };
  if (!ctx.target.ports.http) return none;
  try {
    const res = await fetch(`http://${ctx.host}:${ctx.target.ports.http}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const counters: Record<string, number> = {};
    for (const name of COUNTERS) {
      const m = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)`, 'm').exec(text);
      if (m) counters[name.replace(/^carrel_/, '')] = Number(m[1]);
    }
    const delivery: Array<[number, number]> = [];
    for (const m of text.matchAll(/^carrel_pubsub_delivery_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) {
      delivery.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
    }
    return { counters, delivery: delivery.length ? delivery : null };
  } catch {
    return none;
  }
}

/** Percentiles (bucket upper bounds, ms) of what the server's histogram gained between two reads. */
export function bucketPercentiles(before: Array<[number, number]>, after: Array<[number, number]>): { count: number; p50Ms: number; p90Ms: number; p99Ms: number; p999Ms: number } {
  const cum = after.map(([le, n], i) => [le, n - (before[i]?.[1] ?? 0)] as [number, number]);
  const count = cum.at(-1)?.[1] ?? 0;
  const at = (q: number): number => {
    const rank = Math.max(1, Math.ceil(q * count));
    const hit = cum.find(([, n]) => n >= rank);
    return hit ? Math.round(hit[0] * 1e6) / 1e3 : NaN;
  };
  return { count, p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), p999Ms: at(0.999) };
}

function delta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(b).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
}

/**
 * Runs `tick(intendedMs)` at a fixed rate for warmup + duration from a 1 ms timer; each call
 * gets the time it was due, so latency can be measured from there (no coordinated omission).
 */
function openLoop(rate: number, totalMs: number, tick: (intended: number) => void, onTick?: () => void): Promise<void> {
  const started = performance.now();
  const interval = 1000 / rate;
  let issued = 0;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const due = Math.min(Math.floor((now - started) / interval), Math.floor(totalMs / interval));
      for (; issued < due; issued++) tick(started + issued * interval);
      onTick?.();
      if (now - started >= totalMs) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
}

// --- sensors ------------------------------------------------------------------------------

export interface SensorOptions {
  branch: string;
  gateways: number;
  /** Readings per second in total. */
  rate: number;
  /** Readings per occupancy frame. */
  batch: number;
  durationMs: number;
  warmupMs: number;
}

export async function sensors(ctx: BenchContext, opts: SensorOptions): Promise<RunRecord> {
  const seats = (await ctx.seats(opts.branch)).map((s) => s.id);
  const gateways = await Promise.all(Array.from({ length: opts.gateways }, (_, i) => sensorGateway(ctx.host, ctx.target.ports.sensor, `bench-gw-${i}`)));
  const source = new ReadingSource(seats);
  const latency = new LatencyHistogram();
  const sent = new Map<string, number>();
  const errors: Record<string, number> = {};
  let acked = 0;
  let applied = 0;
  let stale = 0;
  let ref = 0;
  const started = performance.now();
  const windowStart = started + opts.warmupMs;
  gateways.forEach((g) =>
    g.setHandler((f) => {
      if (f.type === 'ack') {
        const key = String(f.ref);
        const at = sent.get(key);
        sent.delete(key);
        if (at !== undefined && at >= windowStart) {
          latency.recordMs(performance.now() - at);
          acked++;
          applied += Number(f.applied ?? 0);
          stale += Number(f.stale ?? 0);
        }
      } else if (f.type === 'error') {
        const code = String(f.code);
        errors[code] = (errors[code] ?? 0) + 1;
      }
    }),
  );
  const before = (await scrape(ctx)).counters;
  const sampling = sampleServer(ctx.target);
  const cpu0 = process.cpuUsage();
  let frames = 0;
  const label = `sensors: ${opts.rate.toLocaleString('en')} readings/s over ${seats.length} seats of ${opts.branch}, ${opts.gateways} gateways, ${opts.batch}/frame`;
  const total = opts.warmupMs + opts.durationMs;
  let pending: Array<{ seatId: number; occupied: boolean; at: string }> = [];
  await openLoop(
    opts.rate,
    total,
    (intended) => {
      pending.push(source.next());
      if (pending.length < opts.batch) return;
      const g = gateways[frames++ % gateways.length]!;
      const r = ++ref;
      sent.set(String(r), intended);
      g.socket.write(frameText(`{"type":"occupancy","ref":${r},"readings":${JSON.stringify(pending)}}`));
      pending = [];
    },
    () => ctx.onProgress?.(label, Math.min(1, (performance.now() - started) / total), `${acked.toLocaleString('en')} frames acked`),
  );
  const windowMs = performance.now() - windowStart;
  const cpu = process.cpuUsage(cpu0);
  // Give the last acks a moment.
  const drainUntil = performance.now() + 3000;
  while (sent.size > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 20));
  const server = sampling.stop();
  const after = (await scrape(ctx)).counters;
  for (const g of gateways) g.socket.destroy();
  return customRecord({
    scenario: 'sensors',
    label,
    target: ctx.target.describe,
    connections: opts.gateways,
    depth: opts.batch,
    rate: opts.rate,
    windowS: round1(windowMs / 1000),
    throughput: Math.round((applied + stale) / (windowMs / 1000)),
    unit: 'readings/s',
    latencyHistogram: latency,
    errors,
    connectFailures: 0,
    neverAnswered: 0,
    unanswered: sent.size,
    serverRssMb: server.maxRssMb,
    serverCpuPct: server.cpuPct,
    clientCpuPct: round1(((cpu.user + cpu.system) / 1000 / windowMs) * 100),
    extra: { framesAcked: acked, applied, stale, latencyIs: 'frame send → ack', server: delta(before, after) },
  });
}

// --- fan-out ------------------------------------------------------------------------------

export interface FanoutOptions {
  branch: string;
  subscribers: number;
  /** Of those, how many never read a byte after subscribing. */
  stalled: number;
  /** Readings per second, one reading per frame, over the branch's seats. */
  rate: number;
  durationMs: number;
  warmupMs: number;
  /**
   * How the subscribers connect: the subscriber port (default), /ws/live, or `mixed`: half on
   * each, interleaved, the same events at the same moments, latency kept apart per transport.
   */
  transport?: FanoutTransport;
}

interface FastSub {
  sock: LiveConn;
  /** Seat events seen per seat since the snapshot. */
  seen: Map<number, number>;
  lastSeq: number;
  gaps: number;
  events: number;
}

/**
 * WebSocket handshakes kept in progress at once: the HTTP port closes an address's longest-idle
 * connection past http.maxConnectionsPerAddress (16), and a handshake not yet read is idle.
 */
const WS_HANDSHAKES_AT_ONCE = 8;

/** Opens `n` live connections over `transport`, `batch` at a time (failures thrown); `mixed` alternates them. */
async function openLive(ctx: BenchContext, transport: FanoutTransport, n: number, batch: number): Promise<LiveConn[]> {
  if (transport === 'mixed') {
    const [tcp, ws] = await Promise.all([openLive(ctx, 'tcp', Math.ceil(n / 2), batch), openLive(ctx, 'ws', Math.floor(n / 2), batch)]);
    return tcp.flatMap((t, i) => (ws[i] ? [t, ws[i]] : [t]));
  }
  if (transport === 'tcp') {
    const { sockets, failures } = await openSockets(ctx.host, ctx.target.ports.pubsub, n, batch);
    if (failures) throw new Error(`${failures} subscriber connections failed`);
    return sockets.map((s) => new LiveSocket(s));
  }
  if (!ctx.target.ports.http) throw new Error('--transport ws needs the HTTP port (--http-port with --server)');
  const out: LiveConn[] = [];
  for (let i = 0; i < n; i += WS_HANDSHAKES_AT_ONCE) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(WS_HANDSHAKES_AT_ONCE, n - i) }, () => openWs(ctx.host, ctx.target.ports.http, '/ws/live')))));
  }
  return out;
}

/** Opens subscribers `batch` at a time, each past its snapshot before the next batch. */
async function openSubscribers(ctx: BenchContext, branch: string, n: number, transport: FanoutTransport = 'tcp', batch = 100): Promise<Array<{ sock: LiveConn; snapshot: Frame }>> {
  const out: Array<{ sock: LiveConn; snapshot: Frame }> = [];
  for (let i = 0; i < n; i += batch) {
    const conns = await openLive(ctx, transport, Math.min(batch, n - i), batch);
    out.push(
      ...(await Promise.all(
        conns.map(async (sock) => {
          const snap = sock.waitFor((f) => f.type === 'snapshot' || f.type === 'error');
          sock.send({ type: 'subscribe', branch });
          const snapshot = await snap;
          if (snapshot.type !== 'snapshot') throw new Error(`subscribe refused: ${JSON.stringify(snapshot)}`);
          return { sock, snapshot };
        }),
      )),
    );
  }
  return out;
}

export async function fanout(ctx: BenchContext, opts: FanoutOptions): Promise<RunRecord> {
  const fastCount = opts.subscribers - opts.stalled;
  if (fastCount < 1) throw new Error('fanout needs at least one subscriber that reads');
  const who = ctx.target.describe.startsWith('echo') ? 'bare fan-out baseline: ' : '';
  const transport = opts.transport ?? 'tcp';
  const over = transport === 'ws' ? ' over /ws/live' : transport === 'mixed' ? ' over TCP and /ws/live at once' : '';
  const label = `${who}fanout${over}: ${opts.rate.toLocaleString('en')} readings/s to ${opts.subscribers.toLocaleString('en')} subscribers of ${opts.branch}${opts.stalled ? ` (${opts.stalled} stalled)` : ''}`;
  const opened = await openSubscribers(ctx, opts.branch, opts.subscribers, transport);
  const snapshot = opened[0]!.snapshot as Pick<SnapshotFrame, 'seats'>;
  const seats = snapshot.seats.map((s) => s.seatId);
  const initial = new Map(snapshot.seats.map((s) => [s.seatId, s.state === 'occupied']));
  // Stalled ones stop reading now: their socket buffers fill, then their queues on the server.
  const stalled = opened.slice(fastCount);
  for (const s of stalled) s.sock.pause();
  let stalledClosed = 0;
  for (const s of stalled) s.sock.onClose(() => stalledClosed++);

  // Reading j of seat s was sent at sendTimes[s][j]; a subscriber's j-th sensor event for s is its delivery.
  const sendTimes = new Map<number, number[]>(seats.map((s) => [s, []]));
  const latency = new LatencyHistogram();
  const byTransport: Record<LiveTransport, LatencyHistogram> = { tcp: new LatencyHistogram(), ws: new LatencyHistogram() };
  const started = performance.now();
  const windowStart = started + opts.warmupMs;
  const windowEnd = windowStart + opts.durationMs;
  let deliveries = 0;
  let unexpected = 0;
  const fast: FastSub[] = opened.slice(0, fastCount).map(({ sock, snapshot: snap }) => ({
    sock,
    seen: new Map(),
    lastSeq: Number(snap.seq),
    gaps: 0,
    events: 0,
  }));
  for (const sub of fast) {
    sub.sock.setHandler((f) => {
      if (f.type !== 'seat') return;
      const seq = Number(f.seq);
      if (seq !== sub.lastSeq + 1) sub.gaps++;
      sub.lastSeq = seq;
      sub.events++;
      if (f.cause !== 'sensor') return;
      const seatId = Number(f.seatId);
      const j = sub.seen.get(seatId) ?? 0;
      sub.seen.set(seatId, j + 1);
      const at = sendTimes.get(seatId)?.[j];
      if (at === undefined) {
        unexpected++;
        return;
      }
      if (at >= windowStart && at < windowEnd) {
        const ms = performance.now() - at;
        latency.recordMs(ms);
        byTransport[sub.sock.transport].recordMs(ms);
        deliveries++;
      }
    });
  }
  const gateway = await sensorGateway(ctx.host, ctx.target.ports.sensor, 'bench-fanout');
  const source = new ReadingSource(seats, initial);
  let ackErrors = 0;
  gateway.setHandler((f) => {
    if (f.type === 'error' || (f.type === 'ack' && Number(f.applied) !== 1)) ackErrors++;
  });
  const before = await scrape(ctx);
  const sampling = sampleServer(ctx.target);
  const cpu0 = process.cpuUsage();
  let ref = 0;
  await openLoop(
    opts.rate,
    opts.warmupMs + opts.durationMs,
    () => {
      const r = source.next();
      // Timestamped as it is written: the socket write is where the reading's life begins.
      sendTimes.get(r.seatId)!.push(performance.now());
      gateway.socket.write(frameText(`{"type":"occupancy","ref":${++ref},"readings":[${JSON.stringify(r)}]}`));
    },
    () => ctx.onProgress?.(label, Math.min(1, (performance.now() - started) / (opts.warmupMs + opts.durationMs)), `${deliveries.toLocaleString('en')} deliveries`),
  );
  const windowMs = performance.now() - windowStart;
  const cpu = process.cpuUsage(cpu0);
  // Let the last events arrive.
  const expected = ref;
  const until = performance.now() + 3000;
  while (fast.some((s) => s.events < expected && !s.sock.closed) && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  const server = sampling.stop();
  const after = await scrape(ctx);
  gateway.socket.destroy();
  let gaps = 0;
  let missing = 0;
  let fastClosed = 0;
  for (const s of fast) {
    gaps += s.gaps;
    missing += Math.max(0, expected - s.events);
    if (s.sock.closed) fastClosed++;
    s.sock.destroy();
  }
  for (const s of stalled) s.sock.destroy();
  return customRecord({
    scenario: 'fanout',
    label,
    target: ctx.target.describe,
    connections: opts.subscribers,
    depth: 1,
    rate: opts.rate,
    windowS: round1(windowMs / 1000),
    throughput: Math.round(deliveries / (windowMs / 1000)),
    unit: 'deliveries/s',
    latencyHistogram: latency,
    errors: {
      ...(gaps ? { SEQ_GAP: gaps } : {}),
      ...(missing ? { MISSED_EVENT: missing } : {}),
      ...(ackErrors ? { SENSOR_ERROR: ackErrors } : {}),
      ...(fastClosed ? { FAST_SUBSCRIBER_CLOSED: fastClosed } : {}),
    },
    connectFailures: 0,
    neverAnswered: 0,
    unanswered: 0,
    serverRssMb: server.maxRssMb,
    serverCpuPct: server.cpuPct,
    clientCpuPct: round1(((cpu.user + cpu.system) / 1000 / windowMs) * 100),
    extra: {
      latencyIs: 'reading written to the sensor socket → seat event read by a subscriber',
      transport,
      // With both transports in the run: each one's deliveries on their own.
      byTransport: transport === 'mixed' ? { tcp: byTransport.tcp.summary(), ws: byTransport.ws.summary() } : undefined,
      // What the server itself measured: a reading read → its event written to each subscriber.
      serverDelivery: before.delivery && after.delivery ? bucketPercentiles(before.delivery, after.delivery) : null,
      readingsSent: expected,
      fastSubscribers: fastCount,
      stalledSubscribers: opts.stalled,
      stalledCutOff: stalledClosed,
      unexpectedEvents: unexpected,
      server: delta(before.counters, after.counters),
    },
  });
}

// --- PING with and without stalled subscribers ---------------------------------------------

export interface StalledOptions {
  branch: string;
  stalled: number;
  /** Readings per second streamed to the branch in both phases. */
  rate: number;
  ping: RunShape;
  /** A/B pairs; medians are reported. */
  repeats: number;
}

/**
 * PING latency while a sensor stream runs, first with no subscribers, then with `stalled`
 * subscribers that never read, alternating `repeats` times. The claim under test (docs/protocol.md,
 * "Slow consumers"): a stalled subscriber never slows RPC.
 */
export async function stalledPing(ctx: BenchContext, opts: StalledOptions): Promise<RunRecord> {
  const seats = (await ctx.seats(opts.branch)).map((s) => s.id);
  const gateway = await sensorGateway(ctx.host, ctx.target.ports.sensor, 'bench-stalled');
  const source = new ReadingSource(seats);
  let streaming = true;
  let burst = 0; // readings per 10 ms tick on top of the steady rate, while filling stalled sockets
  let ref = 0;
  const interval = setInterval(() => {
    if (!streaming) return;
    // The stream's rate per 10 ms tick.
    const n = Math.max(1, Math.round(opts.rate / 100)) + burst;
    const readings = Array.from({ length: n }, () => source.next());
    gateway.socket.write(frameText(`{"type":"occupancy","ref":${++ref},"readings":${JSON.stringify(readings)}}`));
  }, 10);
  const without: RunRecord[] = [];
  const withStalled: RunRecord[] = [];
  const withFast: RunRecord[] = [];
  const congestedAtStart: number[] = [];
  let cutOff = 0;
  try {
    for (let i = 0; i < opts.repeats; i++) {
      without.push(await ping(ctx, opts.ping));
      const stalled = await openSubscribers(ctx, opts.branch, opts.stalled);
      for (const s of stalled) s.sock.pause();
      // A subscriber that has not read for a moment still has room in its socket buffers and
      // costs what a fast one does. Stalled means the kernel's buffers are full and the server
      // queues its events: burst readings until every one of them has a queue, then measure.
      congestedAtStart.push(await fillStalled(ctx, opts.stalled, (n) => (burst = n)));
      withStalled.push(await ping(ctx, opts.ping));
      for (const s of stalled) {
        if (s.sock.closed) cutOff++;
        s.sock.destroy();
      }
      // As many subscribers that keep up (read and discard): what fan-out itself costs.
      const fast = await openSubscribers(ctx, opts.branch, opts.stalled);
      for (const s of fast) s.sock.discardFrames();
      withFast.push(await ping(ctx, opts.ping));
      for (const s of fast) s.sock.destroy();
    }
  } finally {
    streaming = false;
    clearInterval(interval);
    gateway.socket.destroy();
  }
  const p99Without = median(without.map((r) => r.latency.p99Ms));
  const p99With = median(withStalled.map((r) => r.latency.p99Ms));
  const p99Fast = median(withFast.map((r) => r.latency.p99Ms));
  const rep = withStalled[Math.floor(withStalled.length / 2)]!;
  return {
    ...rep,
    scenario: 'stalled',
    label: `PING ${opts.ping.connections} conns × depth ${opts.ping.depth} with ${opts.stalled} stalled subscribers (${opts.rate}/s readings)`,
    extra: {
      p99WithoutMs: p99Without,
      p99WithMs: p99With,
      p99Change: round1(((p99With - p99Without) / p99Without) * 100) / 100,
      p99WithFastMs: p99Fast,
      p99ChangeVsFast: round1(((p99With - p99Fast) / p99Fast) * 100) / 100,
      p99sWithFast: withFast.map((r) => r.latency.p99Ms),
      throughputWithout: median(without.map((r) => r.throughput)),
      throughputWith: median(withStalled.map((r) => r.throughput)),
      repeats: opts.repeats,
      p99sWithout: without.map((r) => r.latency.p99Ms),
      p99sWith: withStalled.map((r) => r.latency.p99Ms),
      stalledCutOff: cutOff,
      // Events queued on the server when each stalled measurement began (≥ 1 per stalled subscriber
      // once its socket is full).
      queuedEventsAtStart: congestedAtStart,
    },
  };
}

/**
 * Raises the reading rate until the server holds at least `stalled` queued events (each stalled
 * subscriber's socket full), at most 20 s; returns the queued events then. Without the server's
 * metrics port it waits 2 s at the raised rate.
 */
async function fillStalled(ctx: BenchContext, stalled: number, setBurst: (perTick: number) => void): Promise<number> {
  setBurst(20); // +2,000 readings/s
  const until = Date.now() + 20_000;
  let queued = 0;
  try {
    if (!ctx.target.ports.http) {
      await new Promise((r) => setTimeout(r, 2000));
      return 0;
    }
    while (Date.now() < until) {
      queued = (await scrape(ctx)).counters.pubsub_queued_events ?? 0;
      if (queued >= stalled) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return queued;
  } finally {
    setBurst(0);
  }
}

// --- many connections open ------------------------------------------------------------------

export interface ConnectionsOptions {
  rpc: number;
  subscribers: number;
  branch: string;
  holdMs: number;
}

/** Opens `rpc` RPC connections (each answers a PING) and `subscribers` subscribers, then reads the server's RSS. */
export async function connections(ctx: BenchContext, opts: ConnectionsOptions): Promise<RunRecord> {
  const label = `${opts.rpc.toLocaleString('en')} RPC connections + ${opts.subscribers.toLocaleString('en')} subscribers open`;
  const sampling = sampleServer(ctx.target);
  const rssBefore = await ctx.target.rssBytes();
  const { sockets, failures } = await openSockets(ctx.host, ctx.rpcPort, opts.rpc);
  const latency = new LatencyHistogram();
  let answered = 0;
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          const splitter = new FrameSplitter();
          const t0 = performance.now();
          const timer = setTimeout(resolve, 10_000);
          s.on('data', (c: Buffer) =>
            splitter.push(c, (text) => {
              if (text.includes('"PONG"')) {
                answered++;
                latency.recordMs(performance.now() - t0);
              }
              clearTimeout(timer);
              resolve();
            }),
          );
          s.on('error', () => resolve());
          s.write(frameText('{"rpcId":1,"method":"PING"}'));
        }),
    ),
  );
  const subs = await openSubscribers(ctx, opts.branch, opts.subscribers);
  await new Promise((r) => setTimeout(r, opts.holdMs));
  const server = sampling.stop();
  const rssOpen = await ctx.target.rssBytes();
  for (const s of sockets) s.destroy();
  for (const s of subs) s.sock.destroy();
  return customRecord({
    scenario: 'connections',
    label,
    target: ctx.target.describe,
    connections: opts.rpc + opts.subscribers,
    depth: 1,
    rate: null,
    windowS: round1(opts.holdMs / 1000),
    throughput: answered,
    unit: 'PINGs answered',
    latencyHistogram: latency,
    errors: {},
    connectFailures: failures,
    neverAnswered: sockets.length - answered,
    unanswered: 0,
    serverRssMb: server.maxRssMb,
    serverCpuPct: server.cpuPct,
    clientCpuPct: 0,
    extra: {
      rssBeforeMb: rssBefore === null ? null : round1(rssBefore / 1048576),
      rssOpenMb: rssOpen === null ? null : round1(rssOpen / 1048576),
      subscribersOpen: subs.length,
    },
  });
}
