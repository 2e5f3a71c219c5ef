// The RPC port: its listener and the sessions on it (docs/architecture.md, "The path of a
// request", steps 1-3). The sessions are kept apart from the listener so that what counts them
// (readiness, server.stats, shutdown) can be built before the dispatcher the listener needs.
import type { Config } from '../config/schema.js';
import type { Logger } from '../obs/log.js';
import { Listener } from '../net/listener.js';
import { ErrorCode } from '../errors.js';
import { encodeErrorFrame } from '../net/errorFrame.js';
import type { Dispatcher } from './dispatch.js';
import { RpcSession } from './session.js';

/** The open RPC sessions: requests in flight, and waiting until there are none. */
export class RpcSessions {
  private readonly open = new Set<RpcSession>();
  private idleWaiters: Array<() => void> = [];

  get inFlight(): number {
    let n = 0;
    for (const s of this.open) n += s.inFlightCount;
    return n;
  }

  add(session: RpcSession): void {
    this.open.add(session);
  }

  closed(session: RpcSession): void {
    this.open.delete(session);
    this.notifyIdle();
  }

  /** Every session stops reading new requests; those in flight finish. */
  drain(): void {
    for (const s of this.open) s.drain();
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  notifyIdle(): void {
    if (this.idleWaiters.length === 0 || this.inFlight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

export interface RpcPortDeps {
  config: Readonly<Config>;
  log: Logger;
  dispatcher: Dispatcher;
  sessions: RpcSessions;
  /** A frame that could not be decoded (metrics). */
  onBadFrame: () => void;
}

export class RpcPort {
  readonly listener: Listener;
  readonly sessions: RpcSessions;

  constructor({ config, log, dispatcher, sessions, onBadFrame }: RpcPortDeps) {
    const limits = config.limits;
    this.sessions = sessions;
    this.listener = new Listener({
      name: 'rpc',
      host: config.host,
      port: config.ports.rpc,
      maxConnections: limits.maxConnections,
      maxPartialFrameBytes: limits.maxPartialFrameBytesPerPort,
      requestTimeoutMs: limits.requestTimeoutMs,
      connection: {
        maxFrameBytes: limits.maxFrameBytes,
        maxJsonDepth: limits.maxJsonDepth,
        idleTimeoutMs: limits.idleTimeoutMs,
        partialFrameTimeoutMs: limits.partialFrameTimeoutMs,
        writeHighWaterBytes: limits.writeHighWaterBytes,
      },
      refusalFrame: (message) => encodeErrorFrame('rpc', { code: ErrorCode.RESOURCE_EXHAUSTED, message }, null),
      onConnection: (conn) => {
        sessions.add(
          new RpcSession(conn, dispatcher, {
            maxInFlight: limits.maxInFlightPerConnection,
            requestTimeoutMs: limits.requestTimeoutMs,
            onIdle: () => sessions.notifyIdle(),
            onBadFrame,
            onClose: (s) => sessions.closed(s),
          }),
        );
      },
      log,
    });
  }
}
