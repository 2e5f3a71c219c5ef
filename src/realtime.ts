// The real-time half of the composition root: wires the live seat model, the sensor and
// subscriber ports, the event bus, the subscriber hub and the sensor-state coalescer together.
//
//   sensor frame → SensorSession → LiveSeats.applyReading → onChange → bus.publishSeat
//                                        └→ coalescer (batched seat_live upserts)
//   bus (seq per branch) → LiveSeats.applyRemote + Hub.publish → every subscriber's socket
//   coreEvents (after commit) → LiveSeats.applyCoreEvent (+ bus.publishFact to other instances)
//
// No step between a sensor frame and a subscriber's socket touches the database (DESIGN §4, §5).
import type pg from 'pg';
import type { Config } from './config/schema.js';
import type { Logger } from './obs/log.js';
import type { Clock } from './core/clock.js';
import type { CoreEvent, CoreEventFanout } from './core/events.js';
import { LiveSeats, type SeatEvent } from './core/liveSeats.js';
import type { ReservationFact } from './core/events.js';
import type { EventBus } from './bus/bus.js';
import { readDeploymentId } from './db/deployment.js';
import { Hub, type TokenVerifier } from './pubsub/hub.js';
import { Subscriber, pubsubError } from './pubsub/subscriber.js';
import { SensorCoalescer } from './sensors/coalescer.js';
import { SensorKeyring } from './sensors/sensorKeys.js';
import { RevokedKeyWatch } from './sensors/keyWatch.js';
import { SensorSession, sensorError, type ReadingCode, type SensorSink } from './sensors/sensorSession.js';
import { Listener } from './net/listener.js';
import { ErrorCode } from './errors.js';
import { Histogram } from './obs/metrics.js';
import { RateMeter } from './obs/rate.js';

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
  /** The booking core's sensor transitions: the same guarded UPDATEs as the RPC methods. */
  reservations: SensorTransitions;
  /**
   * Told when a branch's seats may read differently: a booking or seat change made on another
   * instance, seats the model found added. The listing caches forget that branch.
   */
  onBranchChanged?: (branchId: number) => void;
}

export interface SensorTransitions {
  checkInBySensor(seatId: number, atMs: number): Promise<ReservationFact | null>;
  releaseBySensor(seatId: number, atMs: number): Promise<ReservationFact | null>;
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
  private model: LiveSeats | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private summaryTimer: NodeJS.Timeout | undefined;
  private readonly transitions = new Set<Promise<unknown>>();
  private unsubscribe: (() => void) | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** The look for branches and seats added since start, while it runs; and when the last one ended. */
  private refreshing: Promise<void> | undefined;
  private lastRefreshMs = -Infinity;
  /** Core events about seats the model does not know yet, kept while a refresh may be adding them. */
  private heldEvents: CoreEvent[] = [];
  private stopped = false;
  readonly counters = { readings: 0, staleReadings: 0, unknownSeatReadings: 0, autoCheckIns: 0, autoReleases: 0, refreshes: 0 };
  /** Readings refused by the sensor sessions, by per-reading code (docs/sensors.md). */
  readonly refusedReadings: Partial<Record<ReadingCode, number>> = {};
  /** Applied sensor readings per second over the last 10 s. */
  readonly readingRate: RateMeter;
  /**
   * Bus lag: from a seat change being handed to the bus (on whichever instance) to its delivery
   * here, in seconds; and that of the latest delivery. With Redis it is the round trip through the
   * stream; in process it is ~0. Catch-up after an outage is not counted.
   */
  readonly busLag = new Histogram([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
  lastBusLagMs = 0;

  constructor(private readonly deps: RealtimeDeps) {
    const { config, log, db } = deps;
    this.readingRate = new RateMeter(10, () => deps.clock.now());
    this.coalescer = new SensorCoalescer(db, { flushEveryMs: config.sensors.flushEveryMs }, log);
    this.keyring = new SensorKeyring({
      db,
      keys: config.sensors.keys,
      refuse: config.sensors.refuseKeys,
      throttle: config.sensors.helloThrottle,
      log,
      now: () => deps.clock.now(),
    });
    this.hub = new Hub(
      { retainEvents: config.pubsub.retainEvents },
      { tokens: deps.tokens, history: deps.bus, now: () => deps.clock.now(), log, discover: () => this.discover() },
    );
    const limits = config.limits;
    const sink: SensorSink = {
      now: () => deps.clock.now(),
      reading: (seatId, occupied, atMs, sensorId, scopeBranchId) => this.reading(seatId, occupied, atMs, sensorId, scopeBranchId),
      heartbeat: (seatIds) => {
        const now = deps.clock.now();
        for (const id of seatIds) this.model?.touch(id, now);
      },
      checkKey: (key, remoteAddress, sensorId) => this.keyring.check(key, remoteAddress, sensorId),
      refused: (code, n) => void (this.refusedReadings[code] = (this.refusedReadings[code] ?? 0) + n),
    };
    this.revokedKeys = new RevokedKeyWatch(this.sensorSessions, this.keyring, { everyMs: config.sensors.keyRecheckMs }, log);
    this.sensorListener = new Listener({
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
      refusalFrame: (message) => sensorError(ErrorCode.RESOURCE_EXHAUSTED, message),
      onConnection: (conn) => {
        const session = new SensorSession(
          conn,
          sink,
          {
            maxReadingsPerFrame: config.sensors.maxReadingsPerFrame,
            maxAgeMs: config.sensors.maxAgeMs,
            maxClockSkewMs: config.sensors.maxClockSkewMs,
            offlineAfterMs: config.sensors.offlineAfterMs,
            onClose: (s) => this.sensorSessions.delete(s),
          },
          log,
        );
        this.sensorSessions.add(session);
      },
      log,
    });
    this.pubsubListener = new Listener({
      name: 'pubsub',
      host: config.host,
      port: config.ports.pubsub,
      maxConnections: limits.maxConnections,
      maxPartialFrameBytes: limits.maxPartialFrameBytesPerPort,
      connection: {
        // Subscribers send a subscribe and pings: a few KB at most.
        maxFrameBytes: config.pubsub.maxFrameBytes,
        maxJsonDepth: limits.maxJsonDepth,
        // Subscribers may never send a byte after subscribing (DESIGN §5): no idle timeout.
        idleTimeoutMs: 0,
        partialFrameTimeoutMs: limits.partialFrameTimeoutMs,
        writeHighWaterBytes: config.pubsub.highWaterBytes,
      },
      refusalFrame: (message) => pubsubError(ErrorCode.RESOURCE_EXHAUSTED, message),
      onConnection: (conn) => {
        new Subscriber(
          conn,
          this.hub,
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
        onChange: (change) => bus.publishSeat(change),
        onCheckInDue: (seatId, atMs) => this.track(this.autoCheckIn(seatId, atMs)),
        onReleaseDue: (seatId, atMs) => this.track(this.autoRelease(seatId, atMs)),
      },
    );
    // The bus keeps this database's state only (docs/redis.md): its id is part of every Redis key.
    const seqs = await bus.start(
      [...model.branches.keys()],
      {
        seat: (ev, quiet) => this.onBusSeat(ev, quiet),
        fact: (ev) => this.onRemoteFact(ev),
        resync: (branchId, seq, published) => this.hub.resync(branchId, seq, published, bus.seqEpoch),
        ownStates: () => model.ownStates(),
        reconnected: () => this.track(this.reload()),
      },
      deploymentId,
    );
    for (const b of model.branches.values()) this.hub.addBranch(b.id, b.name, seqs.get(b.id) ?? 0, model.seatsOf(b.id), bus.seqEpoch);
    this.model = model;
    for (const ev of early) this.onCoreEvent(ev);
    this.coalescer.start();
    this.revokedKeys.start();
    this.summaryTimer = setInterval(() => this.hub.summaries(), config.pubsub.summaryEveryMs);
    this.summaryTimer.unref();
    if (this.deps.autoTick) this.armTick();
    if (config.live.refreshEveryMs > 0) {
      this.refreshTimer = setInterval(() => void this.refresh(), config.live.refreshEveryMs);
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

  /**
   * A branch's seats counted by live state (sensors included), once the model is loaded and
   * knows the branch with as many seats as the database (`sqlTotal`); otherwise undefined, so the
   * caller uses its SQL counts, and the model looks for what was added (rate-limited).
   */
  liveCounts(branchId: number, sqlTotal?: number): { total: number; free: number; reserved: number; occupied: number; unavailable: number } | undefined {
    const model = this.model;
    if (!model) return undefined;
    const seats = model.seatsOf(branchId);
    if (!model.branches.has(branchId) || (sqlTotal !== undefined && sqlTotal !== seats.length)) {
      void this.discover();
      return undefined;
    }
    const counts = { total: seats.length, free: 0, reserved: 0, occupied: 0, unavailable: 0 };
    for (const seat of seats) counts[seat.state]++;
    return counts;
  }

  get live(): LiveSeats {
    if (!this.model) throw new Error('the live model is not loaded yet');
    return this.model;
  }

  /**
   * Looks for branches and seats added to the database since start, on demand (a subscribe naming
   * an unknown branch, a reading for an unknown seat, branch counts that disagree): at most once
   * per live.refreshMinIntervalMs, sharing a look already running. Never rejects.
   */
  discover(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (Date.now() - this.lastRefreshMs < this.deps.config.live.refreshMinIntervalMs) return Promise.resolve();
    return this.refresh();
  }

  /** The same look, now (every live.refreshEveryMs, and for tests). Never rejects. */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.counters.refreshes++;
    this.refreshing = this.addNew()
      .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'could not look for new branches and seats'))
      .finally(() => {
        this.refreshing = undefined;
        this.lastRefreshMs = Date.now();
        this.heldEvents = [];
      });
    return this.refreshing;
  }

  private async addNew(): Promise<void> {
    const { db, clock, bus, log } = this.deps;
    const model = this.model;
    if (!model || this.stopped) return;
    const data = await LiveSeats.loadAdded(db, clock.now(), model);
    if (!data || this.stopped) return;
    const newBranches = data.branches.map((b) => b.id);
    // The bus first: from here on it delivers their events, and the lines below run in the same
    // turn, so none can arrive before the model and the hub know the branch.
    const seqs = newBranches.length > 0 ? await bus.addBranches(newBranches) : new Map<number, number>();
    if (this.stopped) return;
    const now = clock.now();
    const touched = model.add(data, now);
    // Bookings committed between the load and now, for the seats just added.
    for (const ev of this.heldEvents) model.applyCoreEvent(ev, now);
    for (const id of touched) {
      const b = model.branches.get(id)!;
      this.hub.addBranch(id, b.name, seqs.get(id) ?? this.hub.seqOf(id), model.seatsOf(id), bus.seqEpoch);
      this.deps.onBranchChanged?.(id);
    }
    log.info({ branches: newBranches.length, seats: data.seats.length }, 'live seat model picked up branches and seats added since start');
  }

  /** Fires what the clock has made due (booking boundaries, silent sensors, releases). */
  tick(nowMs: number = this.deps.clock.now()): void {
    this.model?.tick(nowMs);
  }

  /** Resolves when the sensor-driven check-ins/releases started so far have finished. */
  async settled(): Promise<void> {
    while (this.transitions.size > 0) await Promise.allSettled([...this.transitions]);
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
    await this.refreshing;
    void this.sensorListener.closeAll();
    await this.settled();
    await this.coalescer.stop();
    this.hub.closeAll(pubsubError(ErrorCode.UNAVAILABLE, 'server shutting down'));
    void this.pubsubListener.closeAll();
    await this.deps.bus.close();
  }

  private reading(seatId: number, occupied: boolean, atMs: number, sensorId: string, scopeBranchId: number | null) {
    const model = this.model;
    if (!model) return 'unknownSeat' as const;
    // To the microsecond: two instances that receive readings of one seat within a millisecond
    // must still agree which came last (docs/sensors.md).
    const receivedAtMs = this.deps.clock.preciseNow();
    const outcome = model.applyReading(seatId, occupied, atMs, receivedAtMs, sensorId, scopeBranchId);
    if (outcome === 'applied') {
      this.counters.readings++;
      this.readingRate.add();
      this.coalescer.record(seatId, occupied, atMs, receivedAtMs, sensorId);
    } else if (outcome === 'stale') this.counters.staleReadings++;
    else if (outcome === 'unknownSeat') {
      this.counters.unknownSeatReadings++;
      // Perhaps a seat added since start; the sensor's next reading for it applies once found.
      void this.discover();
    }
    return outcome;
  }

  private onCoreEvent(ev: CoreEvent): void {
    this.applyFact(ev);
    this.deps.bus.publishFact(ev);
  }

  private onRemoteFact(ev: CoreEvent): void {
    this.applyFact(ev);
    if (ev.type === 'reservation') this.deps.onBranchChanged?.(ev.reservation.branchId);
    else if (ev.type === 'seatStatus') this.deps.onBranchChanged?.(ev.branchId);
  }

  private applyFact(ev: CoreEvent): void {
    if (ev.type === 'personal') return this.hub.personal(ev);
    const model = this.model;
    if (!model) return;
    const seatId = ev.type === 'reservation' ? ev.reservation.seatId : ev.type === 'seatStatus' ? ev.seatId : undefined;
    if (seatId !== undefined && this.refreshing && !model.seat(seatId)) this.heldEvents.push(ev);
    model.applyCoreEvent(ev, this.deps.clock.now());
  }

  private onBusSeat(ev: SeatEvent, quiet: boolean): void {
    if (!quiet && ev.publishedAtMs !== undefined) {
      // Wall clock on both ends (not the injected clock): instances' clocks are assumed in step (NTP).
      this.lastBusLagMs = Math.max(0, Date.now() - ev.publishedAtMs);
      this.busLag.observe(this.lastBusLagMs / 1000);
    }
    this.model?.applyRemote(ev, this.deps.clock.now());
    if (quiet) this.hub.applyQuiet(ev);
    else this.hub.publish(ev);
  }

  private async autoCheckIn(seatId: number, atMs: number): Promise<void> {
    const fact = await this.deps.reservations.checkInBySensor(seatId, atMs);
    if (fact) this.counters.autoCheckIns++;
  }

  private async autoRelease(seatId: number, atMs: number): Promise<void> {
    const fact = await this.deps.reservations.releaseBySensor(seatId, atMs);
    if (fact) this.counters.autoReleases++;
  }

  /** After a bus outage: bookings and seat status from the database, the truth. */
  private async reload(): Promise<void> {
    const data = await LiveSeats.loadData(this.deps.db, this.deps.clock.now());
    this.model?.reload(data, this.deps.clock.now());
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'sensor-driven transition failed'));
    this.transitions.add(tracked);
    void tracked.finally(() => this.transitions.delete(tracked));
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
