// The live half's metrics: subscribers and their queues, sensor readings and refusals, the
// occupancy history's writes, the bus.
// Registered by the composition root; read on every scrape of /metrics and by server.stats.
import type { Observability } from '../obs/observability.js';
import type { Realtime } from '../realtime.js';
import type { Hub } from '../pubsub/hub.js';
import type { SensorKeyring } from '../sensors/sensorKeys.js';
import type { SensorCoalescer } from '../sensors/coalescer.js';

/** The live half's figures on /metrics and in server.stats (docs/operations.md, "Metrics"). */
export function registerLiveMetrics(
  obs: Observability,
  { realtime, hub, keyring, coalescer }: { realtime: Realtime; hub: Hub; keyring: SensorKeyring; coalescer: SensorCoalescer },
): void {
  const r = obs.registry;
  obs.addListener('sensor', realtime.sensorListener);
  obs.addListener('pubsub', realtime.pubsubListener);
  r.gauge('carrel_pubsub_subscribers', 'subscribed connections', () => hub.stats.subscribers);
  r.gauge('carrel_pubsub_queued_bytes', 'bytes waiting for subscribers: ring buffers plus unsent socket bytes', () => hub.queuedBytes());
  r.gauge('carrel_pubsub_queued_events', 'events waiting in subscriber queues (rings behind congested sockets)', () => hub.queuedEvents().total);
  r.gauge('carrel_pubsub_queue_depth_max', 'events waiting in the deepest subscriber queue', () => hub.queuedEvents().deepest);
  r.gauge('carrel_pubsub_events_total', 'seat events published to subscribers', () => hub.stats.eventsPublished, 'counter');
  r.add({
    name: 'carrel_pubsub_delivery_seconds',
    help: 'from a seat event published here (a sensor reading read) to its write to each subscriber socket',
    type: 'histogram',
    samples: () => hub.deliveryLatency.samples(),
  });
  r.gauge('carrel_pubsub_delivery_p99_seconds', 'p99 of carrel_pubsub_delivery_seconds since start (its bucket bound)', () => hub.deliveryLatency.quantile(0.99));
  r.gauge('carrel_pubsub_dropped_total', 'events dropped from full subscriber queues (drop-oldest)', () => hub.stats.drops, 'counter');
  r.gauge('carrel_pubsub_slow_consumers_total', 'subscribers cut off with SLOW_CONSUMER', () => hub.stats.slowConsumers, 'counter');
  r.gauge('carrel_sensor_readings_total', 'sensor readings applied (rate() gives readings per second)', () => realtime.counters.readings, 'counter');
  r.gauge('carrel_sensor_hello_refused_total', 'sensor hellos refused: unknownKey (wrong or revoked key), throttled (address locked after wrong keys)', () => [
    { labels: { reason: 'unknownKey' }, value: keyring.refused.unknownKey },
    { labels: { reason: 'throttled' }, value: keyring.refused.throttled },
  ], 'counter');
  r.gauge('carrel_sensor_stale_readings_total', 'stale or repeated sensor readings ignored', () => realtime.counters.staleReadings, 'counter');
  r.gauge(
    'carrel_sensor_readings_refused_total',
    'sensor readings refused, by the per-reading code in the ack (docs/sensors.md)',
    () => Object.entries(realtime.refusedReadings).map(([reason, value]) => ({ labels: { reason }, value })),
    'counter',
  );
  r.gauge('carrel_sensor_revoked_closed_total', 'sensor connections closed because their key was revoked', () => realtime.revokedKeys.closed, 'counter');
  const history = coalescer.history;
  r.gauge('carrel_history_changes_total', 'seat presence changes written to the occupancy history (docs/reports.md)', () => history?.stats.changes ?? 0, 'counter');
  r.gauge('carrel_history_write_failures_total', 'occupancy history writes that failed (kept for the next flush)', () => history?.stats.failures ?? 0, 'counter');
  r.gauge('carrel_history_pending_seats', 'seats with presence changes waiting for the next flush', () => history?.pendingCount ?? 0);
  r.gauge('carrel_bus_connected', '1 while the event bus reaches the other instances', () => (realtime.busStats().connected ? 1 : 0));
  r.gauge('carrel_sensor_readings_per_second', 'sensor readings applied per second, over the last 10 s', () => realtime.readingRate.perSecond());
  r.gauge('carrel_bus_queued_events', 'events waiting for the bus to come back, not yet sent to the other instances', () => realtime.busStats().queued);
  r.gauge('carrel_bus_lag_seconds', 'bus lag of the latest seat event delivered: from its publish on any instance to its delivery here', () => realtime.busLag.lastMs / 1000);
  r.add({
    name: 'carrel_bus_delivery_lag_seconds',
    help: 'bus lag of seat events delivered here, from their publish on any instance (catch-up after an outage not counted)',
    type: 'histogram',
    samples: () => realtime.busLag.histogram.samples(),
  });
  r.gauge('carrel_bus_dropped_total', 'events dropped while the bus was away (redis.offlineQueueMax)', () => realtime.busStats().dropped, 'counter');
}
