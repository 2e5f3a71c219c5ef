// The live seat model (docs/architecture.md): every seat's live state — free, reserved, occupied,
// unavailable — and its flags, computed in memory from three inputs: the latest sensor reading,
// the seat's active and upcoming bookings, and whether it is in service. It is loaded from the
// database once at start and then kept current by readings, committed CoreEvents and the clock,
// so the path from a sensor frame to a subscriber never waits for the database.
//
// It is the one owner of live state (docs/architecture.md, "The live-state model"). Per seat it
// keeps the state it computes now and the state last published for it, as the event bus numbered
// it (what subscribers were told as of the hub's seq); per branch, a version that moves with every
// change, which listing caches key on. The listings (LiveView), the hub's snapshots and summaries
// and the seat_live writer all read it; none keeps a state of its own.
//
// Each change of (state, flags) is handed to outlets.changes exactly once; sequencing and fan-out
// are the bus's and the hub's job. Time-driven changes (a booking starts or ends, a sensor falls
// silent, an away hold nears or reaches its end) happen in tick(nowMs), which the owner calls on a
// timer aimed at nextDeadlineMs — and tests call with a FakeClock's time.
//
// Presence (docs/rules.md, "Presence: the state machine"): a CHECKED_IN booking whose seat is
// empty is asked to become away (a hold until holdUntil, stored on the reservation); sitting down
// again asks it back; the hold's end asks for the owner's warning and then the release. The model
// only asks (outlets.transitions, once per step and hold); the booking core decides with guarded
// UPDATEs, and the committed change comes back as a CoreEvent carrying holdUntil. drive() is the
// one place these asks are made.
//
// A gateway's `at` is not trusted beyond the window the sensor session checks (docs/sensors.md):
// a seat's readings are ordered by when the server received them, and every timer (release after
// empty, offline, the check-in window) runs on the server's clock. `at` is compared only between
// readings of one seat from the same sensor, to tell a resend or a reordering (at not later than
// that sensor's last) from news.
import type { Db } from '../db/db.js';
import { ACTIVE_STATUSES, ACTIVE_STATUSES_SQL, type ChangeCause, type CoreEvent, type ReservationStatus } from './events.js';

import type { LiveState, SeatCounts } from '../wire/types.js';

export type { LiveState };

/** A state with its flags: what the model computes, and what was published. */
export interface StateAndFlags {
  state: LiveState;
  flags: number;
  /** state away: when the hold runs out (ISO), as the change that published it said. */
  holdUntil?: string;
}

/** Flag bits; on the wire they become `{unbookedOccupancy?: true, sensorOffline?: true}`. */
export const FLAG_UNBOOKED_OCCUPANCY = 1;
export const FLAG_SENSOR_OFFLINE = 2;

export function flagsToWire(flags: number): { unbookedOccupancy?: true; sensorOffline?: true } {
  const out: { unbookedOccupancy?: true; sensorOffline?: true } = {};
  if (flags & FLAG_UNBOOKED_OCCUPANCY) out.unbookedOccupancy = true;
  if (flags & FLAG_SENSOR_OFFLINE) out.sensorOffline = true;
  return out;
}

/** What an instance knew of a seat's sensor when it published a change (for other instances). */
export interface SensorInputs {
  occupied: boolean | null;
  /** The `at` of the latest accepted reading (ms), 0 when none: the gateway's claim. */
  readingAtMs: number;
  /**
   * Server time the latest accepted reading was received (ms), 0 when none: what orders readings.
   * Absent from instances that predate it; their readingAtMs stands in.
   */
  receivedAtMs?: number;
  /** The sensorId that sent the latest accepted reading. */
  sensorId?: string;
  /** Server time of the latest reading or heartbeat covering this seat (ms), 0 when none. */
  contactAtMs: number;
}

/** One change of a seat's live state, before the bus gives it a sequence number. */
export interface SeatChange {
  /** Instance that computed it; other instances merge its sensor inputs into their model. */
  origin: string;
  branchId: number;
  seatId: number;
  state: LiveState;
  flags: number;
  cause: ChangeCause;
  at: string;
  sensor: SensorInputs;
  /** state away: when the hold runs out (ISO). */
  holdUntil?: string;
  /** When the bus took it to publish (wall clock, ms): how late each instance delivers it, the bus lag. */
  publishedAtMs?: number;
}

/** A SeatChange with its per-branch sequence number (docs/protocol.md). */
export interface SeatEvent extends SeatChange {
  seq: number;
}

export interface BranchInfo {
  id: number;
  name: string;
}

export interface SeatInfo {
  id: number;
  branchId: number;
  area: string;
  label: string;
}

export interface LiveSeatsOptions {
  instanceId: string;
  offlineAfterMs: number;
  /** The owner of an away booking hears awayEnding this long before its hold runs out. */
  awayEndingMs: number;
  autoCheckIn: boolean;
  /** Away holds and their releases (docs/rules.md, presence); off: an empty seat moves no booking. */
  autoRelease: boolean;
  checkInWindow: { opensBeforeMs: number; graceMs: number };
}

/** Where the model's decisions go; handed to it when it is made (docs/architecture.md). */
export interface LiveSeatsOutlets {
  /** Every change of a seat's (state, flags), once: the event bus, which numbers and delivers it. */
  changes: { publishSeat(change: SeatChange): void };
  /** The booking core's sensor transitions; without them sensors move no booking. */
  transitions?: {
    /** Someone sat down in a booked seat inside its check-in window (autoCheckIn), received at atMs. */
    checkIn(seatId: number, atMs: number): void;
    /** A checked-in seat is empty and its booking not away: start a hold (autoRelease). */
    away(seatId: number, atMs: number): void;
    /** Someone sat down in a seat whose booking is away: end the hold. */
    back(seatId: number, atMs: number): void;
    /** An away booking's hold ends within awayEndingMs: warn the owner. */
    awayEnding(seatId: number, atMs: number): void;
    /** An away booking's hold has run out: release it. */
    release(seatId: number, atMs: number): void;
  };
  /**
   * What this instance's sensors say of a seat changed at atMs (receipt time): occupied, empty,
   * or unknown (null: its sensor fell silent). `previous` is what it said before. The occupancy
   * history is written from this (docs/reports.md, "Where the figures come from").
   */
  presence?(seatId: number, presence: Presence, atMs: number, previous: Presence): void;
}

/** A seat's presence as its sensor tells it: occupied, empty, or unknown (null). */
export type Presence = boolean | null;

/** A seat as the model shows it: its state now, and the state last published for it. */
export interface LiveSeatView extends SeatInfo, StateAndFlags {
  readonly published: Readonly<StateAndFlags>;
}

/** A branch's seats counted by state (the wire's SeatCounts) and by flag. */
export interface StateCounts extends SeatCounts {
  sensorOffline: number;
  unbookedOccupancy: number;
}

/** The one function that counts seats by state: branches.list's counts and the hub's summaries. */
export function countStates(seats: Iterable<StateAndFlags>): StateCounts {
  const c: StateCounts = { total: 0, free: 0, reserved: 0, occupied: 0, away: 0, unavailable: 0, sensorOffline: 0, unbookedOccupancy: 0 };
  for (const s of seats) {
    c.total++;
    c[s.state]++;
    if (s.flags & FLAG_SENSOR_OFFLINE) c.sensorOffline++;
    if (s.flags & FLAG_UNBOOKED_OCCUPANCY) c.unbookedOccupancy++;
  }
  return c;
}

/** outOfScope: the seat is in a branch the reading's key may not write. */
export type ReadingOutcome = 'applied' | 'stale' | 'unknownSeat' | 'outOfScope';

interface Booking {
  id: number;
  userId: number;
  startMs: number;
  endMs: number;
  status: ReservationStatus;
  checkInAsked: boolean;
  /** While away: when the hold runs out (0: not away). */
  holdUntilMs: number;
  /** The owner was told awayEnding for this hold. */
  awayWarned: boolean;
  /** The last presence step asked of the core for this booking ("kind@holdUntilMs"; '' none). */
  asked: string;
}

interface LiveSeat extends SeatInfo {
  outOfService: boolean;
  /** Active bookings (CONFIRMED, CHECKED_IN, OFFERED) not yet ended, sorted by start. */
  bookings: Booking[];
  occupied: boolean | null;
  /** The latest accepted reading's own `at`: compared only with the same sensor's next ones. */
  readingAtMs: number;
  /** When the server received the latest accepted reading: what orders a seat's readings. */
  receivedAtMs: number;
  /** Who sent the latest accepted reading ('' when none, or loaded from an older row). */
  sensorId: string;
  contactAtMs: number;
  /** True while this instance holds the seat's freshest sensor evidence and so judges "offline". */
  local: boolean;
  /**
   * True while the seat's newest reading is one this instance's own sensors sent (not another
   * instance's, not the database's at start): its state is this instance's to state again.
   */
  reported: boolean;
  /** The owner's verdict on "offline" when another instance judges it. */
  remoteOffline: boolean;
  /**
   * The presence last handed to outlets.presence: null until this instance hears from the seat's
   * sensor (a state loaded at start is not evidence), and again once the sensor falls silent.
   */
  presence: Presence;
  state: LiveState;
  flags: number;
  /** The state and flags last published for the seat, in the bus's order (or taken at load). */
  published: StateAndFlags;
  /** state away: when the hold runs out (ISO). */
  holdUntil: string | undefined;
  nextAtMs: number;
}

const ACTIVE: ReadonlySet<ReservationStatus> = new Set(ACTIVE_STATUSES);

export interface LoadedBooking {
  id: number;
  seatId: number;
  userId: number;
  startMs: number;
  endMs: number;
  status: ReservationStatus;
  /** While away: when the hold runs out. */
  holdUntilMs?: number;
  awayWarned?: boolean;
}

export interface LiveSeatsData {
  branches: BranchInfo[];
  seats: Array<SeatInfo & { outOfService: boolean }>;
  bookings: LoadedBooking[];
  sensors: LoadedReading[];
}

/** The last persisted reading of a seat (seat_live). */
export interface LoadedReading {
  seatId: number;
  occupied: boolean;
  readingAtMs: number;
  receivedAtMs: number;
  sensorId: string;
}

// received_at in milliseconds with its microseconds (a Date would drop them): receipt times order
// readings at that precision (docs/sensors.md).
const SEAT_LIVE_COLUMNS = 'seat_id, occupied, reading_at, (extract(epoch FROM received_at) * 1000)::float8 AS received_ms, sensor_id';

interface SeatLiveRow {
  seat_id: number;
  occupied: boolean;
  reading_at: Date;
  received_ms: number;
  sensor_id: string | null;
}

function loadedReading(r: SeatLiveRow): LoadedReading {
  return { seatId: r.seat_id, occupied: r.occupied, readingAtMs: r.reading_at.getTime(), receivedAtMs: r.received_ms, sensorId: r.sensor_id ?? '' };
}

export class LiveSeats {
  readonly branches = new Map<number, BranchInfo>();
  private readonly seats = new Map<number, LiveSeat>();
  private readonly byBranch = new Map<number, LiveSeat[]>();
  private nextAtMs = Infinity;
  private isLoaded = false;
  /** Per branch, advanced by every change of one of its seats; see version(). */
  private readonly versions = new Map<number, number>();
  /** Advanced by every change anywhere. */
  private anyVersion = 0;
  /** Advanced when every seat may read differently (a load, a reload, seats added). */
  private resets = 0;
  /** Advanced when branches or seats are added (a load, seats added). */
  private layout = 0;

  /** An empty model: it knows no seat until load() (at start; the data is read from PostgreSQL). */
  constructor(
    private readonly opts: LiveSeatsOptions,
    private readonly outlets: LiveSeatsOutlets,
  ) {}

  /** True once load() has run. */
  get loaded(): boolean {
    return this.isLoaded;
  }

  /** Takes what loadData read: every seat's state is computed without publishing anything. */
  load(data: LiveSeatsData, nowMs: number): void {
    if (this.isLoaded) throw new Error('the live model is loaded once; reload() replaces bookings');
    for (const b of data.branches) {
      this.branches.set(b.id, { id: b.id, name: b.name });
      this.byBranch.set(b.id, []);
    }
    for (const s of data.seats) {
      const seat = newSeat(s);
      this.seats.set(s.id, seat);
      this.byBranch.get(s.branchId)?.push(seat);
    }
    for (const r of data.sensors) {
      const seat = this.seats.get(r.seatId);
      if (seat) applyLoadedReading(seat, r, nowMs);
    }
    this.setBookings(data.bookings, nowMs);
    for (const seat of this.seats.values()) {
      this.evaluate(seat, nowMs, 'reservation.created', '', false);
      seat.published = { state: seat.state, flags: seat.flags, holdUntil: seat.holdUntil };
    }
    this.isLoaded = true;
    this.layout++;
    this.changedAll();
  }

  /** Loads seats, their status, active and upcoming bookings and the last sensor state. */
  static async loadData(db: Db, nowMs: number): Promise<LiveSeatsData> {
    const [branches, seats, bookings, sensors] = await Promise.all([
      db.query<{ id: number; name: string }>('SELECT id, name FROM branches ORDER BY id'),
      db.query<{ id: number; branch_id: number; area: string; label: string; status: string }>(
        'SELECT id, branch_id, area, label, status FROM seats ORDER BY branch_id, area, label',
      ),
      loadBookings(db, nowMs),
      db.query<SeatLiveRow>(`SELECT ${SEAT_LIVE_COLUMNS} FROM seat_live`),
    ]);
    return {
      branches: branches.rows,
      seats: seats.rows.map((s) => ({ id: s.id, branchId: s.branch_id, area: s.area, label: s.label, outOfService: s.status === 'OUT_OF_SERVICE' })),
      bookings,
      sensors: sensors.rows.map(loadedReading),
    };
  }

  /**
   * Branches and seats added to the database since the model was loaded (they are loaded once at
   * start: `npx carrel db seed` on a running server, an admin adding a wing), with their bookings
   * and last sensor state; null when there are none. `order` is every seat id in display order.
   */
  static async loadAdded(db: Db, nowMs: number, known: LiveSeats): Promise<(LiveSeatsData & { order: number[] }) | null> {
    const [branches, seats] = await Promise.all([
      db.query<{ id: number; name: string }>('SELECT id, name FROM branches ORDER BY id'),
      db.query<{ id: number; branch_id: number; area: string; label: string; status: string }>(
        'SELECT id, branch_id, area, label, status FROM seats ORDER BY branch_id, area, label',
      ),
    ]);
    const newBranches = branches.rows.filter((b) => !known.branches.has(b.id));
    const newSeats = seats.rows.filter((s) => !known.seats.has(s.id));
    if (newBranches.length === 0 && newSeats.length === 0) return null;
    const ids = newSeats.map((s) => s.id);
    const [bookings, sensors] = await Promise.all([
      loadBookings(db, nowMs, ids),
      db.query<SeatLiveRow>(`SELECT ${SEAT_LIVE_COLUMNS} FROM seat_live WHERE seat_id = ANY($1)`, [ids]),
    ]);
    return {
      branches: newBranches,
      seats: newSeats.map((s) => ({ id: s.id, branchId: s.branch_id, area: s.area, label: s.label, outOfService: s.status === 'OUT_OF_SERVICE' })),
      bookings,
      sensors: sensors.rows.map(loadedReading),
      order: seats.rows.map((s) => s.id),
    };
  }

  /**
   * Adds what loadAdded found. New seats take their state without publishing it (nobody has been
   * told anything about them; it is their published state too); the owner tells the hub. Returns
   * the branches with new seats (new branches included).
   */
  add(data: LiveSeatsData & { order: number[] }, nowMs: number): Set<number> {
    for (const b of data.branches) {
      if (this.branches.has(b.id)) continue;
      this.branches.set(b.id, { id: b.id, name: b.name });
      this.byBranch.set(b.id, []);
    }
    const touched = new Set<number>();
    const added = new Map<number, LiveSeat>();
    for (const s of data.seats) {
      if (this.seats.has(s.id) || !this.branches.has(s.branchId)) continue;
      const seat = newSeat(s);
      this.seats.set(s.id, seat);
      added.set(s.id, seat);
      touched.add(s.branchId);
    }
    for (const r of data.sensors) {
      const seat = added.get(r.seatId);
      if (seat) applyLoadedReading(seat, r, nowMs);
    }
    for (const b of data.bookings) {
      const seat = added.get(b.seatId);
      if (!seat || !ACTIVE.has(b.status) || b.endMs <= nowMs) continue;
      insertSorted(seat.bookings, loadedBooking(b, undefined));
    }
    for (const id of touched) {
      const list: LiveSeat[] = [];
      for (const seatId of data.order) {
        const seat = this.seats.get(seatId);
        if (seat?.branchId === id) list.push(seat);
      }
      this.byBranch.set(id, list);
    }
    for (const seat of added.values()) {
      this.evaluate(seat, nowMs, 'reservation.created', '', false);
      seat.published = { state: seat.state, flags: seat.flags, holdUntil: seat.holdUntil };
    }
    for (const b of data.branches) touched.add(b.id);
    if (touched.size > 0) {
      this.layout++;
      this.changedAll();
    }
    return touched;
  }

  get seatCount(): number {
    return this.seats.size;
  }

  seat(seatId: number): LiveSeatView | undefined {
    return this.seats.get(seatId);
  }

  /** The seats of a branch in display order (area, label), with their current and published state. */
  seatsOf(branchId: number): ReadonlyArray<LiveSeatView> {
    return this.byBranch.get(branchId) ?? [];
  }

  /**
   * Advances whenever a seat of the branch may read differently (null: any branch): every change
   * the model makes or adopts from another instance, a load, a reload, seats added. A cached
   * listing is stale once it moved (docs/fairness.md).
   */
  version(branchId: number | null): number {
    return branchId === null ? this.anyVersion : (this.versions.get(branchId) ?? 0) + this.resets;
  }

  /** Advances when branches or seats are added: a cached list of branches is stale once it moved. */
  get layoutVersion(): number {
    return this.layout;
  }

  /**
   * A numbered seat event, delivered by the bus in seq order (this instance's or another's): the
   * seat's published state. The hub's snapshots and summaries are built from it, so they say what
   * the events up to the hub's seq said.
   */
  recordPublished(ev: SeatEvent): void {
    const seat = this.seats.get(ev.seatId);
    if (!seat || seat.branchId !== ev.branchId) return;
    seat.published.state = ev.state;
    seat.published.flags = ev.flags;
    seat.published.holdUntil = ev.holdUntil;
  }

  /**
   * The branch's published states as the bus holds them after an outage (a resync): what every
   * instance that read the whole stream shows. Seats the bus has no state for keep theirs.
   */
  adoptPublished(branchId: number, published: ReadonlyMap<number, StateAndFlags>): void {
    for (const [seatId, v] of published) {
      const seat = this.seats.get(seatId);
      if (!seat || seat.branchId !== branchId) continue;
      seat.published.state = v.state;
      seat.published.flags = v.flags;
      // The bus's record keeps no hold: an away seat's is the model's own.
      seat.published.holdUntil = v.state === 'away' ? seat.holdUntil : undefined;
    }
  }

  /** The earliest time tick() has something to do (Infinity when nothing is scheduled). */
  get nextDeadlineMs(): number {
    return this.nextAtMs;
  }

  /**
   * A sensor reading that passed the `at` window, received at nowMs (docs/sensors.md). Readings of
   * a seat take effect in the order they are received; one from the sensor that sent the seat's
   * latest reading, with an `at` not later than that one's, is a resend or a reordering and
   * changes nothing ('stale'). `scopeBranchId` (not null) is the only branch the key may write.
   */
  applyReading(seatId: number, occupied: boolean, atMs: number, nowMs: number, sensorId: string, scopeBranchId: number | null = null): ReadingOutcome {
    const seat = this.seats.get(seatId);
    if (!seat) return 'unknownSeat';
    if (scopeBranchId !== null && seat.branchId !== scopeBranchId) return 'outOfScope';
    if (sensorId === seat.sensorId && atMs <= seat.readingAtMs) return 'stale';
    const was = seat.occupied;
    seat.occupied = occupied;
    seat.readingAtMs = atMs;
    seat.receivedAtMs = nowMs;
    seat.sensorId = sensorId;
    seat.contactAtMs = Math.max(seat.contactAtMs, nowMs);
    seat.local = true;
    seat.reported = true;
    // A change of occupancy may call for a presence step asked before (away, back) again.
    if (occupied !== was) for (const b of seat.bookings) b.asked = '';
    this.present(seat, occupied, nowMs);
    // The event names the reading by its own `at` (inside the window the session checked): it is
    // how a subscriber, and every instance, tells which reading an event came from.
    this.evaluate(seat, nowMs, 'sensor', new Date(atMs).toISOString(), true);
    if (occupied && was !== true && this.opts.autoCheckIn) {
      const { opensBeforeMs, graceMs } = this.opts.checkInWindow;
      const due = seat.bookings.find(
        (b) => b.status === 'CONFIRMED' && !b.checkInAsked && nowMs >= b.startMs - opensBeforeMs && nowMs < b.startMs + graceMs && nowMs < b.endMs,
      );
      if (due) {
        due.checkInAsked = true;
        this.outlets.transitions?.checkIn(seatId, nowMs);
      }
    }
    return 'applied';
  }

  /** A heartbeat from a sensor connection that reports this seat: proof of life, no reading. */
  touch(seatId: number, nowMs: number): void {
    const seat = this.seats.get(seatId);
    if (!seat || nowMs <= seat.contactAtMs) return;
    seat.contactAtMs = nowMs;
    seat.local = true;
    // Proof of life for a seat whose state was not known to the history (after a start, or after
    // the sensor fell silent): its reading stands again from now.
    if (seat.occupied !== null) this.present(seat, seat.occupied, nowMs);
    if (seat.flags & FLAG_SENSOR_OFFLINE) this.evaluate(seat, nowMs, 'sensor', new Date(nowMs).toISOString(), true);
  }

  /** A committed change from the reservation core (or an admin), on this or another instance. */
  applyCoreEvent(ev: CoreEvent, nowMs: number): void {
    if (ev.type === 'seatStatus') {
      const seat = this.seats.get(ev.seatId);
      if (!seat) return;
      seat.outOfService = ev.status === 'OUT_OF_SERVICE';
      this.evaluate(seat, nowMs, 'admin', ev.at, true);
      return;
    }
    if (ev.type !== 'reservation') return;
    const r = ev.reservation;
    const seat = this.seats.get(r.seatId);
    if (!seat) return;
    const old = seat.bookings.findIndex((b) => b.id === r.id);
    const prev = old >= 0 ? seat.bookings.splice(old, 1)[0] : undefined;
    const endMs = Date.parse(r.end);
    if (ACTIVE.has(r.status) && endMs > nowMs) {
      const holdUntilMs = r.holdUntil === undefined ? 0 : Date.parse(r.holdUntil);
      insertSorted(seat.bookings, {
        id: r.id,
        userId: r.userId,
        startMs: Date.parse(r.start),
        endMs,
        status: r.status,
        checkInAsked: prev?.checkInAsked ?? false,
        holdUntilMs,
        // A fact says nothing of the warning; a new hold has had none.
        awayWarned: prev !== undefined && prev.holdUntilMs === holdUntilMs && prev.awayWarned,
        asked: prev?.asked ?? '',
      });
    }
    this.evaluate(seat, nowMs, ev.cause, ev.at, true);
  }

  /**
   * A change another instance published. Its sensor inputs are merged (newest reading wins) and its
   * state is adopted as the published truth. When this instance holds strictly newer sensor
   * evidence than the change was based on, it publishes a correction; evidence only ever gets
   * newer, so two instances cannot correct each other forever.
   */
  applyRemote(ev: SeatChange, nowMs: number): void {
    if (ev.origin === this.opts.instanceId) return;
    const seat = this.seats.get(ev.seatId);
    if (!seat) return;
    const s = ev.sensor;
    // Receipt times from two instances: their clocks are assumed in step (NTP), as for bus lag.
    const theirs: ReadingOrder = { occupied: s.occupied, readingAtMs: s.readingAtMs, receivedAtMs: s.receivedAtMs ?? s.readingAtMs, sensorId: s.sensorId ?? '' };
    const order = compareReadings(seat, theirs);
    const newerHere = order > 0 || seat.contactAtMs > s.contactAtMs;
    if (order < 0) {
      if (theirs.occupied !== seat.occupied) for (const b of seat.bookings) b.asked = '';
      seat.occupied = theirs.occupied;
      seat.readingAtMs = theirs.readingAtMs;
      seat.receivedAtMs = theirs.receivedAtMs;
      seat.sensorId = theirs.sensorId;
      seat.local = false;
      seat.reported = false;
    }
    if (s.contactAtMs > seat.contactAtMs) seat.contactAtMs = s.contactAtMs;
    if (!seat.local) {
      seat.remoteOffline = (ev.flags & FLAG_SENSOR_OFFLINE) !== 0;
      // The instance with the newer evidence writes the history; this one only keeps up with it,
      // so that its own next reading is compared with what the history now says.
      seat.presence = seat.remoteOffline ? null : seat.occupied;
    }
    seat.state = ev.state;
    seat.flags = ev.flags;
    seat.holdUntil = ev.holdUntil;
    this.changed(seat.branchId);
    this.evaluate(seat, nowMs, ev.cause, new Date(nowMs).toISOString(), newerHere);
  }

  /**
   * The current state of every seat whose newest reading came from this instance's own sensors,
   * as changes to publish again: when the bus lost what it held (Redis restarted empty, docs/redis.md),
   * a change the other instances had not read yet went with it, and only this instance can say it.
   */
  ownStates(): SeatChange[] {
    const out: SeatChange[] = [];
    for (const seat of this.seats.values()) if (seat.reported) out.push(this.changeOf(seat, 'sensor', new Date(seat.readingAtMs).toISOString()));
    return out;
  }

  /** Replaces every seat's bookings and service status with the database's (after a bus outage). */
  reload(data: Pick<LiveSeatsData, 'bookings' | 'seats'>, nowMs: number): void {
    for (const s of data.seats) {
      const seat = this.seats.get(s.id);
      if (seat) seat.outOfService = s.outOfService;
    }
    this.setBookings(data.bookings, nowMs);
    const at = new Date(nowMs).toISOString();
    for (const seat of this.seats.values()) this.evaluate(seat, nowMs, 'reservation.created', at, true);
    this.changedAll();
  }

  /** Fires what is due: booking starts and ends, sensors falling silent, away holds' warnings and releases. */
  tick(nowMs: number): void {
    if (nowMs < this.nextAtMs) return;
    this.nextAtMs = Infinity;
    const at = new Date(nowMs).toISOString();
    for (const seat of this.seats.values()) {
      if (seat.nextAtMs > nowMs) {
        if (seat.nextAtMs < this.nextAtMs) this.nextAtMs = seat.nextAtMs;
        continue;
      }
      let ended = false;
      while (seat.bookings.length > 0 && seat.bookings[0]!.endMs <= nowMs) {
        seat.bookings.shift();
        ended = true;
      }
      const booking = activeBooking(seat, nowMs);
      // What came due decides the cause: a booking ending, a sensor falling silent, a booking starting.
      const silent = seat.local && seat.occupied !== null && nowMs - seat.contactAtMs > this.opts.offlineAfterMs;
      // Known until the last word from the sensor; unknown since.
      if (silent) this.present(seat, null, seat.contactAtMs);
      const cause: ChangeCause = ended
        ? 'completed'
        : silent && !(seat.flags & FLAG_SENSOR_OFFLINE)
          ? 'sensor'
          : booking
            ? booking.status === 'OFFERED'
              ? 'offer'
              : 'reservation.created'
            : 'sensor';
      this.evaluate(seat, nowMs, cause, at, true);
    }
  }

  /** Hands a change of the seat's presence to outlets.presence (nothing when it is the same). */
  private present(seat: LiveSeat, presence: Presence, atMs: number): void {
    if (presence === seat.presence) return;
    const previous = seat.presence;
    seat.presence = presence;
    this.outlets.presence?.(seat.id, presence, atMs, previous);
  }

  private setBookings(bookings: LoadedBooking[], nowMs: number): void {
    const before = new Map<number, Booking>();
    for (const seat of this.seats.values()) {
      for (const b of seat.bookings) before.set(b.id, b);
      seat.bookings = [];
    }
    for (const b of bookings) {
      const seat = this.seats.get(b.seatId);
      if (!seat || !ACTIVE.has(b.status) || b.endMs <= nowMs) continue;
      seat.bookings.push(loadedBooking(b, before.get(b.id)));
    }
    for (const seat of this.seats.values()) seat.bookings.sort((a, b) => a.startMs - b.startMs);
  }

  private evaluate(seat: LiveSeat, nowMs: number, cause: ChangeCause, at: string, publish: boolean): void {
    const booking = activeBooking(seat, nowMs);
    const offline = seat.local
      ? seat.occupied !== null && nowMs - seat.contactAtMs > this.opts.offlineAfterMs
      : seat.remoteOffline;
    let flags = offline ? FLAG_SENSOR_OFFLINE : 0;
    let state: LiveState;
    if (seat.occupied === true && !booking) flags |= FLAG_UNBOOKED_OCCUPANCY;
    const away = booking?.status === 'CHECKED_IN' && booking.holdUntilMs > 0;
    if (seat.outOfService) state = 'unavailable';
    else if (seat.occupied === true) state = 'occupied';
    // Held for an owner who stepped away (docs/rules.md, presence), sensor offline or not.
    else if (away) state = 'away';
    // Checked in at a seat without a sensor reading: trust the check-in.
    else if (booking) state = booking.status === 'CHECKED_IN' && seat.occupied === null ? 'occupied' : 'reserved';
    else state = 'free';

    this.drive(seat, booking, nowMs);
    seat.nextAtMs = this.deadline(seat, nowMs, booking, offline);
    if (seat.nextAtMs < this.nextAtMs) this.nextAtMs = seat.nextAtMs;
    const holdUntil = state === 'away' ? new Date(booking!.holdUntilMs).toISOString() : undefined;
    if (state === seat.state && flags === seat.flags && holdUntil === seat.holdUntil) return;
    seat.state = state;
    seat.flags = flags;
    seat.holdUntil = holdUntil;
    this.changed(seat.branchId);
    if (!publish) return;
    this.outlets.changes.publishSeat(this.changeOf(seat, cause, at));
  }

  /**
   * The presence state machine's asks (docs/rules.md, "Presence: the state machine"): for the
   * seat's CHECKED_IN booking, away when the seat is empty, back when someone sits down during a
   * hold, the owner's warning awayEndingMs before the hold's end, the release at it. Each step is
   * asked once per hold (Booking.asked); the core's guarded UPDATE decides, and its committed fact
   * comes back through applyCoreEvent. A seat without a sensor reading is never away. While the
   * sensor is offline its last reading stands: an away hold keeps running on this clock.
   */
  private drive(seat: LiveSeat, booking: Booking | undefined, nowMs: number): void {
    const t = this.outlets.transitions;
    if (!t || !this.opts.autoRelease || booking?.status !== 'CHECKED_IN') return;
    const ask = (kind: string, run: () => void): void => {
      const key = `${kind}@${booking.holdUntilMs}`;
      if (booking.asked === key) return;
      booking.asked = key;
      run();
    };
    if (booking.holdUntilMs === 0) {
      if (seat.occupied === false) ask('away', () => t.away(seat.id, nowMs));
    } else if (seat.occupied === true) ask('back', () => t.back(seat.id, nowMs));
    else if (nowMs >= booking.holdUntilMs) ask('release', () => t.release(seat.id, nowMs));
    else if (!booking.awayWarned && nowMs >= booking.holdUntilMs - this.opts.awayEndingMs) ask('ending', () => t.awayEnding(seat.id, nowMs));
  }

  private changed(branchId: number): void {
    this.versions.set(branchId, (this.versions.get(branchId) ?? 0) + 1);
    this.anyVersion++;
  }

  private changedAll(): void {
    this.resets++;
    this.anyVersion++;
  }

  private changeOf(seat: LiveSeat, cause: ChangeCause, at: string): SeatChange {
    return {
      origin: this.opts.instanceId,
      branchId: seat.branchId,
      seatId: seat.id,
      state: seat.state,
      flags: seat.flags,
      cause,
      at,
      sensor: { occupied: seat.occupied, readingAtMs: seat.readingAtMs, receivedAtMs: seat.receivedAtMs, sensorId: seat.sensorId, contactAtMs: seat.contactAtMs },
      ...(seat.holdUntil === undefined ? {} : { holdUntil: seat.holdUntil }),
    };
  }

  private deadline(seat: LiveSeat, nowMs: number, booking: Booking | undefined, offline: boolean): number {
    let next = Infinity;
    for (const b of seat.bookings) {
      if (b.startMs > nowMs) {
        next = Math.min(next, b.startMs);
        break; // sorted by start: later ones start later still
      }
      next = Math.min(next, b.endMs);
    }
    if (seat.local && seat.occupied !== null && !offline) next = Math.min(next, seat.contactAtMs + this.opts.offlineAfterMs + 1);
    // An away hold: the owner's warning (unless given or asked), then the release.
    if (this.opts.autoRelease && booking?.status === 'CHECKED_IN' && booking.holdUntilMs > 0 && seat.occupied !== true) {
      const warnAt = booking.holdUntilMs - this.opts.awayEndingMs;
      const warned = booking.awayWarned || booking.asked === `ending@${booking.holdUntilMs}`;
      next = Math.min(next, !warned && warnAt > nowMs ? warnAt : booking.holdUntilMs);
    }
    return next;
  }
}

/** What decides which of two readings of a seat a model keeps. */
type ReadingOrder = Pick<LiveSeat, 'occupied' | 'readingAtMs' | 'receivedAtMs' | 'sensorId'>;

/**
 * Which of two readings of one seat is the newer (> 0: `a`, < 0: `b`, 0: the same reading): the one
 * received later (docs/sensors.md). Receipt times are in microseconds, but two instances can still
 * stamp one time; then a total order decides (the greater sensorId, else the same sensor's later
 * `at`, else "occupied"), so every instance, and seat_live, keeps the same reading. With "neither
 * is newer" on a tie, the instance holding the other reading showed the published state to its
 * subscribers, computed its own reading's state in its model, and published nothing: the instances
 * and their subscribers stayed apart.
 */
function compareReadings(a: ReadingOrder, b: ReadingOrder): number {
  if (a.receivedAtMs !== b.receivedAtMs) return a.receivedAtMs > b.receivedAtMs ? 1 : -1;
  if (a.sensorId !== b.sensorId) return a.sensorId > b.sensorId ? 1 : -1;
  if (a.readingAtMs !== b.readingAtMs) return a.readingAtMs > b.readingAtMs ? 1 : -1;
  return occupiedRank(a.occupied) - occupiedRank(b.occupied);
}

function occupiedRank(occupied: boolean | null): number {
  return occupied === null ? 0 : occupied ? 2 : 1;
}

function newSeat(s: SeatInfo & { outOfService: boolean }): LiveSeat {
  return {
    id: s.id,
    branchId: s.branchId,
    area: s.area,
    label: s.label,
    outOfService: s.outOfService,
    bookings: [],
    occupied: null,
    readingAtMs: 0,
    receivedAtMs: 0,
    sensorId: '',
    contactAtMs: 0,
    local: false,
    reported: false,
    remoteOffline: false,
    presence: null,
    state: 'free',
    flags: 0,
    published: { state: 'free', flags: 0 },
    holdUntil: undefined,
    nextAtMs: Infinity,
  };
}

/** The last persisted reading (seat_live), as loaded at start. */
function applyLoadedReading(seat: LiveSeat, r: LoadedReading, nowMs: number): void {
  seat.occupied = r.occupied;
  seat.readingAtMs = r.readingAtMs;
  seat.receivedAtMs = r.receivedAtMs;
  seat.sensorId = r.sensorId;
  // A restart must not flag every sensor offline at once: they get offlineAfterMs to reconnect.
  seat.contactAtMs = nowMs;
  seat.local = true;
}

/** A loaded booking, keeping what this model had asked of it before a reload. */
function loadedBooking(b: LoadedBooking, before: Booking | undefined): Booking {
  const holdUntilMs = b.holdUntilMs ?? 0;
  return {
    id: b.id,
    userId: b.userId,
    startMs: b.startMs,
    endMs: b.endMs,
    status: b.status,
    checkInAsked: before?.checkInAsked ?? false,
    holdUntilMs,
    awayWarned: b.awayWarned ?? false,
    asked: before !== undefined && before.holdUntilMs === holdUntilMs ? before.asked : '',
  };
}

function activeBooking(seat: LiveSeat, nowMs: number): Booking | undefined {
  for (const b of seat.bookings) {
    if (b.startMs > nowMs) return undefined;
    if (b.endMs > nowMs) return b;
  }
  return undefined;
}

function insertSorted(list: Booking[], b: Booking): void {
  let i = list.length;
  while (i > 0 && list[i - 1]!.startMs > b.startMs) i--;
  list.splice(i, 0, b);
}

async function loadBookings(db: Db, nowMs: number, seatIds?: number[]): Promise<LoadedBooking[]> {
  const rows = await db.query<{
    id: number; seat_id: number; user_id: number; start_at: Date; end_at: Date; status: ReservationStatus; hold_until: Date | null; away_warned: boolean;
  }>(
    `SELECT id, seat_id, user_id, lower(during) AS start_at, upper(during) AS end_at, status, hold_until, away_warned
       FROM reservations
      WHERE status IN ${ACTIVE_STATUSES_SQL} AND upper(during) > $1
        ${seatIds ? 'AND seat_id = ANY($2)' : ''}`,
    seatIds ? [new Date(nowMs), seatIds] : [new Date(nowMs)],
  );
  return rows.rows.map((r) => ({
    id: r.id,
    seatId: r.seat_id,
    userId: r.user_id,
    startMs: r.start_at.getTime(),
    endMs: r.end_at.getTime(),
    status: r.status,
    holdUntilMs: r.hold_until?.getTime() ?? 0,
    awayWarned: r.away_warned,
  }));
}
