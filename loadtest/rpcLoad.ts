// Drives load at carrel's RPC port (or the echo baseline) over its own connections (never
// through the CLI): closed loop with a pipeline depth per connection, or open loop at a fixed
// total rate. Open-loop latency is measured from each request's *intended* send time, so a
// server that stalls cannot hide its stall by slowing the client down (coordinated omission).
import net from 'node:net';
import { LatencyHistogram } from './histogram.js';
import { FrameSplitter, bytesAreSuccess, bytesRpcId, frameText, replyErrorCode } from './frames.js';

export interface LoadRequest {
  /** The request's JSON text without rpcId: it is spliced in as the first key. */
  body: string;
  /** Groups figures in the result (e.g. the method); defaults to one group. */
  kind: string;
}

export interface Workload {
  /** The next request for connection `conn`, or null when this connection has nothing to send now. */
  next(conn: number): LoadRequest | null;
  /** Called with every reply; `text` is the reply's JSON text (decoded only for workloads that ask). */
  onReply?(conn: number, req: LoadRequest, ok: boolean, text: string): void;
}

export interface LoadOptions {
  host: string;
  port: number;
  connections: number;
  /** Closed loop: requests kept outstanding per connection. Open loop: the most allowed per connection. */
  depth: number;
  durationMs: number;
  warmupMs: number;
  /** Open loop at this many requests per second in total; closed loop when unset. */
  rate?: number;
  /** How long to wait for replies still outstanding when the window ends. */
  drainMs?: number;
  /** Connections opened at once while setting up (the listen backlog is finite). */
  connectBatch?: number;
  onProgress?: (elapsedMs: number, replies: number) => void;
}

export interface KindFigures {
  count: number;
  errors: number;
  latency: LatencyHistogram;
}

export interface LoadResult {
  connections: number;
  depth: number;
  rate: number | null;
  /** Connections that could not be opened. */
  connectFailures: number;
  /** Connections that were opened and never got a single reply. */
  neverAnswered: number;
  /** Replies inside the measured window. */
  replies: number;
  /** Replies per second inside the measured window. */
  throughput: number;
  latency: LatencyHistogram;
  errorsByCode: Record<string, number>;
  byKind: Map<string, KindFigures>;
  /** Requests sent and never answered by the end of the drain. */
  unanswered: number;
  /** Connections the server closed while the load ran. */
  closedByServer: number;
  /** Open loop only: requests the client could not send on time because depth was reached. */
  backlogged: number;
  windowMs: number;
  /** CPU time the client process used in the window, in ms (user + system). */
  clientCpuMs: number;
}

interface Pending {
  sentAt: number;
  req: LoadRequest;
}

class LoadConnection {
  readonly pending = new Map<number, Pending>();
  private readonly splitter = new FrameSplitter();
  private nextId = 1;
  answered = 0;
  closed = false;
  private out: Buffer[] = [];

  constructor(
    readonly index: number,
    readonly socket: net.Socket,
    onReply: (conn: LoadConnection, buf: Buffer, start: number, end: number) => void,
    onClose: (conn: LoadConnection) => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.splitter.pushBytes(chunk, (buf, start, end) => onReply(this, buf, start, end));
      this.flush();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      onClose(this);
    });
  }

  /** Queues one request; flush() writes everything queued in one syscall. */
  queue(req: LoadRequest, sentAt: number): void {
    const id = this.nextId++;
    this.pending.set(id, { sentAt, req });
    this.out.push(frameText(`{"rpcId":${id},${req.body.slice(1)}`));
  }

  flush(): void {
    if (this.out.length === 0 || this.closed) return;
    this.socket.write(this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out));
    this.out = [];
  }
}

export function connect(host: string, port: number, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => socket.destroy(new Error('connect timeout')), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Opens `n` sockets, `batch` at a time; failures are counted, not thrown. */
export async function openSockets(host: string, port: number, n: number, batch = 100): Promise<{ sockets: net.Socket[]; failures: number }> {
  const sockets: net.Socket[] = [];
  let failures = 0;
  for (let i = 0; i < n; i += batch) {
    const got = await Promise.allSettled(Array.from({ length: Math.min(batch, n - i) }, () => connect(host, port)));
    for (const g of got) {
      if (g.status === 'fulfilled') sockets.push(g.value);
      else failures++;
    }
  }
  return { sockets, failures };
}

export async function runLoad(workload: Workload, opts: LoadOptions): Promise<LoadResult> {
  const { sockets, failures } = await openSockets(opts.host, opts.port, opts.connections, opts.connectBatch);
  const latency = new LatencyHistogram();
  const byKind = new Map<string, KindFigures>();
  const errorsByCode: Record<string, number> = {};
  let measuring = false;
  let sending = true;
  let replies = 0;
  let closedByServer = 0;
  let backlogged = 0;
  let drained: (() => void) | undefined;
  const openLoop = opts.rate !== undefined && opts.rate > 0;

  const started = performance.now();
  const windowStart = started + opts.warmupMs;
  const windowEnd = windowStart + opts.durationMs;
  const figuresFor = (kind: string): KindFigures => {
    let f = byKind.get(kind);
    if (!f) byKind.set(kind, (f = { count: 0, errors: 0, latency: new LatencyHistogram() }));
    return f;
  };
  let outstanding = 0;

  const onReply = (conn: LoadConnection, buf: Buffer, start: number, end: number): void => {
    // The bytes are decoded only when they must be: an error, an odd reply, or a hook that reads them.
    let id = bytesRpcId(buf, start, end);
    const text = (): string => buf.toString('utf8', start, end);
    if (id < 0) {
      try {
        const v = JSON.parse(text()) as { rpcId?: unknown };
        id = typeof v.rpcId === 'number' ? v.rpcId : -1;
      } catch {
        id = -1;
      }
    }
    const p = conn.pending.get(id);
    const ok = bytesAreSuccess(buf, start, end);
    if (!p) {
      // A reply to nothing we sent (rpcId null: BAD_FRAME or a refused connection).
      const code = ok ? 'UNMATCHED' : replyErrorCode(text());
      if (measuring) errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
      return;
    }
    conn.pending.delete(id);
    outstanding--;
    conn.answered++;
    const now = performance.now();
    if (measuring) replies++;
    // Latency counts for every request sent inside the window, even one answered in the drain.
    if (p.sentAt >= windowStart && p.sentAt < windowEnd) {
      const ms = now - p.sentAt;
      latency.recordMs(ms);
      const f = figuresFor(p.req.kind);
      f.count++;
      f.latency.recordMs(ms);
      if (!ok) {
        f.errors++;
        const code = replyErrorCode(text());
        errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
      }
    }
    if (workload.onReply) workload.onReply(conn.index, p.req, ok, text());
    if (sending && !openLoop) refill(conn, now);
    if (!sending && outstanding === 0) drained?.();
  };

  let done = false;
  const onClose = (conn: LoadConnection): void => {
    if (done) return;
    if (sending) closedByServer++;
    outstanding -= conn.pending.size;
    if (conn.pending.size > 0) errorsByCode.CONNECTION_CLOSED = (errorsByCode.CONNECTION_CLOSED ?? 0) + conn.pending.size;
    conn.pending.clear();
    if (!sending && outstanding === 0) drained?.();
  };

  const conns = sockets.map((s, i) => new LoadConnection(i, s, onReply, onClose));

  const refill = (conn: LoadConnection, now: number): void => {
    while (conn.pending.size < opts.depth && !conn.closed) {
      const req = workload.next(conn.index);
      if (!req) break;
      conn.queue(req, now);
      outstanding++;
    }
  };

  let cpuAtWindow = process.cpuUsage();
  let windowBegun = false;
  const beginWindow = (): void => {
    if (windowBegun) return;
    windowBegun = true;
    measuring = true;
    cpuAtWindow = process.cpuUsage();
  };
  if (opts.warmupMs <= 0) beginWindow();

  let timer: NodeJS.Timeout | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  if (opts.onProgress) {
    progressTimer = setInterval(() => opts.onProgress!(performance.now() - started, replies), 250);
  }

  await new Promise<void>((resolve) => {
    const finish = (): void => {
      sending = false;
      measuring = false;
      if (timer) clearInterval(timer);
      resolve();
    };
    if (openLoop) {
      // Requests are due at fixed intervals from the start; each is timed from when it was due.
      const interval = 1000 / opts.rate!;
      let issued = 0;
      let rr = 0;
      timer = setInterval(() => {
        const now = performance.now();
        if (now >= windowStart) beginWindow();
        if (now >= windowEnd) return finish();
        const due = Math.floor((now - started) / interval);
        for (; issued < due; issued++) {
          const intended = started + issued * interval;
          let sent = false;
          for (let tries = 0; tries < conns.length && !sent; tries++) {
            const conn = conns[rr++ % conns.length]!;
            if (conn.closed || conn.pending.size >= opts.depth) continue;
            const req = workload.next(conn.index);
            if (!req) continue;
            conn.queue(req, intended);
            outstanding++;
            sent = true;
          }
          if (!sent) backlogged++;
        }
        for (const c of conns) c.flush();
      }, 1);
    } else {
      const now = performance.now();
      for (const c of conns) {
        refill(c, now);
        c.flush();
      }
      timer = setInterval(() => {
        const t = performance.now();
        if (t >= windowStart) beginWindow();
        if (t >= windowEnd) finish();
      }, 5);
    }
  });
  const windowMs = performance.now() - windowStart;
  const cpu = process.cpuUsage(cpuAtWindow);

  // Drain what is still outstanding, then close.
  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      drained = resolve;
      setTimeout(resolve, opts.drainMs ?? 5_000).unref();
    });
  }
  if (progressTimer) clearInterval(progressTimer);
  done = true;
  let unanswered = 0;
  let neverAnswered = 0;
  for (const c of conns) {
    unanswered += c.pending.size;
    if (c.answered === 0) neverAnswered++;
    c.socket.destroy();
  }
  return {
    connections: opts.connections,
    depth: opts.depth,
    rate: opts.rate ?? null,
    connectFailures: failures,
    neverAnswered,
    replies,
    throughput: replies / (windowMs / 1000),
    latency,
    errorsByCode,
    byKind,
    unanswered,
    closedByServer,
    backlogged,
    windowMs,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  };
}
