// The sensor and subscriber ports' listeners: their limits, and what each accepted connection
// becomes (docs/protocol.md). The live half (realtime.ts) owns them and what they talk to.
import type { Config } from '../config/schema.js';
import type { Logger } from '../obs/log.js';
import { Listener } from '../net/listener.js';
import { ErrorCode } from '../errors.js';
import { encodeErrorFrame } from '../net/errorFrame.js';
import { Subscriber, type SubscriberHost } from '../pubsub/subscriber.js';
import { SensorSession, type SensorSink } from '../sensors/sensorSession.js';

/** The sensor port: each connection a SensorSession handing its readings to `sink`, kept in `sessions` while open. */
export function sensorListener(config: Readonly<Config>, log: Logger, sink: SensorSink, sessions: Set<SensorSession>): Listener {
  const limits = config.limits;
  return new Listener({
    name: 'sensor',
    host: config.host,
    port: config.ports.sensor,
    maxConnections: limits.maxConnections,
    maxPartialFrameBytes: limits.maxPartialFrameBytesPerPort,
    connection: {
      // Sensors send readings, not documents: a port-sized limit, not the RPC port's.
      maxFrameBytes: config.sensors.maxFrameBytes,
      maxJsonDepth: limits.maxJsonDepth,
      idleTimeoutMs: limits.idleTimeoutMs,
      partialFrameTimeoutMs: limits.partialFrameTimeoutMs,
      writeHighWaterBytes: limits.writeHighWaterBytes,
    },
    refusalFrame: (message) => encodeErrorFrame('sensor', { code: ErrorCode.RESOURCE_EXHAUSTED, message }),
    onConnection: (conn) => {
      const session = new SensorSession(
        conn,
        sink,
        {
          maxReadingsPerFrame: config.sensors.maxReadingsPerFrame,
          maxAgeMs: config.sensors.maxAgeMs,
          maxClockSkewMs: config.sensors.maxClockSkewMs,
          offlineAfterMs: config.sensors.offlineAfterMs,
          onClose: (s) => sessions.delete(s),
        },
        log,
      );
      sessions.add(session);
    },
    log,
  });
}

/** The subscriber port: each connection a Subscriber of `hub` (the hub, looking for added branches first). */
export function subscriberListener(config: Readonly<Config>, log: Logger, hub: SubscriberHost): Listener {
  const limits = config.limits;
  return new Listener({
    name: 'pubsub',
    host: config.host,
    port: config.ports.pubsub,
    maxConnections: limits.maxConnections,
    maxPartialFrameBytes: limits.maxPartialFrameBytesPerPort,
    connection: {
      // Subscribers send a subscribe and pings: a few KB at most.
      maxFrameBytes: config.pubsub.maxFrameBytes,
      maxJsonDepth: limits.maxJsonDepth,
      // Subscribers may never send a byte after subscribing (docs/protocol.md): no idle timeout.
      idleTimeoutMs: 0,
      partialFrameTimeoutMs: limits.partialFrameTimeoutMs,
      writeHighWaterBytes: config.pubsub.highWaterBytes,
    },
    refusalFrame: (message) => encodeErrorFrame('pubsub', { code: ErrorCode.RESOURCE_EXHAUSTED, message }),
    onConnection: (conn) => {
      new Subscriber(
        conn,
        hub,
        {
          queueCapacity: config.pubsub.queueCapacity,
          highWaterBytes: config.pubsub.highWaterBytes,
          maxDrops: config.pubsub.maxDrops,
          dropWindowMs: config.pubsub.dropWindowMs,
          slowConsumerLingerMs: config.pubsub.slowConsumerLingerMs,
        },
        log,
      );
    },
    log,
  });
}
