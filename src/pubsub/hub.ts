// The subscriber hub (docs/protocol.md, "Subscriber port"): branch → subscribers, each branch's
// seq, the retained events `since` resumes from, snapshots and the periodic branch summaries.
//
// publish() takes seat events in seq order from the bus, serialises each ONCE and hands the same
// Buffer to every subscriber in scope; it is synchronous and O(1) per subscriber (Subscriber
// .deliver never waits). The hub keeps no seat state: snapshots and summaries read each seat's
// published state from the live model (PublishedSeats), which records every event before the hub
// publishes it (docs/architecture.md, "The live-state model"), so a snapshot and its seq agree.
//
// Fan-out is per event-loop turn, not per event: a branch's frames of the turn are joined into
// one Buffer (once, shared by every subscriber) and each subscriber gets one write for them at
// the end of the turn. With 1,000 subscribers the write syscalls are most of the cost of an event
// (~7 µs each on loopback), so events that arrive together (a gateway's frame with many readings,
// a burst read in one go) cost one write per subscriber instead of one each. Anything that must
// not be reordered with the turn's events (a subscribe, a personal event, shutdown) flushes first.
//
// Resuming: `since` equal to the branch's seq resumes with nothing to send; an older `since`
// still inside the local retention (pubsub.retainEvents) is replayed from memory; older still,
// the bus's history is asked (the Redis stream is shared by every instance, so a subscriber can
// resume on another instance); when nothing holds the events any more, the subscriber gets a
// fresh snapshot marked `"fresh": true` and `resumed: false` in `subscribed`.
//
// Seqs belong to a sequence space, named by its epoch (the bus's seqEpoch), which `subscribed`
// and every snapshot carry. A new database, a Redis that lost its data or an in-process bus after
// a restart numbers from its own start, so a `since` of another space means nothing here: a
// subscriber that resumes with the epoch it was given gets, when the epoch has changed since, a
// fresh snapshot with reason "seqReset" instead of events of the new space (docs/redis.md).
import { encodeFrame } from '../codec/index.js';
import { countStates, flagsToWire, type LiveSeatView, type SeatEvent } from '../core/liveSeats.js';
import { personalFrame, type PersonalEvent } from '../core/events.js';
import { CarrelError, ErrorCode } from '../errors.js';
import type { HistorySource } from '../bus/bus.js';
import type { Logger } from '../obs/log.js';
import { Histogram } from '../obs/metrics.js';
import { FrameRing } from './ring.js';
import type { Subscriber, SubscriberHost } from './subscriber.js';
import type { SubscribeRequest } from '../wire/args.js';
import type { BranchSummaryFrame, SeatEventFrame, SnapshotFrame, SnapshotSeat, SubscribedFrame } from '../wire/types.js';
import { findBranch, parseBranchRef, type BranchRef } from '../wire/branchRef.js';

export interface HubOptions {
  retainEvents: number;
}

export interface TokenVerifier {
  verify(token: string): { id: number; expMs: number };
}

/**
 * A branch's seats in display order with the state last published for each, as of the latest
 * event the hub was given: the live model (LiveSeats).
 */
export interface PublishedSeats {
  seatsOf(branchId: number): ReadonlyArray<Pick<LiveSeatView, 'id' | 'area' | 'label' | 'published'>>;
}

export interface HubStats {
  subscribers: number;
  eventsPublished: number;
  framesDelivered: number;
  drops: number;
  slowConsumers: number;
  resumed: number;
  freshSnapshots: number;
  personalDelivered: number;
}

class Channel {
  seq = 0;
  /** The sequence space `seq` belongs to. */
  epoch = '';
  readonly subs = new Set<Subscriber>();
  readonly retained: FrameRing;
  /** Frames fanned out this event-loop turn, with their seqs (0: none), delivered by Hub.flush. */
  turnFrames: Buffer[] = [];
  turnSeqs: number[] = [];
  /** performance.now() when this turn's first frame was fanned out (its reading arrived). */
  turnStartedAt = 0;
  private snapshotFrame: Buffer | undefined;
  private snapshotSeq = -1;

  constructor(
    readonly id: number,
    readonly name: string,
    retain: number,
    private readonly published: PublishedSeats,
  ) {
    this.retained = new FrameRing(retain);
  }

  /** True when every event after `since` up to seq is still in memory. */
  retains(since: number): boolean {
    const r = this.retained;
    return r.size > 0 && r.seqAt(0) <= since + 1 && r.seqAt(r.size - 1) === this.seq;
  }

  snapshot(extra?: { fresh: true; reason: string }): Buffer {
    if (extra) return encodeFrame(this.snapshotBody(extra));
    // A resync may change the epoch and keep the seq: it invalidates the cached frame.
    if (this.snapshotSeq !== this.seq || !this.snapshotFrame) {
      this.snapshotFrame = encodeFrame(this.snapshotBody());
      this.snapshotSeq = this.seq;
    }
    return this.snapshotFrame;
  }

  summary(at: string): Buffer {
    const c = countStates(this.published.seatsOf(this.id).map((s) => s.published));
    return encodeFrame({
      type: 'branch',
      branch: this.name,
      branchId: this.id,
      seq: this.seq,
      free: c.free,
      reserved: c.reserved,
      occupied: c.occupied,
      away: c.away,
      unavailable: c.unavailable,
      total: c.total,
      sensorOffline: c.sensorOffline,
      unbookedOccupancy: c.unbookedOccupancy,
      at,
    } satisfies BranchSummaryFrame);
  }

  invalidate(): void {
    this.snapshotFrame = undefined;
  }

  private snapshotBody(extra?: { fresh: true; reason: string }): SnapshotFrame {
    const seats: SnapshotSeat[] = [];
    for (const s of this.published.seatsOf(this.id)) {
      seats.push({ seatId: s.id, area: s.area, label: s.label, state: s.published.state, flags: flagsToWire(s.published.flags), ...holdUntilOf(s.published) });
    }
    return { type: 'snapshot', branch: this.name, branchId: this.id, seq: this.seq, epoch: this.epoch, ...extra, seats };
  }
}

type Plan =
  | { ch: Channel; kind: 'snapshot' | 'current' | 'fresh'; reason?: string }
  | { ch: Channel; kind: 'replay'; frames: Buffer[]; upTo: number }
  | { ch: Channel; kind: 'history'; since: number; upTo: number };

/** Fine around the 5 ms a delivery should take at p99, coarse above. */
const DELIVERY_BUCKETS_SEC = [0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1];

export class Hub implements SubscriberHost {
  private readonly channels = new Map<number, Channel>();
  private readonly all = new Set<Subscriber>();
  private readonly byUser = new Map<number, Set<Subscriber>>();
  private readonly everyone = new Set<Subscriber>();
  /** Channels with frames waiting for the end of the turn, and whether that flush is scheduled. */
  private dirty: Channel[] = [];
  private flushScheduled = false;
  /**
   * Seconds from a seat event's publish here (for a sensor reading: the moment its frame was
   * read) to its write to a subscriber's socket, one observation per event per subscriber; an
   * event queued behind a congested socket is not counted (it is in the drops and queue depth).
   */
  readonly deliveryLatency = new Histogram(DELIVERY_BUCKETS_SEC);
  readonly stats: HubStats = {
    subscribers: 0,
    eventsPublished: 0,
    framesDelivered: 0,
    drops: 0,
    slowConsumers: 0,
    resumed: 0,
    freshSnapshots: 0,
    personalDelivered: 0,
  };

  constructor(
    private readonly opts: HubOptions,
    private readonly deps: {
      tokens: TokenVerifier;
      /** Every branch's seats and their published states: the live model. */
      published: PublishedSeats;
      history?: HistorySource;
      now: () => number;
      log: Logger;
    },
  ) {}

  /**
   * Declares a branch the live model knows (at start, or added later), as of `seq` in the sequence
   * space `epoch`. Subscribers of "*" get the new branch's snapshot. A branch already declared had
   * seats added: later snapshots include them.
   */
  addBranch(id: number, name: string, seq: number, epoch: string): void {
    if (this.channels.has(id)) return this.invalidate(id);
    const ch = new Channel(id, name, this.opts.retainEvents, this.deps.published);
    ch.seq = seq;
    ch.epoch = epoch;
    this.channels.set(id, ch);
    if (this.all.size > 0) this.fanOut(ch, ch.snapshot(), 0);
  }

  /** True when a subscribe naming `branch` would find it ("*" always does). */
  knows(branch: BranchRef | '*'): boolean {
    return branch === '*' || this.channelFor(branch) !== undefined;
  }

  seqOf(branchId: number): number {
    return this.channels.get(branchId)?.seq ?? 0;
  }

  branchIds(): number[] {
    return [...this.channels.keys()];
  }

  get subscriberCount(): number {
    return this.everyone.size;
  }

  /** Events waiting in subscribers' rings (behind a congested socket): in all, and the deepest queue. */
  queuedEvents(): { total: number; deepest: number } {
    let total = 0;
    let deepest = 0;
    for (const s of this.everyone) {
      const n = s.queued;
      total += n;
      if (n > deepest) deepest = n;
    }
    return { total, deepest };
  }

  /** Bytes queued in subscribers' rings plus their sockets' unsent bytes (for stats and tests). */
  queuedBytes(): number {
    let n = 0;
    for (const s of this.everyone) n += s.queuedBytes + s.conn.bufferedBytes;
    return n;
  }

  /**
   * A seat event from the bus, in seq order, already recorded by the live model: serialise once,
   * deliver to everyone in scope.
   */
  publish(ev: SeatEvent): void {
    const ch = this.channels.get(ev.branchId);
    if (!ch || ev.seq <= ch.seq) return; // unknown branch, or already delivered (a catch-up overlap)
    if (ev.seq !== ch.seq + 1) ch.retained.clear(); // a hole: older events no longer resume contiguously
    ch.seq = ev.seq;
    const frame = encodeSeatEvent(ch, ev);
    ch.retained.push(frame, ev.seq, ch.id);
    this.stats.eventsPublished++;
    this.fanOut(ch, frame, ev.seq);
  }

  /**
   * The branch's published states changed without an event to send (catch-up before a resync,
   * seats added): the next snapshot is built again.
   */
  invalidate(branchId: number): void {
    this.channels.get(branchId)?.invalidate();
  }

  /**
   * The branch's numbering was interrupted (events delivered with local seqs while the bus was
   * down): adopt the bus's seq and its epoch — the live model has adopted the seats' published
   * states the bus holds, so this view agrees with every other instance's — and give every
   * subscriber a fresh snapshot (which carries the epoch).
   */
  resync(branchId: number, seq: number, epoch?: string): void {
    const ch = this.channels.get(branchId);
    if (!ch) return;
    ch.seq = seq;
    if (epoch !== undefined) ch.epoch = epoch;
    ch.retained.clear();
    ch.invalidate();
    const frame = ch.snapshot({ fresh: true, reason: 'resync' });
    this.fanOut(ch, frame, 0);
    this.stats.freshSnapshots += ch.subs.size + this.all.size;
  }

  /** A personal event goes only to connections subscribed with that user's token. */
  personal(ev: PersonalEvent): void {
    const subs = this.byUser.get(ev.userId);
    if (!subs) return;
    this.flush(); // after the seat events that came before it
    const now = this.deps.now();
    let frame: Buffer | undefined;
    for (const sub of subs) {
      if (sub.tokenExpMs <= now) {
        // The token has expired since subscribing: stop personal delivery, say so once.
        this.unbindUser(sub);
        sub.sendError(ErrorCode.UNAUTHENTICATED, 'token has expired; personal events stopped (subscribe again with a new token)');
        continue;
      }
      frame ??= encodeFrame(personalFrame(ev));
      sub.deliver(frame, 0, 0);
      this.stats.personalDelivered++;
    }
  }

  /** One summary per branch with subscribers (pubsub.summaryEveryMs), encoded once. */
  summaries(): void {
    const at = new Date(this.deps.now()).toISOString();
    for (const ch of this.channels.values()) {
      if (ch.subs.size === 0 && this.all.size === 0) continue;
      this.fanOut(ch, ch.summary(at), 0);
    }
  }

  /** A branch this hub does not know is NOT_FOUND (src/live/discovery.ts looks for added ones first). */
  subscribe(sub: Subscriber, req: SubscribeRequest): void {
    // The turn's events so far went out before this subscriber joins: its answer reflects them.
    this.flush();
    let scope: Channel[];
    if (req.branch === '*') {
      scope = [...this.channels.values()];
    } else {
      const ch = this.channelFor(req.branch);
      if (!ch) return sub.refuse(ErrorCode.NOT_FOUND, `no branch ${'id' in req.branch ? req.branch.id : JSON.stringify(req.branch.name)}`);
      scope = [ch];
    }
    let user: { id: number; expMs: number } | null = null;
    if (req.token !== undefined) {
      try {
        user = this.deps.tokens.verify(req.token);
      } catch (err) {
        const msg = err instanceof CarrelError ? err.message : 'token is invalid';
        return sub.refuse(ErrorCode.UNAUTHENTICATED, msg);
      }
    }
    if (typeof req.since === 'number' && req.branch === '*') {
      return sub.refuse(ErrorCode.INVALID_ARGUMENT, 'with branch "*", since must be an object of seqs by branch id');
    }

    sub.scope = req.branch === '*' ? 'all' : scope[0]!.id;
    sub.beginPending();
    this.everyone.add(sub);
    this.stats.subscribers = this.everyone.size;
    if (sub.scope === 'all') this.all.add(sub);
    else scope[0]!.subs.add(sub);
    if (user) {
      sub.userId = user.id;
      sub.tokenExpMs = user.expMs;
      let set = this.byUser.get(user.id);
      if (!set) this.byUser.set(user.id, (set = new Set()));
      set.add(sub);
    }

    const since = sinceByBranch(req.since, this.channels.values());
    const plans = scope.map((ch) => this.plan(ch, typeof since === 'number' ? since : since?.get(ch.id), req.epoch));
    if (!plans.some((p) => p.kind === 'history')) return this.answer(sub, req, plans);
    void Promise.all(plans.map((p) => (p.kind === 'history' ? this.fromHistory(p) : p))).then((resolved) => {
      if (!sub.isClosed) this.answer(sub, req, resolved);
    });
  }

  remove(sub: Subscriber): void {
    if (!this.everyone.delete(sub)) return;
    this.stats.subscribers = this.everyone.size;
    if (sub.scope === 'all') this.all.delete(sub);
    else if (sub.scope !== null) this.channels.get(sub.scope)?.subs.delete(sub);
    this.unbindUser(sub);
  }

  countDrop(sub: Subscriber, firstDrop: boolean): void {
    this.stats.drops++;
    if (firstDrop) this.deps.log.info({ conn: sub.conn.id, remote: sub.conn.remote }, 'subscriber falling behind; dropping its oldest events');
  }

  countSlowConsumer(_sub: Subscriber): void {
    this.stats.slowConsumers++;
  }

  /** Tells every subscriber goodbye with one last frame (graceful shutdown). */
  closeAll(frame: Buffer): void {
    this.flush();
    for (const sub of [...this.everyone]) sub.finish(frame);
  }

  /** Delivers the frames fanned out so far this turn (normally at its end, on process.nextTick). */
  readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.dirty.length === 0) return;
    const dirty = this.dirty;
    this.dirty = [];
    for (const ch of dirty) {
      const frames = ch.turnFrames;
      const seqs = ch.turnSeqs;
      ch.turnFrames = [];
      ch.turnSeqs = [];
      const joined = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
      // Arrival to hand-over, per subscriber: each one's write has happened when it is timed.
      const t0 = ch.turnStartedAt;
      const lat = this.deliveryLatency;
      for (const subs of [ch.subs, this.all]) {
        for (const sub of subs) {
          sub.deliverTurn(joined, frames, seqs, ch.id);
          lat.observe((performance.now() - t0) / 1000, frames.length);
        }
      }
    }
  };

  private fanOut(ch: Channel, frame: Buffer, seq: number): void {
    if (ch.subs.size === 0 && this.all.size === 0) return;
    if (ch.turnFrames.length === 0) {
      this.dirty.push(ch);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(this.flush);
      }
    }
    if (ch.turnFrames.length === 0) ch.turnStartedAt = performance.now();
    ch.turnFrames.push(frame);
    ch.turnSeqs.push(seq);
    this.stats.framesDelivered += ch.subs.size + this.all.size;
  }

  /** The branch a reference names (wire/branchRef.ts: digits are an id, a name in any case). */
  private channelFor(ref: BranchRef): Channel | undefined {
    return 'id' in ref ? this.channels.get(ref.id) : findBranch(ref, this.channels.values());
  }

  private unbindUser(sub: Subscriber): void {
    if (sub.userId === null) return;
    const set = this.byUser.get(sub.userId);
    set?.delete(sub);
    if (set?.size === 0) this.byUser.delete(sub.userId);
    sub.userId = null;
  }

  /** `epoch`: the sequence space `since` was given in, when the subscriber said. */
  private plan(ch: Channel, since: number | undefined, epoch: string | undefined): Plan {
    if (since === undefined) return { ch, kind: 'snapshot' };
    if (epoch !== undefined && epoch !== ch.epoch) return { ch, kind: 'fresh', reason: 'seqReset' };
    if (since === ch.seq) return { ch, kind: 'current' };
    if (since < ch.seq && ch.retains(since)) {
      const frames: Buffer[] = [];
      const r = ch.retained;
      for (let i = 0; i < r.size; i++) if (r.seqAt(i) > since) frames.push(r.at(i)!);
      return { ch, kind: 'replay', frames, upTo: ch.seq };
    }
    if (since < ch.seq && this.deps.history) return { ch, kind: 'history', since, upTo: ch.seq };
    return { ch, kind: 'fresh', reason: since > ch.seq ? 'since is ahead of this server' : 'since is no longer retained' };
  }

  private async fromHistory(p: Extract<Plan, { kind: 'history' }>): Promise<Plan> {
    let events: SeatEvent[] | null = null;
    try {
      events = (await this.deps.history?.history(p.ch.id, p.since, p.upTo - p.since)) ?? null;
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'could not read event history; sending a fresh snapshot');
    }
    // Usable only when it starts right after `since` and reaches what this instance had delivered.
    if (!events || events.length === 0 || events[0]!.seq !== p.since + 1 || events[events.length - 1]!.seq < p.upTo) {
      return { ch: p.ch, kind: 'fresh', reason: 'since is no longer retained' };
    }
    const frames = events.filter((e) => e.seq <= p.upTo).map((e) => encodeSeatEvent(p.ch, e));
    return { ch: p.ch, kind: 'replay', frames, upTo: p.upTo };
  }

  private answer(sub: Subscriber, req: SubscribeRequest, plans: Plan[]): void {
    const marks = new Map<number, number>();
    const branches = plans.map((p) => {
      const upTo = p.kind === 'replay' ? p.upTo : p.ch.seq;
      marks.set(p.ch.id, upTo);
      const resumed = p.kind === 'replay' || p.kind === 'current' ? true : p.kind === 'fresh' ? false : undefined;
      const entry = { id: p.ch.id, name: p.ch.name, seq: upTo, epoch: p.ch.epoch };
      return resumed === undefined ? entry : { ...entry, resumed };
    });
    const resumedAll = req.since === undefined ? undefined : plans.every((p) => p.kind === 'replay' || p.kind === 'current');
    // One epoch for the whole answer when the branches share it (they do but mid-resync).
    const epoch = plans.length > 0 && plans.every((p) => p.ch.epoch === plans[0]!.ch.epoch) ? plans[0]!.ch.epoch : undefined;
    sub.sendNow(
      encodeFrame({
        type: 'subscribed',
        branch: req.branch === '*' ? '*' : plans[0]!.ch.name,
        branches,
        personal: sub.userId !== null,
        ...(resumedAll === undefined ? {} : { resumed: resumedAll }),
        ...(epoch === undefined ? {} : { epoch }),
      } satisfies SubscribedFrame),
    );
    for (const p of plans) {
      if (p.kind === 'snapshot') sub.sendNow(p.ch.snapshot());
      else if (p.kind === 'fresh') {
        sub.sendNow(p.ch.snapshot({ fresh: true, reason: p.reason ?? 'since is no longer retained' }));
        this.stats.freshSnapshots++;
      } else if (p.kind === 'replay') {
        for (const f of p.frames) sub.sendNow(f);
        this.stats.resumed++;
      } else if (p.kind === 'current') this.stats.resumed++;
    }
    sub.endPending(marks);
  }
}

/** An away seat's hold, as the event that made it away said (docs/protocol.md, "Live states and flags"). */
function holdUntilOf(s: { state: string; holdUntil?: string }): { holdUntil?: string } {
  return s.state === 'away' && s.holdUntil ? { holdUntil: s.holdUntil } : {};
}

function encodeSeatEvent(ch: { id: number; name: string }, ev: SeatEvent): Buffer {
  return encodeFrame({
    type: 'seat',
    branch: ch.name,
    branchId: ch.id,
    seq: ev.seq,
    seatId: ev.seatId,
    state: ev.state,
    flags: flagsToWire(ev.flags),
    ...holdUntilOf(ev),
    cause: ev.cause,
    at: ev.at,
  } satisfies SeatEventFrame);
}

/**
 * `since` by branch id: one seq as it is; for "*", each key read as a branch reference
 * (src/wire/branchRef.ts), a key by id before one by name, else the later key; keys naming no
 * branch are ignored.
 */
function sinceByBranch(since: SubscribeRequest['since'], channels: Iterable<Channel>): number | Map<number, number> | undefined {
  if (since === undefined || typeof since === 'number') return since;
  const known = [...channels];
  const byId = new Map<number, number>();
  const byName = new Map<number, number>();
  for (const [key, seq] of since) {
    const ref = parseBranchRef(key);
    if (typeof ref === 'string') continue;
    const ch = findBranch(ref, known);
    if (ch) ('id' in ref ? byId : byName).set(ch.id, seq);
  }
  for (const [id, seq] of byId) byName.set(id, seq);
  return byName;
}
