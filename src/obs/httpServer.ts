// The health and metrics port (ports.http, docs/http.md): GET /healthz (the process
// is alive), GET /readyz (200 when every required check passes — "degraded" naming optional ones
// that fail — else 503 saying what is down), and GET /metrics (Prometheus text; with
// http.metricsToken set, only for `Authorization: Bearer <token>`). node:http, no framework:
// three fixed routes.
//
// The port holds http.maxConnections connections, at most http.maxConnectionsPerAddress from one
// address, and always takes a newcomer: 64 keep-alive connections sending GET /healthz every 3 s
// used to fill it, and every /readyz probe was refused for as long as they held on. Now the
// newcomer's address gives up its own longest-idle connection when it is at its share, else the
// port gives up its longest-idle one when full (one still answering a request only when none is
// idle). A probe opens a connection and asks at once, so it is the one never chosen.
//
// A WebSocket upgrade is handed to `upgrade` (src/net/wsGateway.ts) and the connection leaves this
// port's caps: it belongs to the port whose protocol it speaks from then on (docs/http.md,
// "WebSockets"). Any other upgrade (h2c, …) is answered as the plain HTTP/1.1 request it also is.
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from './log.js';
import type { Readiness } from './health.js';
import { PROMETHEUS_CONTENT_TYPE, type MetricsRegistry } from './metrics.js';
import { addressKey } from '../auth/failureThrottle.js';
import type { StaticSite } from '../http/staticSite.js';

/** Takes over a connection whose request asks for a WebSocket (the socket is the handler's from then on). */
export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface ObsHttpOptions {
  host: string;
  port: number;
  /** Drop a connection whose request head is not complete by then (http.headersTimeoutMs). */
  headersTimeoutMs: number;
  /** Connections kept at once (http.maxConnections). */
  maxConnections: number;
  /** Connections kept from one address, an IPv6 /64 counting as one (http.maxConnectionsPerAddress). */
  maxConnectionsPerAddress: number;
  /** The bearer token /metrics requires (http.metricsToken); null: /metrics is open. */
  metricsToken: string | null;
  metrics: MetricsRegistry;
  readiness: Readiness;
  /** WebSocket upgrades (the /ws/ paths); without it they are answered as plain requests. */
  upgrade?: UpgradeHandler;
  log: Logger;
  /** The web pages (docs/web.md), answered for every other GET path they know. */
  site?: StaticSite;
}

interface Tracked {
  address: string;
  /** Requests received on it and not yet answered. */
  inFlight: number;
}

// Idle keep-alive connections are closed after this; eviction, not this, keeps the port open.
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

export class ObsHttpServer {
  private readonly server: http.Server;
  /** Open connections, least recently active first (moved to the end at each request and answer). */
  private readonly tracked = new Map<net.Socket, Tracked>();
  private readonly perAddress = new Map<string, number>();
  private readonly tokenDigest: Buffer | undefined;
  acceptedCount = 0;
  /** The port closes old connections instead of refusing new ones: always 0, for the shared gauges. */
  readonly refusedCount = 0;
  /** Connections closed to make room: for an address at its share, or for a full port. */
  readonly evicted = { address: 0, port: 0 };
  /** /metrics requests refused 401 (no token or a wrong one). */
  unauthorized = 0;

  constructor(private readonly opts: ObsHttpOptions) {
    // Node enforces headersTimeout and requestTimeout only when it sweeps its connections,
    // every connectionsCheckingInterval (30 s by default): 70 slow-header clients filled the 64
    // slots and /healthz timed out for that long. Sweep every quarter of the timeout (at most
    // every second), so a slow client is dropped within 1.25 × headersTimeoutMs. A GET carries no
    // body, so the whole request gets little more than its head.
    const headersTimeout = opts.headersTimeoutMs;
    this.server = http.createServer(
      {
        headersTimeout,
        requestTimeout: headersTimeout * 2,
        connectionsCheckingInterval: Math.max(25, Math.min(1_000, Math.floor(headersTimeout / 4))),
      },
      (req, res) => this.handle(req, res),
    );
    this.server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    this.server.on('connection', (socket: net.Socket) => this.admit(socket));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('error', (err) => opts.log.error({ err: err.message }, 'http listener error'));
    this.server.on('clientError', (_err, socket) => socket.destroy());
    // Digests of equal length, so the comparison takes the same time whatever the peer sent.
    this.tokenDigest = opts.metricsToken === null ? undefined : digest(opts.metricsToken);
  }

  /** Open connections (the carrel_connections_* gauges count them with port="http"). */
  get connections(): { readonly size: number } {
    return this.tracked;
  }

  async listen(): Promise<net.AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as net.AddressInfo;
  }

  close(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Makes room for a newcomer (see the top of this file), then counts it. */
  private admit(socket: net.Socket): void {
    const address = addressKey(socket.remoteAddress ?? '');
    // Evicting one of the address's own keeps the total where it was, so one step is enough.
    if ((this.perAddress.get(address) ?? 0) >= this.opts.maxConnectionsPerAddress) this.evict('address', address);
    else if (this.tracked.size >= this.opts.maxConnections) this.evict('port');
    this.acceptedCount++;
    this.tracked.set(socket, { address, inFlight: 0 });
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    socket.once('close', () => this.forget(socket));
  }

  /** Closes the longest-idle connection (of `address`, if given); a busy one only when none is idle. */
  private evict(kind: 'address' | 'port', address?: string): void {
    let victim: net.Socket | undefined;
    let busy: net.Socket | undefined;
    for (const [socket, c] of this.tracked) {
      if (address !== undefined && c.address !== address) continue;
      if (c.inFlight === 0) {
        victim = socket;
        break;
      }
      busy ??= socket;
    }
    victim ??= busy;
    if (!victim) return;
    // Counted out now, not at its 'close': the next newcomer in this same tick must see the room.
    this.forget(victim);
    victim.destroy();
    this.evicted[kind]++;
  }

  private forget(socket: net.Socket): void {
    const c = this.tracked.get(socket);
    if (!c) return;
    this.tracked.delete(socket);
    const n = (this.perAddress.get(c.address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(c.address, n);
    else this.perAddress.delete(c.address);
  }

  /** A request began (+1) or was answered (-1) on socket: it becomes the most recently active. */
  private touch(socket: net.Socket, delta: number): void {
    const c = this.tracked.get(socket);
    if (!c) return;
    c.inFlight += delta;
    this.tracked.delete(socket);
    this.tracked.set(socket, c);
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    // Node took its own listeners off the socket: a reset peer must not become an uncaught error.
    socket.on('error', () => socket.destroy());
    const upgrade = this.opts.upgrade;
    if (upgrade && req.headers.upgrade?.toLowerCase() === 'websocket') {
      this.forget(socket);
      upgrade(req, socket, head);
      return;
    }
    // Node hands every upgrade request here once anyone listens for them: answer this one as the
    // HTTP/1.1 request it also is (`curl --http2 http://…/healthz` asks for h2c), then close.
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.once('finish', () => {
      res.detachSocket(socket);
      socket.end();
    });
    this.handle(req, res);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket;
    this.touch(socket, 1);
    res.once('close', () => this.touch(socket, -1));
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'application/json', '{"error":"method not allowed"}', { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/healthz':
        send(res, 200, 'application/json', '{"status":"ok"}');
        return;
      case '/readyz':
        void this.opts.readiness.run().then(
          (report) =>
            send(
              res,
              report.ready ? 200 : 503,
              'application/json',
              JSON.stringify({ status: !report.ready ? 'unavailable' : report.degraded.length > 0 ? 'degraded' : 'ready', ...report }),
            ),
          (err) => {
            this.opts.log.error({ err }, 'readiness run failed');
            send(res, 503, 'application/json', '{"status":"unavailable"}');
          },
        );
        return;
      case '/metrics':
        if (!this.authorized(req)) {
          this.unauthorized++;
          send(res, 401, 'application/json', '{"error":"unauthorized"}', { 'www-authenticate': 'Bearer realm="carrel metrics"' });
          return;
        }
        send(res, 200, PROMETHEUS_CONTENT_TYPE, this.opts.metrics.render((name, err) => this.opts.log.error({ err, metric: name }, 'metric collector failed')));
        return;
      default:
        if (path !== undefined && this.opts.site?.serve(req, res, path)) return;
        send(res, 404, 'application/json', '{"error":"not found","paths":["/healthz","/readyz","/metrics"]}');
    }
  }

  /** True without http.metricsToken, else for `Authorization: Bearer <that token>`. */
  private authorized(req: http.IncomingMessage): boolean {
    if (!this.tokenDigest) return true;
    // Node caps the whole head at 16 KB (maxHeaderSize), so this header is bounded too.
    const bearer = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
    return timingSafeEqual(digest(bearer?.[1] ?? ''), this.tokenDigest) && bearer !== null;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function send(res: http.ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
