// WebSockets on the HTTP port (docs/protocol.md, "WebSocket transports"; docs/http.md,
// "WebSockets"): an upgrade to a known path, from an allowed Origin, becomes a WsSocket that the
// path's own port adopts, so /ws/rpc is served by the RPC port's listener and sessions and
// /ws/live by the subscriber port's, under their limits (connections, message size, deadlines,
// unfinished-frame budget) and their shutdown. The HTTP port only carries the handshake.
import type http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { WebSocketServer } from 'ws';
import type { Logger } from '../obs/log.js';
import type { MetricsRegistry } from '../obs/metrics.js';
import type { Listener } from './listener.js';
import { WsSocket } from './wsSocket.js';

/**
 * Pieces one message may arrive in: reads of the socket ws keeps for it, or WebSocket fragments.
 * A browser sends a message as one frame, read in a few pieces; a peer dribbling one byte per
 * read would otherwise make ws keep 262,144 of them (its default), each costing far more than
 * its byte. Past this the connection is closed 1008.
 */
const MAX_PIECES = 1024;

export interface WsGatewayOptions {
  /** Each path and the port whose protocol it speaks, e.g. '/ws/rpc' → the RPC port's listener. */
  routes: Readonly<Record<string, Listener>>;
  /** http.allowedOrigins: page origins allowed besides the request's own host. */
  allowedOrigins: readonly string[];
  log: Logger;
}

interface Route {
  listener: Listener;
  wss: WebSocketServer;
  open: number;
}

export class WsGateway {
  private readonly routes = new Map<string, Route>();
  private readonly allowed: ReadonlySet<string>;
  /** Upgrades refused before the handshake: an unknown path, or an Origin not allowed. */
  readonly refused = { path: 0, origin: 0 };

  constructor(private readonly opts: WsGatewayOptions) {
    for (const [path, listener] of Object.entries(opts.routes)) {
      const wss = new WebSocketServer({
        noServer: true,
        clientTracking: false,
        // Message size as on the TCP port: larger is closed 1009 before it is buffered whole.
        maxPayload: listener.maxFrameBytes,
        maxBufferedChunks: MAX_PIECES,
        maxFragments: MAX_PIECES,
        // Messages are small JSON; compression would cost CPU and memory per connection, and
        // inflating is where a small message can become a large one.
        perMessageDeflate: false,
      });
      this.routes.set(path, { listener, wss, open: 0 });
    }
    this.allowed = new Set(opts.allowedOrigins.map((o) => new URL(o).origin));
  }

  /** The paths served, for the HTTP port's 404. */
  get paths(): string[] {
    return [...this.routes.keys()];
  }

  /** The HTTP port's handler of a WebSocket upgrade request (src/obs/httpServer.ts). */
  readonly upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const route = this.routes.get(path);
    if (!route) {
      this.refused.path++;
      refuseHandshake(socket, 404, { error: 'not found', paths: this.paths });
      return;
    }
    if (!originAllowed(req.headers.origin, req.headers.host, this.allowed)) {
      this.refused.origin++;
      this.opts.log.debug({ origin: req.headers.origin?.slice(0, 200), path }, 'websocket origin refused');
      refuseHandshake(socket, 403, { error: 'origin not allowed (http.allowedOrigins)' });
      return;
    }
    route.wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = new WsSocket(ws, socket as net.Socket);
      route.open++;
      stream.once('close', () => route.open--);
      route.listener.adopt(stream);
    });
  };

  /** carrel_ws_connections_open{path} and carrel_ws_refused_total{reason}. */
  registerMetrics(registry: MetricsRegistry): void {
    registry.gauge('carrel_ws_connections_open', 'WebSocket connections open on the HTTP port, by path (also counted in their port\'s carrel_connections_open).', () =>
      [...this.routes].map(([path, r]) => ({ labels: { path }, value: r.open })));
    registry.gauge('carrel_ws_refused_total', 'WebSocket upgrades refused before the handshake, by reason: path (unknown), origin (not allowed by http.allowedOrigins).', () => [
      { labels: { reason: 'path' }, value: this.refused.path },
      { labels: { reason: 'origin' }, value: this.refused.origin },
    ], 'counter');
  }
}

/**
 * The Origin rule (docs/http.md, "WebSockets"): a request without an Origin is not from a browser
 * page and is let in (a browser always sends one); one from a page is let in when the page came
 * from the host the request was made to (a page carrel serves itself), or from an origin listed
 * in http.allowedOrigins. Anything else, "null" included, is refused.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  let page: URL;
  try {
    page = new URL(origin);
  } catch {
    return false;
  }
  if (page.protocol !== 'http:' && page.protocol !== 'https:') return false;
  if (allowed.has(page.origin)) return true;
  if (host === undefined) return false;
  try {
    // The Host header read with the page's scheme, so a default port compares as the page's does.
    return new URL(`${page.protocol}//${host}`).host === page.host;
  } catch {
    return false;
  }
}

function refuseHandshake(socket: Duplex, status: number, body: object): void {
  const text = JSON.stringify(body);
  socket.on('error', () => socket.destroy());
  socket.once('finish', () => socket.destroy());
  // A peer that does not read the answer cannot keep the socket.
  setTimeout(() => socket.destroy(), 1_000).unref();
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}
