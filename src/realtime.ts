// The live half (docs/architecture.md, "The path of a sensor reading"): the sensor and subscriber
// ports, and the path from one to the other, one named method a step. Its collaborators — the
// live model (the one owner of live state), the event bus, the hub, discovery, the sensor
// transitions, the key ring and the seat_live writer — are made by the composition root
// (src/server.ts) and handed to it; it makes only what is its own: the two ports, the sensor
// sessions and the watch on revoked keys.
//
//   SensorSession → onReading → LiveSeats.applyReading ─(outlet)→ EventBus.publishSeat
//                        └→ SensorCoalescer.record (batched seat_live upserts)
//   EventBus (seq per branch) ─(handler)→ deliverSeat → LiveSeats.recordPublished, Hub.publish,
//                                                      LiveSeats.applyRemote
//   LiveSeats (a sensor's presence changed) ─(outlet)→ PresenceHistory.record (batched occupancy history)
//   CoreEventFanout (after commit) → onCoreEvent → applyFact (+ EventBus.publishFact to the others)
//
// No step between a sensor frame and a subscriber's socket touches the database (docs/architecture.md).
import type { Db } from './db/db.js';
import type { Config } from './config/schema.js';
import type { Logger } from './obs/log.js';
import type { Clock } from './core/clock.js';
import type { CoreEvent, CoreEventFanout } from './core/events.js';
import { LiveSeats, type SeatEvent, type StateAndFlags } from './core/liveSeats.js';
import type { BusHandlers, EventBus } from './bus/bus.js';
import { readDeploymentId } from './db/deployment.js';
import type { Hub } from './pubsub/hub.js';
import { encodeErrorFrame } from './net/errorFrame.js';
import type { SensorCoalescer } from './sensors/coalescer.js';
import type { SensorKeyring } from './sensors/sensorKeys.js';
import { RevokedKeyWatch } from './sensors/keyWatch.js';
import type { SensorSession, SensorSink } from './sensors/sensorSession.js';
import type { ReadingCode } from './wire/types.js';
import type { Listener } from './net/listener.js';
import { ErrorCode } from './errors.js';
import { RateMeter } from './obs/rate.js';
import { BusLag } from './live/busLag.js';
import { LookingHub, type LiveDiscovery } from './live/discovery.js';
import type { SensorTransitionRunner } from './live/sensorTransitions.js';
import { sensorListener, subscriberListener } from './live/ports.js';

export interface RealtimeDeps {
  config: Readonly<Config>;
  log: Logger;
  /** For the live model's loads (at start, and bookings again after a bus outage). */
  db: Db;
  clock: Clock;
  /** Committed changes of this instance's booking core. */
  coreEvents: CoreEventFanout;
  bus: EventBus;
  /** The one owner of live state, empty until start() loads it; its changes go to the bus. */
  model: LiveSeats;
  hub: Hub;
  /** Branches and seats added to the database since start. */
  discovery: LiveDiscovery;
  /** Check-ins and releases the sensors cause, run by the booking core (the model asks for them). */
  transitions: SensorTransitionRunner;
  /** Sensor keys, and the per-address throttle on wrong ones. */
  keyring: SensorKeyring;
  /** The batched seat_live writer: the model's applied readings, so a restart starts from them. */
  coalescer: SensorCoalescer;
  /** The listing caches: a booking or seat change committed on another instance makes them forget its branch. */
  listings: { invalidate(branchId: number): void };
  /** Run the clock-driven tick on a real timer (off when tests drive a FakeClock with tick()). */
  autoTick: boolean;
  /** The booking core: a change committed on another instance may free seat time its searches knew full. */
  bookings: { onCoreEvent(ev: CoreEvent): void };
}

export class Realtime {
  readonly sensorListener: Listener;
  readonly pubsubListener: Listener;
  readonly sensorSessions = new Set<SensorSession>();
  /** Closes sensor connections whose key was revoked (sweep() after a revoke here; on a timer for the others'). */
  readonly revokedKeys: RevokedKeyWatch;
  /** From a seat change handed to the bus on any instance to its delivery here. */
  readonly busLag = new BusLag();
  /** Readings refused by the sensor sessions, by per-reading code (docs/sensors.md). */
  readonly refusedReadings: Partial<Record<ReadingCode, number>> = {};
  /** Applied sensor readings per second over the last 10 s. */
  readonly readingRate: RateMeter;
  private readonly readings = { readings: 0, staleReadings: 0, unknownSeatReadings: 0 };
  /** The model is loaded, the bus started and the hub knows every branch: committed changes apply. */
  private ready = false;
  private tickTimer: NodeJS.Timeout | undefined;
  private summaryTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly deps: RealtimeDeps) {
    const { config, log, clock, keyring } = deps;
    this.readingRate = new RateMeter(10, () => clock.now());
    const sink: SensorSink = {
      now: () => clock.now(),
      reading: (seatId, occupied, atMs, sensorId, scopeBranchId) => this.onReading(seatId, occupied, atMs, sensorId, scopeBranchId),
      heartbeat: (seatIds) => this.onHeartbeat(seatIds),
      checkKey: (key, remoteAddress, sensorId) => keyring.check(key, remoteAddress, sensorId),
      refused: (code, n) => void (this.refusedReadings[code] = (this.refusedReadings[code] ?? 0) + n),
    };
    this.revokedKeys = new RevokedKeyWatch(this.sensorSessions, keyring, { everyMs: config.sensors.keyRecheckMs }, log);
    this.sensorListener = sensorListener(config, log, sink, this.sensorSessions);
    this.pubsubListener = subscriberListener(config, log, new LookingHub(deps.hub, deps.discovery));
  }

  /** Loads the live model, joins the bus and opens both ports. */
  async start(): Promise<{ sensor: number; pubsub: number }> {
    const { config, db, clock, bus, log, model, hub, discovery } = this.deps;
    // Listen before loading so no committed change falls between the load and the subscription.
    const early: CoreEvent[] = [];
    this.unsubscribe = this.deps.coreEvents.on((ev) => (this.ready ? this.onCoreEvent(ev) : early.push(ev)));
    const [data, deploymentId] = await Promise.all([LiveSeats.loadData(db, clock.now()), readDeploymentId(db)]);
    model.load(data, clock.now());
    // The bus keeps this database's state only (docs/redis.md): its id is part of every Redis key.
    const seqs = await bus.start([...model.branches.keys()], this.busHandlers(), deploymentId);
    for (const b of model.branches.values()) hub.addBranch(b.id, b.name, seqs.get(b.id) ?? 0, bus.seqEpoch);
    this.ready = true;
    for (const ev of early) this.onCoreEvent(ev);
    this.deps.coalescer.start();
    this.revokedKeys.start();
    this.summaryTimer = setInterval(() => hub.summaries(), config.pubsub.summaryEveryMs);
    this.summaryTimer.unref();
    if (this.deps.autoTick) this.armTick();
    if (config.live.refreshEveryMs > 0) {
      this.refreshTimer = setInterval(() => void discovery.refresh(), config.live.refreshEveryMs);
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

  /** Readings applied, stale and for unknown seats; sensor check-ins and releases; looks for added seats. */
  get counters() {
    return { ...this.readings, ...this.deps.transitions.counters, refreshes: this.deps.discovery.looks };
  }

  /** Fires what the clock has made due (booking boundaries, silent sensors, releases). */
  tick(nowMs: number = this.deps.clock.now()): void {
    this.deps.model.tick(nowMs);
  }

  /** Resolves when the sensor-driven check-ins/releases started so far have finished. */
  settled(): Promise<void> {
    return this.deps.transitions.settled();
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
    await this.deps.discovery.stop();
    void this.sensorListener.closeAll();
    await this.settled();
    await this.deps.coalescer.stop();
    this.deps.hub.closeAll(encodeErrorFrame('pubsub', { code: ErrorCode.UNAVAILABLE, message: 'server shutting down' }));
    void this.pubsubListener.closeAll();
    await this.deps.bus.close();
  }

  /** What the bus hands this instance: each a named step below. */
  private busHandlers(): BusHandlers {
    return {
      seat: (ev, quiet) => this.deliverSeat(ev, quiet),
      fact: (ev) => this.applyRemoteFact(ev),
      resync: (branchId, seq, published) => this.resync(branchId, seq, published),
      ownStates: () => this.deps.model.ownStates(),
      reconnected: () => this.deps.transitions.track(this.reload()),
    };
  }

  // --- the path of a reading, in order ---------------------------------------------------

  /**
   * A sensor's reading, checked by its session: into the model, and to seat_live when applied. A
   * change of the seat's state goes from the model to the bus (LiveSeats.evaluate → the model's
   * `changes` outlet, EventBus.publishSeat), which numbers it and hands it to deliverSeat.
   */
  private onReading(seatId: number, occupied: boolean, atMs: number, sensorId: string, scopeBranchId: number | null) {
    const { model, clock, coalescer, discovery } = this.deps;
    // To the microsecond: two instances that receive readings of one seat within a millisecond
    // must still agree which came last (docs/sensors.md).
    const receivedAtMs = clock.preciseNow();
    const outcome = model.applyReading(seatId, occupied, atMs, receivedAtMs, sensorId, scopeBranchId);
    if (outcome === 'applied') {
      this.readings.readings++;
      this.readingRate.add();
      coalescer.record(seatId, occupied, atMs, receivedAtMs, sensorId);
    } else if (outcome === 'stale') this.readings.staleReadings++;
    else if (outcome === 'unknownSeat') {
      this.readings.unknownSeatReadings++;
      // Perhaps a seat added since start; the sensor's next reading for it applies once found.
      void discovery.discover();
    }
    return outcome;
  }

  private onHeartbeat(seatIds: Iterable<number>): void {
    const now = this.deps.clock.now();
    for (const id of seatIds) this.deps.model.touch(id, now);
  }

  /**
   * A numbered seat event from the bus (this instance's or another's), in seq order: the model
   * records it as the seat's published state, the hub sends it to subscribers (or, caught up
   * quietly, only rebuilds its next snapshot), then the model merges the other instance's sensor
   * evidence — after the hub, so a correction it publishes is numbered after this event.
   */
  private deliverSeat(ev: SeatEvent, quiet: boolean): void {
    const { model, hub, clock } = this.deps;
    if (!quiet && ev.publishedAtMs !== undefined) this.busLag.observe(ev.publishedAtMs);
    model.recordPublished(ev);
    if (quiet) hub.invalidate(ev.branchId);
    else hub.publish(ev);
    model.applyRemote(ev, clock.now());
  }

  /** The bus numbered a branch again after an outage: its published states, then its seq. */
  private resync(branchId: number, seq: number, published: ReadonlyMap<number, StateAndFlags>): void {
    this.deps.model.adoptPublished(branchId, published);
    this.deps.hub.resync(branchId, seq, this.deps.bus.seqEpoch);
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
    this.deps.bookings.onCoreEvent(ev);
    if (ev.type === 'reservation') this.deps.listings.invalidate(ev.reservation.branchId);
    else if (ev.type === 'seatStatus') this.deps.listings.invalidate(ev.branchId);
  }

  private applyFact(ev: CoreEvent): void {
    if (ev.type === 'personal') return this.deps.hub.personal(ev);
    if (!this.ready) return;
    this.deps.discovery.holdIfUnknown(ev);
    this.deps.model.applyCoreEvent(ev, this.deps.clock.now());
  }

  /** After a bus outage: bookings and seat status from the database, the truth. */
  private async reload(): Promise<void> {
    const data = await LiveSeats.loadData(this.deps.db, this.deps.clock.now());
    this.deps.model.reload(data, this.deps.clock.now());
  }

  private armTick(): void {
    if (this.stopped) return;
    const next = this.deps.model.nextDeadlineMs;
    // Re-check at least every second: a deadline that moves earlier (a new reading) is picked up.
    const delay = Math.max(5, Math.min(1_000, next - this.deps.clock.now()));
    this.tickTimer = setTimeout(() => {
      this.tick();
      this.armTick();
    }, delay);
    this.tickTimer.unref();
  }
}
