// The flooding side of `carrel bench abuse`: clients that do what a careless or hostile one does
// — many pipelined RPC requests kept in flight, or many keep-alive HTTP connections polling — and
// ignore every hint to slow down (RESOURCE_EXHAUSTED's retryAfterMs, a refused or closed
// connection: they reconnect and go on). They count what the server answered, by code.
//
// Run as a process of its own (`node dist/loadtest/flooder.js`, forked by abuse.ts), so the
// well-behaved client measuring beside it does not share an event loop with thousands of
// replies: its latency is then the server's, not the flooder's.
import net from 'node:net';
import { LatencyHistogram, type LatencySummary } from './histogram.js';
import { FrameSplitter, bytesAreSuccess, bytesRpcId, frameText } from './frames.js';

export type FloodSpec = RpcFloodSpec | HttpFloodSpec;

/** Connections that each keep `depth` requests in flight, refilled as replies come. */
export interface RpcFloodSpec {
  kind: 'rpc';
  host: string;
  port: number;
  connections: number;
  depth: number;
  /** What to send: see requestSource. */
  requests: RequestSpec;
  /** Only replies to requests sent at or after this many ms from the start are counted (the settle time). */
  countAfterMs: number;
}

/** Keep-alive HTTP connections, each sending one GET every `everyMs`, spread evenly over it. */
export interface HttpFloodSpec {
  kind: 'http';
  host: string;
  port: number;
  connections: number;
  path: string;
  everyMs: number;
  countAfterMs: number;
}

export type RequestSpec =
  /** seats.list with a window no other request of the flood has: no listing cache can hold them. */
  | { method: 'seats.list'; branch?: string; baseMs: number }
  | { method: 'branches.list' }
  /** auth.register of a student id that exists: every one is a CONFLICT, after the password is hashed. */
  | { method: 'auth.register'; studentId: string };

export interface FloodResult {
  connectionsAsked: number;
  /** Connections open when the flood stopped. */
  connectionsOpen: number;
  /** Connections attempted and refused, reset or timed out before they opened. */
  connectFailures: number;
  /** Connections the server closed while the flood ran (each is reopened, as a flooder would). */
  closedByServer: number;
  /** Requests sent inside the counted window. */
  sent: number;
  /** Answers inside the counted window by code: OK, an RPC error code, or an HTTP status. */
  answers: Record<string, number>;
  /** Requests of the counted window still unanswered when the flood stopped. */
  unanswered: number;
  /** Requests of the counted window in flight on a connection when the server closed it. */
  lostToClose: number;
  /** Seconds counted. */
  windowS: number;
  latency: LatencySummary;
  /** The latency histogram, HdrHistogram's compressed base64. */
  histogram: string;
}

const RECONNECT_DELAY_MS = 100;
/** Minutes of the days ahead the seats.list windows start in (3 days), before the length changes. */
const WINDOW_STARTS = 3 * 24 * 60;

/**
 * The k-th request body of a flood, without rpcId. seats.list windows: the start moves one
 * minute per request through the next three days, and the length grows by a minute each time
 * the starts wrap, so no two requests of a flood (up to ~600,000 of them) share a window.
 */
export function requestSource(spec: RequestSpec): () => string {
  switch (spec.method) {
    case 'seats.list': {
      const branch = spec.branch === undefined ? '' : `"branch":${JSON.stringify(spec.branch)},`;
      let k = 0;
      return () => {
        const startMs = spec.baseMs + (k % WINDOW_STARTS) * 60_000;
        const lengthMin = 30 + Math.floor(k / WINDOW_STARTS);
        k++;
        const end = new Date(startMs + lengthMin * 60_000).toISOString();
        return `{"method":"seats.list","args":[{${branch}"start":"${new Date(startMs).toISOString()}","end":"${end}"}]}`;
      };
    }
    case 'branches.list':
      return () => '{"method":"branches.list"}';
    case 'auth.register': {
      const body = JSON.stringify({ method: 'auth.register', args: [{ studentId: spec.studentId, name: 'Flood', password: 'flood-password-1' }] });
      return () => body;
    }
  }
}

/** An error reply's code, with the limit that refused when the server names one: "RESOURCE_EXHAUSTED (auth)". */
export function errorKey(text: string): string {
  try {
    const v = JSON.parse(text) as { error?: { code?: unknown; details?: { limit?: unknown } } | null };
    if (!v.error || typeof v.error.code !== 'string') return 'BAD_REPLY';
    return typeof v.error.details?.limit === 'string' ? `${v.error.code} (${v.error.details.limit})` : v.error.code;
  } catch {
    return 'BAD_REPLY';
  }
}

/** Counts HTTP/1.1 status lines in a response stream, whatever its chunking (bodies here hold none). */
export class StatusScanner {
  private tail = '';

  push(chunk: string): string[] {
    const text = this.tail + chunk;
    const codes: string[] = [];
    const re = /HTTP\/1\.[01] (\d{3}) /g;
    let m: RegExpExecArray | null;
    let last = 0;
    while ((m = re.exec(text))) {
      codes.push(m[1]!);
      last = re.lastIndex;
    }
    // Keep enough of the end for a status line cut in two, never one already counted.
    this.tail = text.slice(Math.max(last, text.length - 15));
    return codes;
  }
}

/** A running flood: stop() ends it and resolves with what the flooders got. */
export interface Flood {
  /** Resolves once the first connections are open and sending. */
  readonly started: Promise<void>;
  stop(): Promise<FloodResult>;
}

export function startFlood(spec: FloodSpec): Flood {
  const t0 = performance.now();
  const countFrom = t0 + spec.countAfterMs;
  const latency = new LatencyHistogram();
  const answers: Record<string, number> = {};
  let sent = 0;
  let connectFailures = 0;
  let closedByServer = 0;
  let lostToClose = 0;
  let stopping = false;
  const sockets = new Set<net.Socket>();
  /** Per open connection: when each of its unanswered requests was sent. */
  const inFlight = new Map<net.Socket, () => Iterable<number>>();
  const counted = (times: Iterable<number>): number => {
    let n = 0;
    for (const at of times) if (at >= countFrom) n++;
    return n;
  };
  const timers = new Set<NodeJS.Timeout>();
  const answer = (code: string, at: number): void => {
    if (at < countFrom) return;
    answers[code] = (answers[code] ?? 0) + 1;
    latency.recordMs(performance.now() - at);
  };
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  // One connection's life: open, flood until closed, reopen after a pause (unless stopping).
  const open = (i: number, onFirst: () => void): void => {
    if (stopping) return;
    const socket = net.connect({ host: spec.host, port: spec.port, noDelay: true });
    let opened = false;
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      opened = true;
      sockets.add(socket);
      onFirst();
      if (spec.kind === 'rpc') floodRpc(socket);
      else floodHttp(socket, i);
    });
    socket.once('close', () => {
      sockets.delete(socket);
      const lost = inFlight.get(socket);
      inFlight.delete(socket);
      if (stopping) return;
      if (lost) lostToClose += counted(lost());
      if (opened) closedByServer++;
      else connectFailures++;
      later(RECONNECT_DELAY_MS, () => open(i, () => undefined));
    });
  };

  const nextBody = spec.kind === 'rpc' ? requestSource(spec.requests) : undefined;
  const floodRpc = (socket: net.Socket): void => {
    const s = spec as RpcFloodSpec;
    const pending = new Map<number, number>();
    inFlight.set(socket, () => pending.values());
    const splitter = new FrameSplitter();
    let id = 0;
    const refill = (): void => {
      const out: Buffer[] = [];
      const now = performance.now();
      while (pending.size < s.depth) {
        const body = nextBody!();
        pending.set(++id, now);
        if (now >= countFrom) sent++;
        out.push(frameText(`{"rpcId":${id},${body.slice(1)}`));
      }
      if (out.length) socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        splitter.pushBytes(chunk, (buf, start, end) => {
          const rid = bytesRpcId(buf, start, end);
          const at = pending.get(rid);
          const ok = bytesAreSuccess(buf, start, end);
          const code = ok ? 'OK' : errorKey(buf.toString('utf8', start, end));
          if (at === undefined) {
            // rpcId null: a refusal (too many connections) or a BAD_FRAME, answered to no request.
            answer(code, performance.now());
            return;
          }
          pending.delete(rid);
          answer(code, at);
        });
      } catch {
        socket.destroy();
        return;
      }
      if (!stopping) refill();
    });
    refill();
  };

  const floodHttp = (socket: net.Socket, i: number): void => {
    const s = spec as HttpFloodSpec;
    const queue: number[] = [];
    inFlight.set(socket, () => queue);
    const scanner = new StatusScanner();
    const req = Buffer.from(`GET ${s.path} HTTP/1.1\r\nHost: ${s.host}:${s.port}\r\nConnection: keep-alive\r\n\r\n`);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      for (const code of scanner.push(chunk)) {
        const at = queue.shift();
        if (at !== undefined) answer(code, at);
      }
    });
    // Spread the connections' requests over the period, as independent pollers would be.
    const send = (): void => {
      if (stopping || socket.destroyed) return;
      const now = performance.now();
      queue.push(now);
      if (now >= countFrom) sent++;
      socket.write(req);
      later(s.everyMs, send);
    };
    later(Math.floor((i * s.everyMs) / s.connections), send);
  };

  let resolveStarted!: () => void;
  const started = new Promise<void>((r) => (resolveStarted = r));
  let first = true;
  const onFirst = (): void => {
    if (!first) return;
    first = false;
    resolveStarted();
  };
  for (let i = 0; i < spec.connections; i++) open(i, onFirst);
  // A flood whose every connection is refused has "started" too: it goes on trying.
  later(2_000, onFirst);

  return {
    started,
    stop: async () => {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const stoppedAt = performance.now();
      let unanswered = 0;
      for (const times of inFlight.values()) unanswered += counted(times());
      const connectionsOpen = sockets.size;
      for (const socket of sockets) socket.destroy();
      return {
        connectionsAsked: spec.connections,
        connectionsOpen,
        connectFailures,
        closedByServer,
        sent,
        answers,
        unanswered,
        lostToClose,
        windowS: Math.max(0, Math.round((stoppedAt - countFrom) / 100) / 10),
        latency: latency.summary(),
        histogram: latency.encode(),
      };
    },
  };
}

// As a process: the spec in argv[2] (JSON); "flooding" once started, the result on "stop" (or
// when the parent goes away, or after maxMs: a flooder never outlives its run).
const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain && process.send) {
  const { spec, maxMs } = JSON.parse(process.argv[2] ?? '{}') as { spec: FloodSpec; maxMs: number };
  const flood = startFlood(spec);
  let finished = false;
  const finish = async (): Promise<void> => {
    if (finished) return;
    finished = true;
    const result = await flood.stop();
    if (process.connected) process.send!({ type: 'result', result }, () => process.exit(0));
    else process.exit(0);
  };
  setTimeout(() => void finish(), maxMs).unref();
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'stop') void finish();
  });
  process.on('disconnect', () => process.exit(0));
  await flood.started;
  process.send({ type: 'flooding' });
}
