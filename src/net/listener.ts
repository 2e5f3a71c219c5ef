// A TCP listener for one port: accepts sockets, wraps each in a Connection, refuses past
// limits.maxConnections with one error frame, keeps the port's budget of bytes held in
// unfinished frames (frameBudget.ts), and sweeps idle/partial-frame deadlines on one shared
// timer (cheaper than a timer per connection, and nothing to re-arm per read). Connections that
// reach the port's protocol another way (a WebSocket on the HTTP port, wsGateway.ts) are adopted
// under the same limits, deadlines and shutdown.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Connection, type ConnectionOptions } from './connection.js';
import { FrameBudget } from './frameBudget.js';
import type { Logger } from '../obs/log.js';

const LOG_EVICTIONS_EVERY_MS = 60_000;

export interface ListenerOptions {
  name: string;
  host: string;
  port: number;
  maxConnections: number;
  /** Bytes all of this port's connections together may hold in unfinished frames. */
  maxPartialFrameBytes: number;
  connection: ConnectionOptions;
  /**
   * This port's RESOURCE_EXHAUSTED error frame, sent before the listener closes a connection it
   * will not serve: one past maxConnections, or the largest holder when the budget is spent.
   */
  refusalFrame: (message: string) => Buffer;
  /** Per-request deadline of the sessions on this port, so the sweeper ticks often enough. */
  requestTimeoutMs?: number;
  onConnection: (conn: Connection) => void;
  log: Logger;
}

export class Listener {
  readonly connections = new Set<Connection>();
  private readonly server: net.Server;
  private sweeper: NodeJS.Timeout | undefined;
  private emptyWaiters: Array<() => void> = [];
  refusedCount = 0;
  acceptedCount = 0;
  /** Bytes held in unfinished frames by this port's connections, and who was evicted for it. */
  readonly partialFrames: FrameBudget<Connection>;
  private evictionsLogged = 0;
  private evictionsLoggedAtMs = 0;

  constructor(private readonly opts: ListenerOptions) {
    const evicted = (): Buffer =>
      opts.refusalFrame('the server holds too many unfinished frames; send each frame promptly and retry');
    this.partialFrames = new FrameBudget<Connection>(opts.maxPartialFrameBytes, (conn) => {
      conn.evict(evicted());
      this.logEvictions();
    });
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => opts.log.error({ port: opts.name, err: err.message }, 'listener error'));
  }

  async listen(): Promise<net.AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: this.opts.host, port: this.opts.port, backlog: 1024 }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const { idleTimeoutMs, partialFrameTimeoutMs } = this.opts.connection;
    const deadlines = [idleTimeoutMs, partialFrameTimeoutMs, this.opts.requestTimeoutMs ?? 0];
    const shortest = Math.min(...deadlines.filter((v) => v > 0), 4_000);
    const every = Math.max(25, Math.floor(shortest / 4));
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const conn of this.connections) conn.checkDeadlines(now);
    }, every);
    this.sweeper.unref();
    return this.server.address() as net.AddressInfo;
  }

  get address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  /** Largest frame a connection on this port may send (limits.maxFrameBytes or the port's own). */
  get maxFrameBytes(): number {
    return this.opts.connection.maxFrameBytes;
  }

  /**
   * Serves a connection that arrived another way (a WebSocket, src/net/wsSocket.ts) as if it had
   * been accepted here: it counts toward maxConnections, is swept, drained and closed with the
   * port's own. Refused, like a newcomer past maxConnections, while the port is not listening
   * (not yet started, or stopping).
   */
  adopt(socket: Duplex): void {
    if (!this.server.listening) this.refuse(socket, 'not accepting connections now (starting or shutting down); try again later');
    else this.accept(socket);
  }

  private accept(socket: Duplex): void {
    if (this.connections.size >= this.opts.maxConnections) {
      this.refusedCount++;
      this.refuse(socket, 'too many connections; try again later');
      return;
    }
    this.acceptedCount++;
    const conn = new Connection(socket, this.opts.connection, this.opts.log, this.partialFrames);
    this.connections.add(conn);
    socket.once('close', () => {
      this.connections.delete(conn);
      this.opts.log.debug({ port: this.opts.name, conn: conn.id, remote: conn.remote }, 'connection closed');
      if (this.connections.size === 0) this.notifyEmpty();
    });
    this.opts.log.debug({ port: this.opts.name, conn: conn.id, remote: conn.remote }, 'connection opened');
    this.opts.onConnection(conn);
  }

  private refuse(socket: Duplex, message: string): void {
    socket.on('error', () => socket.destroy());
    socket.end(this.opts.refusalFrame(message));
    setTimeout(() => socket.destroy(), 1_000).unref();
  }

  /** One warning when evictions start, then at most one a minute with the count since (not one per eviction). */
  private logEvictions(): void {
    const now = Date.now();
    if (now - this.evictionsLoggedAtMs < LOG_EVICTIONS_EVERY_MS) return;
    const budget = this.partialFrames;
    this.opts.log.warn(
      { port: this.opts.name, evicted: budget.evictions - this.evictionsLogged, budgetBytes: budget.maxBytes },
      'unfinished-frame budget spent: closing the connections holding the most (limits.maxPartialFrameBytesPerPort)',
    );
    this.evictionsLogged = budget.evictions;
    this.evictionsLoggedAtMs = now;
  }

  /** Stops accepting new connections; existing ones carry on (their deadlines still swept). */
  async stopAccepting(): Promise<void> {
    if (!this.server.listening) return;
    // close() stops accepting at once; its callback would wait for every open connection,
    // which the caller drains and disposes on its own schedule.
    this.server.close();
  }

  /** Flushes what each connection has queued, then closes it; resolves once all have closed. */
  closeAll(): Promise<void> {
    this.stopSweeping();
    for (const conn of this.connections) conn.close('shutdown');
    return this.connections.size === 0 ? Promise.resolve() : new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** Drops every connection at once, whatever is still unsent (the shutdown grace is spent). */
  destroyAll(): void {
    this.stopSweeping();
    for (const conn of this.connections) conn.dispose('shutdown');
  }

  private stopSweeping(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private notifyEmpty(): void {
    const waiters = this.emptyWaiters;
    this.emptyWaiters = [];
    for (const w of waiters) w();
  }
}
