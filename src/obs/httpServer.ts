// The health and metrics port (DESIGN §7, ports.http): GET /healthz (the process is alive),
// GET /readyz (200 when every required check passes — "degraded" naming optional ones that
// fail — else 503 saying what is down), and
// GET /metrics (Prometheus text). node:http, no framework: three fixed routes.
import http from 'node:http';
import type net from 'node:net';
import type { Logger } from './log.js';
import type { Readiness } from './health.js';
import { PROMETHEUS_CONTENT_TYPE, type MetricsRegistry } from './metrics.js';

export interface ObsHttpOptions {
  host: string;
  port: number;
  /** Drop a connection whose request head is not complete by then (http.headersTimeoutMs). */
  headersTimeoutMs: number;
  metrics: MetricsRegistry;
  readiness: Readiness;
  log: Logger;
}

// An operator's port: a handful of scrapers and probes, never a crowd.
const MAX_HTTP_CONNECTIONS = 64;

export class ObsHttpServer {
  private readonly server: http.Server;

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
    this.server.maxConnections = MAX_HTTP_CONNECTIONS;
    this.server.keepAliveTimeout = 5_000;
    this.server.on('error', (err) => opts.log.error({ err: err.message }, 'http listener error'));
    this.server.on('clientError', (_err, socket) => socket.destroy());
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

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
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
        send(res, 200, PROMETHEUS_CONTENT_TYPE, this.opts.metrics.render((name, err) => this.opts.log.error({ err, metric: name }, 'metric collector failed')));
        return;
      default:
        send(res, 404, 'application/json', '{"error":"not found","paths":["/healthz","/readyz","/metrics"]}');
    }
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
