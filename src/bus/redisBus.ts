// The bus between instances over Redis (docs/redis.md, docs/operations.md).
//
// Every key is under `<redis.keyPrefix>:<deployment id>:`, the id the database was given when it
// was created (migration 012): instances of one database share state, and what another database
// left in Redis (a database recreated from nothing, a second deployment at the same prefix) is
// never read. Old keys are left alone; docs/redis.md says how to find them.
//
// Seat changes: one Lua script per change, atomically (1) skips it when the seat's last published
// state is the same and was published after this instance started following the branch (two
// instances noticing one booking start publish it once; a state published before is not in this
// instance's view, which came from the database, so repeating it tells someone something — after
// a backup was restored, say), (2) INCRs the branch's counter — one seq per branch across every
// instance — and (3) XADDs the change to the branch's stream with the entry id `<seq>-0`, trimmed
// to about retainEvents. Every instance reads all branch streams with XREAD BLOCK on a dedicated
// connection and delivers in stream order, its own changes included, so all instances deliver the
// same events with the same seqs in the same order; `since` resumes on any instance by XRANGE
// from `<since>-1`.
// Why streams and not PUBLISH: the stream is both the ordered feed and the retained history, and
// a reader that was away (a reconnect) continues from the last id it saw instead of losing events.
//
// Core facts (reservation changes, seat status, personal events) go by PUBLISH to the other
// instances; a fact missed while disconnected is recovered by reloading bookings from
// PostgreSQL, the truth, on reconnect.
//
// When Redis is unreachable, ioredis' offline queue is off, so nothing piles up inside it: this
// instance numbers its own changes locally and delivers them to its own subscribers at once, and
// keeps them (bounded by redis.offlineQueueMax, oldest dropped and counted) for the others. Of a
// seat's dropped changes the newest is still kept (one per seat, so bounded by the seats) and sent
// unless a queued change of that seat supersedes it: the others miss some history, never a
// seat's final state. When
// Redis is back: the counters are raised past any local seq, the queue is published, the events
// the others published meanwhile are applied quietly, and each branch numbered locally is resynced
// (its subscribers get a fresh snapshot with the shared seq). The resync reads the stream's tail,
// the counter and the seats' published states in one script: read apart, an entry another
// instance appended between the XRANGE and the GET was counted as seen and never delivered, and
// the two instances kept different seat states under the same seq for good.
//
// A Redis that comes back without its data (restarted without persistence, flushed) is told
// apart by its epoch: a random key the first instance to reach it sets. Every counter, stream and
// seat state went with the old one, so an instance that finds a new epoch treats every branch as
// numbered locally, reads the new streams from their start (not from the last id it read: an
// instance that reached the empty Redis first numbers from its own seq, or from 0 if it started
// there, below what this one has shown), and states again the seats its own sensors reported
// last, since a change the others had not read yet went with the old streams.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { CoreEvent } from '../core/events.js';
import type { LiveState, SeatChange, SeatEvent } from '../core/liveSeats.js';
import type { Logger } from '../obs/log.js';
import { stateKey, type BusHandlers, type BusStats, type EventBus } from './bus.js';

export interface RedisBusOptions {
  url: string;
  keyPrefix: string;
  retainEvents: number;
  offlineQueueMax: number;
  connectTimeoutMs: number;
  instanceId: string;
  log: Logger;
}

// KEYS: counter, stream, state hash. ARGV: seatId, stateKey, payload, retain, '1' to publish only
// if the seat has no published state at all (a seat stated again after a data loss: any state
// published since is newer than what this instance knew before it), and the seq this instance
// started following the branch at. The hash holds "<stateKey>|<seq it was published at>".
const PUBLISH_SCRIPT = `
local published = redis.call('HGET', KEYS[3], ARGV[1])
if published then
  if ARGV[5] == '1' then return 0 end
  local bar = string.find(published, '|[^|]*$')
  if bar and string.sub(published, 1, bar - 1) == ARGV[2] and (tonumber(string.sub(published, bar + 1)) or 0) > tonumber(ARGV[6]) then return 0 end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], seq .. '-0', 'e', ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. '|' .. seq)
return seq`;

// KEYS: counter, stream. ARGV: floor. Raises the counter to at least the stream's last id and the
// floor (a Redis that lost its data must not hand out seqs subscribers have already seen).
const ENSURE_SCRIPT = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if last[1] then
  local n = tonumber(string.match(last[1][1], '^(%d+)'))
  if n > cur then cur = n end
end
local floor = tonumber(ARGV[1])
if floor > cur then cur = floor end
redis.call('SET', KEYS[1], cur)
return cur`;

// KEYS: counter, stream, state hash. ARGV: start id, count, floor. One chunk of the stream from the
// start id and, in the same atomic step, the counter (raised to the floor, as ENSURE does); with the
// last chunk also every seat's published state, which is what every instance that has read the
// whole stream shows.
const RESYNC_SCRIPT = `
local entries = redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[3])
if floor > seq then
  seq = floor
  redis.call('SET', KEYS[1], seq)
end
if #entries < tonumber(ARGV[2]) then
  return {seq, entries, redis.call('HGETALL', KEYS[3])}
end
return {seq, entries}`;

// KEYS: epoch. ARGV: a new epoch. The epoch of this Redis's data, set by the first to ask.
const EPOCH_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])`;

/** Seat states published again at once after a data loss (one pipelined batch on the connection). */
const RESTATE_BATCH = 256;

/** Stream entries a resync reads per script call (the script blocks Redis while it runs). */
const RESYNC_CHUNK = 1000;

/**
 * The streams keep at least this many entries whatever retainEvents says: every instance's reader
 * must find the entries it has not read yet, even after a burst; `since` still only resumes
 * within retainEvents, like every bus.
 */
const STREAM_FLOOR = 10_000;

type Queued = { kind: 'seat'; change: SeatChange } | { kind: 'fact'; ev: CoreEvent };

type StreamEntries = Array<[string, string[]]>;

/** XREAD's reply: RESP2 gives [[key, entries], …]; RESP3 (ioredis 6 default) a map, flattened to [key, entries, …]. */
function streamPairs(reply: unknown): Array<[string, StreamEntries]> {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  if (typeof reply[0] === 'string' || Buffer.isBuffer(reply[0])) {
    const out: Array<[string, StreamEntries]> = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([String(reply[i]), reply[i + 1] as StreamEntries]);
    return out;
  }
  return reply as Array<[string, StreamEntries]>;
}

export class RedisBus implements EventBus {
  readonly kind = 'redis' as const;
  private readonly cmd: Redis;
  private readonly reader: Redis;
  private readonly sub: Redis;
  private handlers: BusHandlers | undefined;
  private branchIds: number[] = [];
  /** The last stream id read per branch, and the last seq delivered (local or shared). */
  private readonly lastId = new Map<number, string>();
  private readonly lastSeq = new Map<number, number>();
  /** Branches numbered locally while Redis was away. */
  private readonly diverged = new Set<number>();
  /**
   * Per branch, the seq this instance started following its stream at: its view of the states
   * published up to there came from the database, not from the stream (0 once a resync adopted
   * every published state).
   */
  private readonly viewSince = new Map<number, number>();
  /** `<keyPrefix>:<deployment id>`, set by start(). */
  private ns = '';
  /** The sequence space while this instance has never reached Redis: its own numbering. */
  private readonly localEpoch = `local-${randomBytes(8).toString('hex')}`;
  private queue: Queued[] = [];
  /** The newest dropped change per seat ("branch:seat"), oldest drop first. */
  private readonly overflow = new Map<string, SeatChange>();
  private up = false;
  /** The epoch of the Redis data this instance has read (undefined until it first reached Redis). */
  private epoch: string | undefined;
  /** Redis lost its data and our sensors' seat states are not published again yet (kept across a failed recovery). */
  private restatePending = false;
  private recovering: Promise<void> | undefined;
  private closed = false;
  private started = false;
  private readerLoop: Promise<void> | undefined;
  /** The reader connection's CLIENT ID, to cut its blocking XREAD short when the key list grows. */
  private readerClientId: number | undefined;
  private wakeReader: (() => void) | undefined;
  private readonly counters = { published: 0, delivered: 0, deduplicated: 0, dropped: 0, outages: 0 };

  constructor(private readonly opts: RedisBusOptions) {
    const common = {
      lazyConnect: true,
      // Never let commands pile up inside ioredis while Redis is away (STYLE pitfalls): fail fast.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: opts.connectTimeoutMs,
      retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
    };
    this.cmd = new Redis(opts.url, { ...common, connectionName: `carrel:${opts.instanceId}:cmd` });
    this.reader = new Redis(opts.url, { ...common, connectionName: `carrel:${opts.instanceId}:read`, autoResendUnfulfilledCommands: false });
    this.sub = new Redis(opts.url, { ...common, connectionName: `carrel:${opts.instanceId}:sub`, enableOfflineQueue: true });
    for (const c of [this.cmd, this.reader, this.sub]) c.on('error', () => undefined); // logged via 'close' below
    this.reader.on('ready', () => {
      this.readerClientId = undefined;
      this.reader.client('ID').then((id) => (this.readerClientId = Number(id)), () => undefined);
    });
    this.cmd.on('close', () => this.wentDown());
    this.cmd.on('ready', () => this.cameUp());
  }

  /**
   * The Redis data's epoch (a new one after Redis lost its data, and in every new deployment's
   * keys), or this instance's own until it first reaches Redis.
   */
  get seqEpoch(): string {
    return this.epoch ?? this.localEpoch;
  }

  private key(kind: 'seq' | 'events' | 'state', branchId: number): string {
    return `${this.ns}:${kind}:${branchId}`;
  }

  private get factChannel(): string {
    return `${this.ns}:facts`;
  }

  async start(branchIds: number[], handlers: BusHandlers, deploymentId: string): Promise<Map<number, number>> {
    // Ids are uuids; anything else would not keep deployments apart (or could reach into another key).
    if (!/^[0-9a-f-]{36}$/.test(deploymentId)) throw new Error(`RedisBus: bad deployment id ${JSON.stringify(deploymentId.slice(0, 64))}`);
    this.ns = `${this.opts.keyPrefix}:${deploymentId}`;
    this.handlers = handlers;
    this.branchIds = branchIds;
    this.cmd.defineCommand('carrelPublish', { numberOfKeys: 3, lua: PUBLISH_SCRIPT });
    this.cmd.defineCommand('carrelEnsure', { numberOfKeys: 2, lua: ENSURE_SCRIPT });
    this.cmd.defineCommand('carrelResync', { numberOfKeys: 3, lua: RESYNC_SCRIPT });
    this.cmd.defineCommand('carrelEpoch', { numberOfKeys: 1, lua: EPOCH_SCRIPT });
    this.sub.on('message', (_channel: string, message: string) => this.onFact(message));
    const seqs = new Map<number, number>();
    try {
      await Promise.all([this.cmd.connect(), this.reader.connect(), this.sub.connect()]);
      await this.sub.subscribe(this.factChannel);
      this.epoch = await this.claimEpoch();
      for (const id of branchIds) {
        const seq = Number(await this.ensure(id, 0));
        seqs.set(id, seq);
        this.lastSeq.set(id, seq);
        this.lastId.set(id, `${seq}-0`);
        this.viewSince.set(id, seq);
      }
      this.up = true;
    } catch (err) {
      // Start anyway and serve local events; the branches resync when Redis is reachable.
      this.opts.log.warn({ err: (err as Error).message }, 'Redis unreachable at start; serving local events until it is back');
      this.up = false;
      for (const id of branchIds) {
        seqs.set(id, 0);
        this.lastSeq.set(id, 0);
        this.lastId.set(id, '0-0');
        this.viewSince.set(id, 0);
        // Never in step with the shared numbering: resync once Redis is reachable.
        this.diverged.add(id);
      }
    }
    this.started = true;
    this.readerLoop = this.read();
    return seqs;
  }

  async addBranches(branchIds: number[]): Promise<Map<number, number>> {
    // A recovery walks this.branchIds and the diverged set: let a running one finish first.
    await this.recovering?.catch(() => undefined);
    const seqs = new Map<number, number>();
    for (const id of branchIds) {
      if (this.branchIds.includes(id)) {
        seqs.set(id, this.lastSeq.get(id) ?? 0);
        continue;
      }
      let seq = 0;
      try {
        if (!this.up) throw new Error('not connected');
        seq = Number(await this.ensure(id, 0));
      } catch {
        // Numbered locally until the resync after the reconnect, like a branch at a start without Redis.
        this.diverged.add(id);
      }
      seqs.set(id, seq);
      this.lastSeq.set(id, seq);
      this.lastId.set(id, `${seq}-0`);
      this.viewSince.set(id, seq);
      // The reader's next XREAD includes it, from here.
      this.branchIds.push(id);
    }
    // End the XREAD in flight (it would time out within its BLOCK of 1 s) so the next one starts now.
    if (this.up && this.readerClientId !== undefined) await this.cmd.client('UNBLOCK', this.readerClientId).catch(() => undefined);
    return seqs;
  }

  publishSeat(change: SeatChange): void {
    if (this.closed) return;
    // Stamped once: a change queued during an outage keeps the time it happened.
    change.publishedAtMs ??= Date.now();
    if (!this.up || this.recovering) return this.publishLocally(change);
    this.counters.published++;
    this.runPublish(change).catch(() => {
      // It may or may not have reached Redis; the resync after reconnect settles either way.
      this.publishLocally(change);
    });
  }

  publishFact(ev: CoreEvent): void {
    if (this.closed) return;
    if (!this.up || this.recovering) return this.enqueue({ kind: 'fact', ev });
    this.cmd.publish(this.factChannel, JSON.stringify({ origin: this.opts.instanceId, ev })).catch(() => this.enqueue({ kind: 'fact', ev }));
  }

  async history(branchId: number, afterSeq: number, limit: number): Promise<SeatEvent[] | null> {
    if (!this.up) return null;
    const newest = Number(await this.cmd.get(this.key('seq', branchId))) || 0;
    if (newest - afterSeq > this.opts.retainEvents) return null;
    const entries = (await this.cmd.call('XRANGE', this.key('events', branchId), `${afterSeq}-1`, '+', 'COUNT', String(Math.max(1, limit)))) as Array<[string, string[]]>;
    const events = entries.map(([id, fields]) => parseEntry(id, fields, branchId)).filter((e): e is SeatEvent => e !== null);
    if (events.length > 0 && events[0]!.seq !== afterSeq + 1) return null;
    return events;
  }

  stats(): BusStats {
    return { kind: 'redis', connected: this.up, ...this.counters, queued: this.queue.length + this.overflow.size };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakeReader?.();
    this.reader.disconnect();
    this.sub.disconnect();
    await this.cmd.quit().catch(() => this.cmd.disconnect());
    await this.readerLoop?.catch(() => undefined);
  }

  /** `onlyUnpublished`: skip it when the seat has any published state (a seat stated again after a data loss). */
  private runPublish(change: SeatChange, onlyUnpublished = false): Promise<unknown> {
    const b = change.branchId;
    return (this.cmd as unknown as { carrelPublish(...args: Array<string | number>): Promise<unknown> })
      .carrelPublish(
        this.key('seq', b),
        this.key('events', b),
        this.key('state', b),
        change.seatId,
        stateKey(change),
        JSON.stringify(change),
        Math.max(this.opts.retainEvents, STREAM_FLOOR),
        onlyUnpublished ? '1' : '0',
        this.viewSince.get(b) ?? 0,
      )
      .then((seq) => {
        if (Number(seq) === 0) this.counters.deduplicated++;
      });
  }

  private async claimEpoch(): Promise<string> {
    const run = (this.cmd as unknown as { carrelEpoch(...args: string[]): Promise<unknown> }).carrelEpoch;
    return String(await run.call(this.cmd, `${this.ns}:epoch`, randomBytes(8).toString('hex')));
  }

  private ensure(branchId: number, floor: number): Promise<unknown> {
    return (this.cmd as unknown as { carrelEnsure(...args: Array<string | number>): Promise<unknown> }).carrelEnsure(
      this.key('seq', branchId),
      this.key('events', branchId),
      floor,
    );
  }

  /** Redis is away: number the change here, deliver it to our own subscribers, keep it for the others. */
  private publishLocally(change: SeatChange): void {
    const seq = (this.lastSeq.get(change.branchId) ?? 0) + 1;
    this.lastSeq.set(change.branchId, seq);
    this.diverged.add(change.branchId);
    this.enqueue({ kind: 'seat', change });
    this.counters.delivered++;
    this.handlers?.seat({ ...change, seq }, false);
  }

  private enqueue(item: Queued): void {
    if (this.queue.length >= this.opts.offlineQueueMax) {
      const old = this.queue.shift()!;
      this.counters.dropped++;
      if (old.kind === 'seat') {
        const key = seatKey(old.change);
        this.overflow.delete(key);
        this.overflow.set(key, old.change);
      }
    }
    this.queue.push(item);
  }

  private onFact(message: string): void {
    let parsed: { origin?: unknown; ev?: CoreEvent };
    try {
      parsed = JSON.parse(message) as { origin?: unknown; ev?: CoreEvent };
    } catch {
      return;
    }
    if (parsed.origin === this.opts.instanceId || !parsed.ev) return;
    this.handlers?.fact(parsed.ev);
  }

  private wentDown(): void {
    if (!this.up || this.closed) return;
    this.up = false;
    this.counters.outages++;
    this.opts.log.warn('Redis connection lost; serving local events until it is back');
  }

  private cameUp(): void {
    if (this.up || this.closed || !this.started || this.recovering) return;
    this.recovering = this.recover()
      .then(() => {
        this.up = true;
        this.opts.log.info({ resent: this.counters.published }, 'Redis is back; events caught up');
      })
      .catch((err: unknown) => {
        this.opts.log.warn({ err: (err as Error).message }, 'catching up with Redis failed; will retry on the next reconnect');
        this.cmd.disconnect(true);
      })
      .finally(() => {
        this.recovering = undefined;
        this.wakeReader?.();
      });
  }

  private async recover(): Promise<void> {
    // 0. Did Redis keep its data? A new epoch: the streams we read are gone, the new ones start over.
    const epoch = await this.claimEpoch();
    const lost = this.epoch !== undefined && epoch !== this.epoch;
    this.epoch = epoch;
    if (lost) {
      this.opts.log.warn('Redis came back without its data; resyncing every branch from the new streams');
      this.restatePending = true;
      for (const id of this.branchIds) {
        this.diverged.add(id);
        this.lastId.set(id, '0-0');
      }
    }
    // 1. Never hand out a seq our subscribers have already seen.
    for (const id of this.branchIds) await this.ensure(id, this.lastSeq.get(id) ?? 0);
    // Changes made while this runs are numbered locally too, so go round until none are left.
    while (this.queue.length > 0 || this.overflow.size > 0 || this.diverged.size > 0) {
      // 2. What happened here goes to the others, in order.
      const queued = this.queue;
      this.queue = [];
      // A seat's dropped change goes first, unless one of its queued changes (newer) supersedes it.
      const overflow = [...this.overflow.values()];
      this.overflow.clear();
      if (overflow.length > 0) {
        const superseded = new Set(queued.flatMap((item) => (item.kind === 'seat' ? [seatKey(item.change)] : [])));
        for (const change of overflow) if (!superseded.has(seatKey(change))) await this.runPublish(change);
      }
      for (const item of queued) {
        if (item.kind === 'seat') await this.runPublish(item.change);
        else await this.cmd.publish(this.factChannel, JSON.stringify({ origin: this.opts.instanceId, ev: item.ev }));
      }
      // After a data loss, the seats our sensors reported last, as they are now — those nobody has
      // published anything for since (that would be newer; our own changes of the outage went just
      // above). Before the resync, so the instances resyncing apply them quietly.
      if (this.restatePending) {
        const now = Date.now();
        const own = this.handlers!.ownStates().filter((c) => this.branchIds.includes(c.branchId));
        for (let i = 0; i < own.length; i += RESTATE_BATCH) {
          await Promise.all(own.slice(i, i + RESTATE_BATCH).map((c) => this.runPublish({ ...c, publishedAtMs: now }, true)));
        }
        this.restatePending = false;
      }
      // 3. Branches numbered locally: apply what the others published quietly, then resync.
      for (const id of [...this.diverged]) await this.resyncBranch(id);
    }
    // 4. Facts published while we were away are lost to us; the live model reloads from the truth.
    this.handlers!.reconnected();
  }

  /**
   * Applies quietly what the branch's stream holds after the last id read, then adopts the shared
   * seq and the seats' published states. Every chunk is read with the counter in one script, and
   * the last one also with the state hash, so the seq adopted covers exactly the entries applied.
   */
  private async resyncBranch(id: number): Promise<void> {
    const resync = (this.cmd as unknown as { carrelResync(...args: Array<string | number>): Promise<[unknown, StreamEntries, string[]?]> }).carrelResync;
    for (;;) {
      const [counter, entries, state] = await resync.call(
        this.cmd,
        this.key('seq', id),
        this.key('events', id),
        this.key('state', id),
        this.afterId(id),
        RESYNC_CHUNK,
        this.lastSeq.get(id) ?? 0,
      );
      let last = 0;
      for (const [entryId, fields] of entries) {
        const ev = parseEntry(entryId, fields, id);
        if (ev) {
          this.handlers!.seat(ev, true);
          last = ev.seq;
        }
        this.lastId.set(id, entryId);
      }
      if (!state) continue; // a full chunk: more to read
      const seq = Math.max(Number(counter) || 0, last);
      this.lastId.set(id, `${seq}-0`);
      this.lastSeq.set(id, seq);
      this.diverged.delete(id);
      // The subscribers' view takes every published state now: none is older than it any more.
      this.viewSince.set(id, 0);
      this.handlers!.resync(id, seq, parseStates(state));
      return;
    }
  }

  /** The XRANGE start just after the last id read. */
  private afterId(branchId: number): string {
    const [ms, n] = (this.lastId.get(branchId) ?? '0-0').split('-');
    return `${ms}-${Number(n) + 1}`;
  }

  private async read(): Promise<void> {
    while (!this.closed) {
      if (!this.up || this.recovering) {
        await new Promise<void>((resolve) => {
          this.wakeReader = resolve;
          setTimeout(resolve, 200).unref();
        });
        continue;
      }
      try {
        const keys = this.branchIds.map((id) => this.key('events', id));
        const ids = this.branchIds.map((id) => this.lastId.get(id) ?? '0-0');
        const reply = await this.reader.call('XREAD', 'COUNT', '1000', 'BLOCK', '1000', 'STREAMS', ...keys, ...ids);
        if (!reply || this.closed || this.recovering) continue;
        for (const [key, entries] of streamPairs(reply)) {
          const branchId = Number(key.slice(key.lastIndexOf(':') + 1));
          // A branch mid-resync is caught up by recover(), not here.
          if (this.diverged.has(branchId)) continue;
          for (const [entryId, fields] of entries) {
            const ev = parseEntry(entryId, fields, branchId);
            // A reply that raced a recovery may repeat what was already applied: skip it.
            if (!ev || ev.seq <= (this.lastSeq.get(branchId) ?? 0)) continue;
            this.lastId.set(branchId, entryId);
            this.lastSeq.set(branchId, ev.seq);
            this.counters.delivered++;
            this.handlers?.seat(ev, false);
          }
        }
      } catch {
        if (this.closed) return;
        // The reader's own connection dropped or is reconnecting: wait a little and try again.
        await new Promise((r) => setTimeout(r, 100).unref());
      }
    }
  }
}

function seatKey(change: SeatChange): string {
  return `${change.branchId}:${change.seatId}`;
}

/** HGETALL of a branch's state hash (seatId → "stateKey|seq") as seat → published state and flags. */
function parseStates(flat: string[]): Map<number, { state: LiveState; flags: number }> {
  const out = new Map<number, { state: LiveState; flags: number }>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [state, flags] = String(flat[i + 1]).split('|');
    const seatId = Number(flat[i]);
    if (Number.isSafeInteger(seatId) && LIVE_STATES.has(state as LiveState)) out.set(seatId, { state: state as LiveState, flags: Number(flags) || 0 });
  }
  return out;
}

const LIVE_STATES: ReadonlySet<LiveState> = new Set(['free', 'reserved', 'occupied', 'away', 'unavailable']);

function parseEntry(id: string, fields: string[], branchId: number): SeatEvent | null {
  const seq = Number(id.slice(0, id.indexOf('-')));
  const i = fields.indexOf('e');
  if (i < 0 || !Number.isSafeInteger(seq)) return null;
  try {
    const change = JSON.parse(fields[i + 1]!) as SeatChange;
    if (change.branchId !== branchId) return null;
    return { ...change, seq };
  } catch {
    return null;
  }
}
