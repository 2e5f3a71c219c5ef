// The real-time half of the composition root: wires the live seat model, the sensor and
// subscriber ports, the event bus, the subscriber hub and the sensor-state coalescer together.
// Its parts live in src/live/ (discovery of added seats, sensor-driven transitions, bus lag, the
// live metrics); what is left here is the wiring and the path of a reading, one named method a
// step (docs/architecture.md, "The path of a sensor reading"):
//
//   SensorSession → onReading → LiveSeats.applyReading ─(hook)→ publishChange → EventBus.publishSeat
//                                      └→ SensorCoalescer.record (batched seat_live upserts)
//   EventBus (seq per branch) ─(handler)→ deliverSeat → LiveSeats.applyRemote + Hub.publish → sockets
//   CoreEventFanout (after commit) → onCoreEvent → applyFact (+ EventBus.publishFact to the others)
//
// No step between a sensor frame and a subscriber's socket touches the database (docs/architecture.md).
import type pg from 'pg';
import type { Config } from './config/schema.js';
import type { Logger } from './obs/log.js';
import type { Clock } from './core/clock.js';
import type { CoreEvent, CoreEventFanout } from './core/events.js';
import { LiveSeats, type SeatChange, type SeatEvent } from './core/liveSeats.js';
import type { LiveView } from './core/liveView.js';
import type { EventBus } from './bus/bus.js';
import { readDeploymentId } from './db/deployment.js';
import { Hub, type TokenVerifier } from './pubsub/hub.js';
import { encodeErrorFrame } from './net/errorFrame.js';
import { SensorCoalescer } from './sensors/coalescer.js';
import { SensorKeyring } from './sensors/sensorKeys.js';
import { RevokedKeyWatch } from './sensors/keyWatch.js';
import type { SensorSession, SensorSink } from './sensors/sensorSession.js';
import type { ReadingCode } from './wire/types.js';
import type { Listener } from './net/listener.js';
import { ErrorCode } from './errors.js';
import { RateMeter } from './obs/rate.js';
import { BusLag } from './live/busLag.js';
import { LiveDiscovery } from './live/discovery.js';
import { SensorTransitionRunner, type SensorTransitions } from './live/sensorTransitions.js';
import { sensorListener, subscriberListener } from './live/ports.js';

export type { SensorTransitions } from './live/sensorTransitions.js';

export interface RealtimeDeps {
  config: Readonly<Config>;
  log: Logger;
  db: pg.Pool;
  clock: Clock;
  tokens: TokenVerifier;
  coreEvents: CoreEventFanout;
  bus: EventBus;
  instanceId: string;
  /** Run the clock-driven tick on a real timer (off when tests drive a FakeClock with tick()). */
  autoTick: boolean;
  /** The live state's owner for everything outside this half: the model is attached to it once loaded. */
  live: LiveView;
  /** The booking core's sensor transitions: the same guarded UPDATEs as the RPC methods. */
  reservations: SensorTransitions;
  /**
   * Told when a branch's seats may read differently: a booking or seat change made on another
   * instance, seats the model found added. The listing caches forget that branch.
   */
  onBranchChanged?: (branchId: number) => void;
  /** Told every change committed on another instance (the booking core forgets what it frees). */
  onRemoteFact?: (ev: CoreEvent) => void;
}

export class Realtime {
  readonly hub: Hub;
  readonly coalescer: SensorCoalescer;
  readonly sensorListener: Listener;
  readonly pubsubListener: Listener;
  readonly sensorSessions = new Set<SensorSession>();
  /** Sensor keys, and the per-address throttle on wrong ones. */
  readonly keyring: SensorKeyring;
  /** Closes sensor connections whose key was revoked (sweep() after a revoke here; on a timer for the others'). */
  readonly revokedKeys: RevokedKeyWatch;
  /** Branches and seats added to the database since start. */
  readonly discovery: LiveDiscovery;
  /** Check-ins and releases the sensors cause, run by the booking core. */
  readonly transitions: SensorTransitionRunner;
  /** From a seat change handed to the bus on any instance to its delivery here. */
  readonly busLag = new BusLag();
  /** Readings refused by the sensor sessions, by per-reading code (docs/sensors.md). */
  readonly refusedReadings: Partial<Record<ReadingCode, number>> = {};
  /** Applied sensor readings per second over the last 10 s. */
  readonly readingRate: RateMeter;
  private readonly readings = { readings: 0, staleReadings: 0, unknownSeatReadings: 0 };
  private model: LiveSeats | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private summaryTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly deps: RealtimeDeps) {
    const { config, log, db } = deps;
    this.readingRate = new RateMeter(10, () => deps.clock.now());
    this.transitions = new SensorTransitionRunner(deps.reservations, log);
    this.coalescer = new SensorCoalescer(db, { flushEveryMs: config.sensors.flushEveryMs }, log);
    this.keyring = new SensorKeyring({
      db,
      keys: config.sensors.keys,
      refuse: config.sensors.refuseKeys,
      throttle: config.sensors.helloThrottle,
      log,
      now: () => deps.clock.now(),
    });
    // The hub asks for a look when a subscribe names an unknown branch, and the look hands what
    // it found to the hub: the one cycle here, closed by the discovery being built in the next
    // statement, before anything can subscribe.
    this.hub = new Hub(
      { retainEvents: config.pubsub.retainEvents },
      { tokens: deps.tokens, history: deps.bus, now: () => deps.clock.now(), log, discover: () => this.discovery.discover() },
    );
    this.discovery = new LiveDiscovery({
      db,
      clock: deps.clock,
      bus: deps.bus,
      log,
      minIntervalMs: config.live.refreshMinIntervalMs,
      live: deps.live,
      hub: this.hub,
      onBranchChanged: deps.onBranchChanged,
    });
    const sink: SensorSink = {
      now: () => deps.clock.now(),
      reading: (seatId, occupied, atMs, sensorId, scopeBranchId) => this.onReading(seatId, occupied, atMs, sensorId, scopeBranchId),
      heartbeat: (seatIds) => this.onHeartbeat(seatIds),
      checkKey: (key, remoteAddress, sensorId) => this.keyring.check(key, remoteAddress, sensorId),
      refused: (code, n) => void (this.refusedReadings[code] = (this.refusedReadings[code] ?? 0) + n),
    };
    // A branch count the model cannot give (a branch or seats added since start) starts a look.
    deps.live.onMiss(() => void this.discovery.discover());
    this.revokedKeys = new RevokedKeyWatch(this.sensorSessions, this.keyring, { everyMs: config.sensors.keyRecheckMs }, log);
    this.sensorListener = sensorListener(config, log, sink, this.sensorSessions);
    this.pubsubListener = subscriberListener(config, log, this.hub);
  }

  /** Loads the live model, joins the bus and opens both ports. */
  async start(): Promise<{ sensor: number; pubsub: number }> {
    const { config, db, clock, bus, log } = this.deps;
    // Listen before loading so no committed change falls between the load and the subscription.
    const early: CoreEvent[] = [];
    this.unsubscribe = this.deps.coreEvents.on((ev) => (this.model ? this.onCoreEvent(ev) : early.push(ev)));
    const [data, deploymentId] = await Promise.all([LiveSeats.loadData(db, clock.now()), readDeploymentId(db)]);
    const model = new LiveSeats(
      data,
      clock.now(),
      {
        instanceId: this.deps.instanceId,
        offlineAfterMs: config.sensors.offlineAfterMs,
        releaseAfterMs: config.sensors.releaseAfterMs,
        autoCheckIn: config.sensors.autoCheckIn,
        autoRelease: config.sensors.autoRelease,
        checkInWindow: {
          opensBeforeMs: config.rules.checkInOpensBeforeMinutes * 60_000,
          graceMs: config.rules.checkInGraceMinutes * 60_000,
        },
      },
      {
        onChange: (change) => this.publishChange(change),
        onCheckInDue: (seatId, atMs) => this.transitions.checkIn(seatId, atMs),
        onReleaseDue: (seatId, atMs) => this.transitions.release(seatId, atMs),
      },
    );
    // The bus keeps this database's state only (docs/redis.md): its id is part of every Redis key.
    const seqs = await bus.start(
      [...model.branches.keys()],
      {
        seat: (ev, quiet) => this.deliverSeat(ev, quiet),
        fact: (ev) => this.applyRemoteFact(ev),
        resync: (branchId, seq, published) => this.hub.resync(branchId, seq, published, bus.seqEpoch),
        ownStates: () => model.ownStates(),
        reconnected: () => this.transitions.track(this.reload()),
      },
      deploymentId,
    );
    for (const b of model.branches.values()) this.hub.addBranch(b.id, b.name, seqs.get(b.id) ?? 0, model.seatsOf(b.id), bus.seqEpoch);
    this.model = model;
    this.deps.live.attach(model);
    for (const ev of early) this.onCoreEvent(ev);
    this.coalescer.start();
    this.revokedKeys.start();
    this.summaryTimer = setInterval(() => this.hub.summaries(), config.pubsub.summaryEveryMs);
    this.summaryTimer.unref();
    if (this.deps.autoTick) this.armTick();
    if (config.live.refreshEveryMs > 0) {
      this.refreshTimer = setInterval(() => void this.discovery.refresh(), config.live.refreshEveryMs);
      this.refreshTimer.unref();
    }
    log.debug({ seats: model.seatCount, branches: model.branches.size, bus: bus.kind }, 'live seat model loaded');
    const [sensor, pubsub] = await Promise.all([this.sensorListener.listen(), this.pubsubListener.listen()]);
    return { sensor: sensor.port, pubsub: pubsub.port };
  }

  /** The bus's health and counters (connected, queued while Redis is away, drops). */
  busStats() {
    return this.deps.bus.stats();
  }

  get live(): LiveSeats {
    if (!this.model) throw new Error('the live model is not loaded yet');
    return this.model;
  }

  /** Readings applied, stale and for unknown seats; sensor check-ins and releases; looks for added seats. */
  get counters() {
    return { ...this.readings, ...this.transitions.counters, refreshes: this.discovery.looks };
  }

  /** A look for branches and seats added since start, on demand (rate-limited; tests). */
  discover(): Promise<void> {
    return this.discovery.discover();
  }

  /** A look for branches and seats added since start, now (tests; the timer uses the same). */
  refresh(): Promise<void> {
    return this.discovery.refresh();
  }

  /** Fires what the clock has made due (booking boundaries, silent sensors, releases). */
  tick(nowMs: number = this.deps.clock.now()): void {
    this.model?.tick(nowMs);
  }

  /** Resolves when the sensor-driven check-ins/releases started so far have finished. */
  settled(): Promise<void> {
    return this.transitions.settled();
  }

  /** Graceful stop, part 1: no new sensors or subscribers. */
  async stopAccepting(): Promise<void> {
    await Promise.all([this.sensorListener.stopAccepting(), this.pubsubListener.stopAccepting()]);
  }

  /** Graceful stop, part 2: flush sensor state, tell subscribers, leave the bus. */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.stopAccepting();
    this.unsubscribe?.();
    this.revokedKeys.stop();
    if (this.tickTimer) clearTimeout(this.tickTimer);
    if (this.summaryTimer) clearInterval(this.summaryTimer);
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    await this.discovery.stop();
    void this.sensorListener.closeAll();
    await this.settled();
    await this.coalescer.stop();
    this.hub.closeAll(encodeErrorFrame('pubsub', { code: ErrorCode.UNAVAILABLE, message: 'server shutting down' }));
    void this.pubsubListener.closeAll();
    await this.deps.bus.close();
  }

  // --- the path of a reading, in order ---------------------------------------------------

  /** A sensor's reading, checked by its session: into the model, and to seat_live when applied. */
  private onReading(seatId: number, occupied: boolean, atMs: number, sensorId: string, scopeBranchId: number | null) {
    const model = this.model;
    if (!model) return 'unknownSeat' as const;
    // To the microsecond: two instances that receive readings of one seat within a millisecond
    // must still agree which came last (docs/sensors.md).
    const receivedAtMs = this.deps.clock.preciseNow();
    const outcome = model.applyReading(seatId, occupied, atMs, receivedAtMs, sensorId, scopeBranchId);
    if (outcome === 'applied') {
      this.readings.readings++;
      this.readingRate.add();
      this.coalescer.record(seatId, occupied, atMs, receivedAtMs, sensorId);
    } else if (outcome === 'stale') this.readings.staleReadings++;
    else if (outcome === 'unknownSeat') {
      this.readings.unknownSeatReadings++;
      // Perhaps a seat added since start; the sensor's next reading for it applies once found.
      void this.discovery.discover();
    }
    return outcome;
  }

  private onHeartbeat(seatIds: Iterable<number>): void {
    const now = this.deps.clock.now();
    for (const id of seatIds) this.model?.touch(id, now);
  }

  /** The model changed a seat's state or flags (a reading, a booking, the clock): to the bus. */
  private publishChange(change: SeatChange): void {
    this.deps.live.changed(change.branchId);
    this.deps.bus.publishSeat(change);
  }

  /** A numbered seat event from the bus (this instance's or another's): the model, then subscribers. */
  private deliverSeat(ev: SeatEvent, quiet: boolean): void {
    if (!quiet && ev.publishedAtMs !== undefined) this.busLag.observe(ev.publishedAtMs);
    this.model?.applyRemote(ev, this.deps.clock.now());
    this.deps.live.changed(ev.branchId);
    if (quiet) this.hub.applyQuiet(ev);
    else this.hub.publish(ev);
  }

  // --- committed changes --------------------------------------------------------------------

  /** A change committed here: into the model, and to the other instances. */
  private onCoreEvent(ev: CoreEvent): void {
    this.applyFact(ev);
    this.deps.bus.publishFact(ev);
  }

  /** A change committed on another instance: into the model; this instance's listings forget the branch. */
  private applyRemoteFact(ev: CoreEvent): void {
    this.applyFact(ev);
    this.deps.onRemoteFact?.(ev);
    if (ev.type === 'reservation') this.deps.onBranchChanged?.(ev.reservation.branchId);
    else if (ev.type === 'seatStatus') this.deps.onBranchChanged?.(ev.branchId);
  }

  private applyFact(ev: CoreEvent): void {
    if (ev.type === 'personal') return this.hub.personal(ev);
    const model = this.model;
    if (!model) return;
    this.discovery.holdIfUnknown(ev, model);
    model.applyCoreEvent(ev, this.deps.clock.now());
  }

  /** After a bus outage: bookings and seat status from the database, the truth. */
  private async reload(): Promise<void> {
    const data = await LiveSeats.loadData(this.deps.db, this.deps.clock.now());
    this.model?.reload(data, this.deps.clock.now());
    this.deps.live.changedAll();
  }

  private armTick(): void {
    if (this.stopped) return;
    const next = this.model?.nextDeadlineMs ?? Infinity;
    // Re-check at least every second: a deadline that moves earlier (a new reading) is picked up.
    const delay = Math.max(5, Math.min(1_000, next - this.deps.clock.now()));
    this.tickTimer = setTimeout(() => {
      this.tick();
      this.armTick();
    }, delay);
    this.tickTimer.unref();
  }
}
