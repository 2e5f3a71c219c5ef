// seats.list (docs/protocol.md, "`seats.list`"), the hottest read: one SQL statement per call,
// prepared by name so PostgreSQL parses and plans it once per connection, and the serialised answer
// cached per (filter, window, current slot) until a change in that branch invalidates it.
//
// Why a cache is safe here: apart from `live` (below), a listing depends on the clock only through
// the default window (the current slot and the hour after it). Bookings start and
// end on slot boundaries (check-out rounds its end up to one), so within one slot the answer
// changes only when a reservation or a seat changes, and every such change is announced on the
// core event sink after it commits. A booking's reply is sent after that announcement, so the
// very next search sees it (freshness). Events from other instances must reach `invalidate`
// too (the event bus wires that).
//
// The cache is bounded by entries and by bytes (discovery.seatListCacheMaxEntries / MaxBytes)
// and evicts the least recently used: any client may ask for any window, and a branch of 2,000
// seats lists to ~300 KB, so a count alone would let arbitrary windows pin hundreds of MB.
// An entry found stale (its branch changed, its slot passed) is dropped when met.
//
// A scan cannot flush it (docs/fairness.md): windows are widened to slot boundaries first (a
// booking is slot-aligned, so it overlaps a window exactly when it overlaps the widened one, and
// equal windows share one entry), and a listing is stored only on the second miss of its key
// within the last maxEntries distinct keys seen (a doorkeeper, as in TinyLFU): a stream of
// one-off windows passes through without evicting what other clients keep asking for.
// Concurrent misses of one key share a single read, unless an event arrived since it began.
//
// Invalidation is by generation, not by deleting entries: each branch has a counter bumped by
// its events, and a global counter bumped by every event. An entry records the counter that
// was current when its query began; a query during which any event arrived is not stored, so
// a listing read before a commit can never be cached after that commit's invalidation.
//
// `live` is the live model's (LiveView, sensors included); the SQL reads no live state. A row
// naming a seat the model does not know yet (added since start) makes the model look for it first.
// A sensor changes `live` without any event here, so an entry also records the live version of
// its scope (LiveView.version) and is stale once that moved; the booking generation, which the
// branch rows cache keys on, does not move with readings (docs/fairness.md).
import type { Db } from '../db/db.js';
import type { Deadline } from '../deadline.js';
import type { Clock } from './clock.js';
import type { CoreEvent } from './events.js';
import { RawJson } from './rawJson.js';
import { ACTIVE_STATUSES_SQL } from './events.js';
import type { LiveState } from './liveSeats.js';
import { CarrelError, ErrorCode } from '../errors.js';
import { floorToSlot, type RulesConfig } from './rules.js';
import type { LiveView } from './liveView.js';
import type { SeatWire } from '../wire/types.js';
import { branchIdByNameSql } from './branchRef.js';

export interface SeatFilter {
  seatId?: number;
  branchId?: number;
  branchName?: string;
  area?: string;
  hasPower?: boolean;
  hasMonitor?: boolean;
  availableOnly?: boolean;
  startMs?: number;
  endMs?: number;
}

interface SeatRow {
  id: number;
  branch_id: number;
  branch: string;
  area: string;
  label: string;
  has_power: boolean;
  has_monitor: boolean;
  status: 'IN_SERVICE' | 'OUT_OF_SERVICE';
  available: boolean;
}

export interface SeatListingOptions {
  db: Db;
  clock: Clock;
  rules: RulesConfig;
  cache: { enabled: boolean; maxEntries: number; maxBytes: number };
  /** Every seat's `live`: the live model's answers. */
  live: LiveView;
}

interface CacheEntry {
  raw: RawJson;
  /** The branch whose events invalidate this entry; null: any event does. */
  scope: number | null;
  gen: number;
  /** LiveView.version(scope) when its read began. */
  liveVersion: number;
}

const HOUR = 3600_000;

// Filters present → bit in the statement name, so each combination gets its own prepared
// statement and a plan that uses the right index (no `$1 IS NULL OR …` generic plans). Each is
// the condition on its parameter; a branch name names a branch as every lookup does (branchRef.ts).
const FILTERS = [
  ['seatId', (p: string) => `s.id = ${p}::int`],
  ['branchId', (p: string) => `s.branch_id = ${p}::int`],
  ['branchName', (p: string) => `s.branch_id = ${branchIdByNameSql(p)}`],
  ['area', (p: string) => `s.area = ${p}::text`],
  ['hasPower', (p: string) => `s.has_power = ${p}::boolean`],
  ['hasMonitor', (p: string) => `s.has_monitor = ${p}::boolean`],
] as const;

export class SeatListing {
  private readonly statements = new Map<number, string>();
  private readonly cache = new Map<string, CacheEntry>();
  /** Keys missed once and not stored yet, oldest first; at most cache.maxEntries of them. */
  private readonly seenOnce = new Set<string>();
  /** Reads under way by key, with the generation they began in. */
  private readonly reading = new Map<string, { gen: number; raw: Promise<RawJson> }>();
  private readonly branchGen = new Map<number, number>();
  private globalGen = 0;
  /** Bumped by bookings and seat changes only (not readings): what `generation` reports. */
  private bookingGen = 0;
  private cachedBytes = 0;
  /** Counters for server.stats and the tests. */
  readonly stats = { hits: 0, misses: 0, invalidations: 0, evictions: 0 };

  constructor(private readonly opts: SeatListingOptions) {}

  /** Advances whenever any listing may have changed; other caches of seat state key on it. */
  get generation(): number {
    return this.bookingGen;
  }

  /**
   * The window a listing is computed for, widened to slot boundaries: the given one, else the
   * current slot + 1 h. INVALID_ARGUMENT when it ends before it starts.
   */
  window(filter: SeatFilter): { startMs: number; endMs: number } {
    const slotMinutes = this.opts.rules.slotMinutes;
    const start = filter.startMs ?? this.opts.clock.now();
    const startMs = floorToSlot(start, slotMinutes);
    const end = filter.endMs ?? startMs + HOUR;
    if (end <= start) throw new CarrelError(ErrorCode.INVALID_ARGUMENT, 'end must be after start');
    return { startMs, endMs: floorToSlot(end + slotMinutes * 60_000 - 1, slotMinutes) };
  }

  /** What the cache holds now. */
  cacheSize(): { entries: number; bytes: number } {
    return { entries: this.cache.size, bytes: this.cachedBytes };
  }

  /**
   * The listing as pre-encoded JSON: a cached one keeps its UTF-8 bytes for every reply, and is
   * returned synchronously (no promise, no microtask: the reply goes out in the same turn).
   */
  list(filter: SeatFilter, deadline?: Deadline): RawJson | Promise<RawJson> {
    const nowMs = this.opts.clock.now();
    const { startMs, endMs } = this.window(filter);
    if (!this.opts.cache.enabled || filter.seatId !== undefined) return this.read(filter, startMs, endMs, deadline, undefined);
    const slot = floorToSlot(nowMs, this.opts.rules.slotMinutes);
    const key = `${filter.branchId ?? ''}|${filter.branchName ?? ''}|${filter.area ?? ''}|${flag(filter.hasPower)}|${flag(filter.hasMonitor)}|${filter.availableOnly ? 1 : 0}|${startMs}|${endMs}|${slot}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      if (hit.gen === this.genOf(hit.scope) && hit.liveVersion === this.liveVersion(hit.scope)) {
        this.cache.set(key, hit); // most recently used: to the end of the Map's order
        this.stats.hits++;
        return hit.raw;
      }
      this.cachedBytes -= hit.raw.bytes.length;
    }
    this.stats.misses++;
    const under = this.reading.get(key);
    if (under && under.gen === this.globalGen) {
      // Someone else's read of the same key: its answer if it succeeds, else a read of our own
      // (its failure — its deadline, its client's refusal — is not ours).
      return under.raw.catch(() => this.read(filter, startMs, endMs, deadline, undefined));
    }
    // A key that was stored and went stale has proved itself already.
    const admit = hit !== undefined || this.seenOnce.delete(key);
    if (!admit) {
      this.seenOnce.add(key);
      if (this.seenOnce.size > this.opts.cache.maxEntries) this.seenOnce.delete(this.seenOnce.values().next().value!);
    }
    const read = this.read(filter, startMs, endMs, deadline, admit ? key : undefined);
    const entry = { gen: this.globalGen, raw: read };
    this.reading.set(key, entry);
    const done = () => {
      if (this.reading.get(key) === entry) this.reading.delete(key);
    };
    read.then(done, done);
    return read;
  }

  /** Reads the listing from PostgreSQL; with a cache key, stores it unless an event came meanwhile. */
  private async read(filter: SeatFilter, startMs: number, endMs: number, deadline: Deadline | undefined, storeAs: string | undefined): Promise<RawJson> {
    const genBefore = this.globalGen;
    const rows = await this.rows(filter, startMs, endMs, deadline);
    // The live states are taken now, after the rows: the entry keys on the live version of now.
    const scope = filter.branchId ?? (filter.branchName !== undefined && rows[0] ? rows[0].branch_id : null);
    const liveVersion = this.liveVersion(scope);
    const raw = new RawJson(JSON.stringify(rows.map((r) => this.toWire(r))));
    if (storeAs !== undefined && this.globalGen === genBefore) this.store(storeAs, raw, scope, liveVersion);
    return raw;
  }

  /**
   * Keeps a listing, evicting the least recently used past either bound. `scope` is the branch
   * whose events invalidate it; an empty listing by branch name says nothing about which branch
   * it is (a cancel anywhere could fill it), so it is scoped to all (null).
   */
  private store(key: string, raw: RawJson, scope: number | null, liveVersion: number): void {
    const maxBytes = this.opts.cache.maxBytes;
    const size = raw.bytes.length;
    if (size > maxBytes) return;
    const old = this.cache.get(key); // a concurrent miss of the same key stored it meanwhile
    if (old) {
      this.cache.delete(key);
      this.cachedBytes -= old.raw.bytes.length;
    }
    for (const [k, e] of this.cache) {
      if (this.cache.size < this.opts.cache.maxEntries && this.cachedBytes + size <= maxBytes) break;
      this.cache.delete(k);
      this.cachedBytes -= e.raw.bytes.length;
      this.stats.evictions++;
    }
    this.cache.set(key, { raw, scope, gen: this.genOf(scope), liveVersion });
    this.cachedBytes += size;
  }

  /** One seat as seats.get shows it, or null. */
  async get(seatId: number, deadline?: Deadline): Promise<SeatWire | null> {
    const { startMs, endMs } = this.window({});
    const rows = await this.rows({ seatId }, startMs, endMs, deadline);
    return rows[0] ? this.toWire(rows[0]) : null;
  }

  private genOf(scope: number | null): number {
    return scope === null ? this.globalGen : (this.branchGen.get(scope) ?? 0);
  }

  private liveVersion(scope: number | null): number {
    return this.opts.live.version(scope);
  }

  /** A row on the wire, its `live` the live model's (rows() made sure the model knows the seat). */
  private toWire(r: SeatRow): SeatWire {
    return {
      id: r.id,
      branch: r.branch,
      area: r.area,
      label: r.label,
      hasPower: r.has_power,
      hasMonitor: r.has_monitor,
      status: r.status,
      available: r.available,
      live: this.opts.live.stateOf(r.id) as LiveState,
    };
  }

  /** Forgets every listing that involves the branch. */
  invalidate(branchId: number): void {
    this.bookingGen++;
    this.globalGen++;
    this.branchGen.set(branchId, (this.branchGen.get(branchId) ?? 0) + 1);
    this.stats.invalidations++;
  }

  /** Wire to the core event sink: reservation and seat changes invalidate their branch. */
  onCoreEvent = (event: CoreEvent): void => {
    if (event.type === 'reservation') this.invalidate(event.reservation.branchId);
    else if (event.type === 'seatStatus') this.invalidate(event.branchId);
  };

  /** The rows, every one a seat the live model knows (it looks for seats added since start). */
  private async rows(filter: SeatFilter, startMs: number, endMs: number, deadline?: Deadline): Promise<SeatRow[]> {
    const mark = this.opts.live.lookMark;
    let mask = 0;
    const values: unknown[] = [new Date(startMs), new Date(endMs)];
    FILTERS.forEach(([field], i) => {
      const v = filter[field];
      if (v !== undefined) {
        mask |= 1 << i;
        values.push(v);
      }
    });
    if (filter.availableOnly) mask |= 1 << FILTERS.length;
    const res = await this.opts.db.query<SeatRow>({ name: `carrel.seats.list.${mask}`, text: this.statementText(mask), values }, deadline);
    await this.opts.live.known(res.rows.map((r) => r.id), mark);
    return res.rows;
  }

  private statementText(mask: number): string {
    let text = this.statements.get(mask);
    if (text) return text;
    const where: string[] = [];
    let n = 3;
    FILTERS.forEach(([, condition], i) => {
      if (mask & (1 << i)) where.push(condition(`$${n++}`));
    });
    const availableOnly = (mask & (1 << FILTERS.length)) !== 0;
    // A window is available when booking exactly it would pass the exclusion constraint:
    // no active hold overlaps it extended by the branch's own cleaning buffer.
    text = `SELECT * FROM (
      SELECT s.id, s.branch_id, b.name AS branch, s.area, s.label, s.has_power, s.has_monitor, s.status,
        s.status = 'IN_SERVICE' AND NOT EXISTS (
          SELECT 1 FROM reservations r
          WHERE r.seat_id = s.id AND r.status IN ${ACTIVE_STATUSES_SQL}
            AND r.hold && tstzrange($1::timestamptz, $2::timestamptz + make_interval(mins => b.padding_minutes))
        ) AS available
      FROM seats s JOIN branches b ON b.id = s.branch_id
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ) x ${availableOnly ? 'WHERE x.available' : ''}
    ORDER BY x.id`;
    this.statements.set(mask, text);
    return text;
  }
}

function flag(v: boolean | undefined): string {
  return v === undefined ? '' : v ? '1' : '0';
}
