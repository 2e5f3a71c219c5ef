// `carrel watch <branch>` (docs/protocol.md): a live view of a branch. For people (stdout a TTY): a
// compact seat map grouped by area with counts, redrawn in place with ANSI codes; `l` shows the
// seats' labels instead of glyphs (finding G-13 without counting), `q` quits. For programs
// (--json): one JSON line per frame received. Otherwise: one plain line per change. After a
// disconnect (server restart, SLOW_CONSUMER) it reconnects with backoff and resumes with `since`
// and the epoch the seqs count in; when the server can no longer resume (or its sequence
// restarted: docs/redis.md), the fresh snapshot it sends replaces the view.
// With a token (by default the one `carrel login` remembered for this server) it also shows the
// watcher's personal events. A waitlist offer stays on screen until it is claimed, lapses or its
// claim-by time passes, with what `carrel waitlist claim` needs: the entry id. A seat whose
// sensor went offline keeps its last known state, marked. A branch name the server does not
// know is answered with the names it does know. Stopping is the caller's: `signal`.
import type { SubscribeArgs } from '../src/wire/args.js';
import type { PersonalFrame, SnapshotSeat, SubscriberFrame } from '../src/wire/types.js';
import { FramedSocket, backoffMs, sleep, type Frame } from './framedSocket.js';
import { parseServer } from './rpcClient.js';
import { formatRange, formatTime } from './timeInput.js';

export interface WatchOptions {
  branch: string;
  server: string;
  json: boolean;
  token?: string;
  /** Where the token came from, for the message when the server refuses it. */
  tokenFrom?: 'flag' | 'remembered';
  /** Stop after this many seconds (tests, scripts); default: until interrupted. */
  durationSec?: number;
  out?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Keys typed at the seat map (`l`, `q`), when it is a terminal: process.stdin for the command. */
  input?: NodeJS.ReadStream;
  /** Start with labels shown instead of glyphs. */
  labels?: boolean;
  /** The branches' time zones by id, for offers' times; until it resolves (or without it), this machine's zone, marked. */
  branchZones?: Promise<Map<number, string>>;
  /** Offers made before the watch began (waitlist.mine): shown as those that arrive while it runs. */
  offers?: Promise<OfferView[]>;
  /** Ends the watch (Ctrl-C): the connection closes, the cursor comes back, watch() resolves. */
  signal?: AbortSignal;
}

export interface BranchView {
  id: number;
  name: string;
  seq: number;
  /** The sequence space `seq` counts in, as the snapshot named it. */
  epoch?: string;
  seats: Map<number, SnapshotSeat>;
}

/** A waitlist offer to the watcher, as long as it may be claimed. */
export interface OfferView {
  waitlistId: number;
  reservationId: number;
  seatId: number;
  branchId: number;
  start: string;
  end: string;
  expiresAt: string;
  /**
   * When it lapses by this machine's clock: the time left at the event (offerExpiresAt − at, both
   * the server's) from when it arrived, so a clock here that is off does not drop it early or late.
   */
  lapsesAtMs: number;
}

export interface ViewOptions {
  columns: number;
  labels: boolean;
  offers: OfferView[];
  zoneOf: (branchId: number) => string | undefined;
}

const COLOR: Record<string, string> = { free: '32', reserved: '33', occupied: '31', away: '36', unavailable: '90' };
const CHAR: Record<string, string> = { free: '·', reserved: 'r', occupied: '■', away: 'a', unavailable: 'x' };
/** Grey background: the sensor is offline, the glyph is the last state known. */
const OFFLINE_BG = '100';

/** Resolves with the exit code: 0 when stopped or done, 1 when the server refused the subscription. */
export async function watch(opts: WatchOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const tty = !opts.json && out.isTTY === true;
  const plain = !tty && !opts.json;
  const { host, port } = parseServer(opts.server, 9002);
  const branches = new Map<number, BranchView>();
  const offers = new Map<number, OfferView>();
  const zones = new Map<number, string>();
  const endAt = opts.durationSec ? Date.now() + opts.durationSec * 1000 : Infinity;
  let status = 'connecting';
  let lastEvent = '';
  let labels = opts.labels === true;
  let redrawPending = false;
  let attempt = 0;
  let stop = false;
  let token = opts.token;
  let subscribed = false;
  let exitCode = 0;
  /** Said once more after the map is gone, so a refusal is never lost with the screen. */
  let farewell = '';
  let conn: FramedSocket | undefined;
  const halt = new AbortController();
  const onAbort = (): void => {
    stop = true;
    halt.abort();
    conn?.close();
  };
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  void opts.branchZones?.then(
    (m) => {
      for (const [id, z] of m) zones.set(id, z);
      redraw();
    },
    () => undefined,
  );
  const zoneOf = (branchId: number): string | undefined => zones.get(branchId);
  /** Earlier offers not yet printed as lines: they wait for the snapshot, which names their seats. */
  const untold: OfferView[] = [];
  const tellOffers = (): void => {
    if (branches.size === 0) return;
    for (const o of untold.splice(0)) out.write(`for you: ${offerText(o, seatName(o.branchId, o.seatId), zoneOf(o.branchId))}\n`);
  };
  void opts.offers?.then(
    async (list) => {
      // Worded once the zones are known (or known not to be), like an offer that arrives.
      await opts.branchZones?.catch(() => undefined);
      for (const o of list) {
        if (offers.has(o.waitlistId)) continue;
        offers.set(o.waitlistId, o);
        if (plain) untold.push(o);
      }
      tellOffers();
      redraw();
    },
    () => undefined,
  );

  const screen = (): string =>
    render([...branches.values()], status, lastEvent, { columns: out.columns ?? 100, labels, offers: liveOffers(offers, Date.now()), zoneOf });
  const redraw = (): void => {
    if (!tty || redrawPending) return;
    redrawPending = true;
    setTimeout(() => {
      redrawPending = false;
      if (!stop) out.write(`\x1b[H\x1b[2J${screen()}`);
    }, 100).unref();
  };

  const seatName = (branchId: number, seatId: number): string => {
    const b = branches.get(branchId);
    const seat = b?.seats.get(seatId);
    return seat ? `seat ${seat.label} (${b!.name})` : `seat ${seatId}`;
  };

  const onPersonal = (f: PersonalFrame): void => {
    const r = f.reservation;
    const waitlistId = Number(f.waitlistId);
    switch (f.kind) {
      case 'offer': {
        const offer: OfferView = {
          waitlistId,
          reservationId: r.id,
          seatId: r.seatId,
          branchId: r.branchId,
          start: r.start,
          end: r.end,
          expiresAt: String(f.offerExpiresAt),
          lapsesAtMs: Date.now() + (Date.parse(String(f.offerExpiresAt)) - (Date.parse(f.at) || Date.now())),
        };
        offers.set(waitlistId, offer);
        lastEvent = `for you: ${offerText(offer, seatName(offer.branchId, offer.seatId), zoneOf(offer.branchId))}`;
        break;
      }
      case 'offerExpired':
        offers.delete(waitlistId);
        lastEvent = `for you: the offer on waitlist entry ${waitlistId} lapsed`;
        break;
      case 'noShow':
        lastEvent = `for you: reservation ${r.id} (${seatName(r.branchId, r.seatId)}) was marked no-show`;
        break;
      case 'released':
        lastEvent = `for you: reservation ${r.id} (${seatName(r.branchId, r.seatId)}) was checked out: the seat stayed empty`;
        break;
      default:
        lastEvent = `for you: ${String(f.kind)} (reservation ${r.id})`;
    }
    if (plain) out.write(`${lastEvent}\n`);
  };

  const onFrame = (frame: Frame): void => {
    if (opts.json) out.write(`${JSON.stringify(frame)}\n`);
    // The server's frames, as the wire module describes them (src/wire/types.ts).
    const f = frame as unknown as SubscriberFrame;
    switch (f.type) {
      case 'subscribed':
        subscribed = true;
        status = `live on ${host}:${port}${f.resumed === true ? ' (resumed)' : ''}${f.personal === true ? ', with your personal events' : ''}`;
        attempt = 0;
        break;
      case 'snapshot': {
        const b: BranchView = { id: f.branchId, name: f.branch, seq: f.seq, seats: new Map() };
        if (typeof f.epoch === 'string') b.epoch = f.epoch;
        for (const s of f.seats) b.seats.set(s.seatId, s);
        branches.set(b.id, b);
        const fresh = f.reason === 'seqReset' ? ' (fresh: the server\'s sequence restarted)' : f.fresh ? ' (fresh: could not resume)' : '';
        if (plain) out.write(`${b.name}: snapshot at seq ${b.seq}${fresh}, ${b.seats.size} seats\n`);
        tellOffers();
        break;
      }
      case 'seat': {
        const b = branches.get(f.branchId);
        if (!b) break;
        const seat = b.seats.get(f.seatId);
        if (seat) {
          seat.state = f.state;
          seat.flags = f.flags ?? {};
        }
        b.seq = f.seq;
        lastEvent = `#${b.seq} ${seat?.label ?? f.seatId} → ${f.state} (${f.cause})`;
        if (plain) out.write(`${b.name} ${lastEvent}${flagText(seat?.flags)}\n`);
        break;
      }
      case 'personal':
        onPersonal(f);
        break;
      case 'error': {
        status = `server said ${String(f.code)}: ${String(f.message)}`;
        if (f.code === 'UNAUTHENTICATED' && subscribed) {
          // The token expired while watching: the seats keep coming; personal events stopped.
          token = undefined;
        } else if (f.code === 'NOT_FOUND' || f.code === 'UNAUTHENTICATED' || f.code === 'INVALID_ARGUMENT') {
          if (f.code === 'UNAUTHENTICATED' && opts.tokenFrom === 'remembered') {
            status += ' (the token `carrel login` remembered for this server; log in again, or watch without it: --no-token)';
          }
          stop = true;
          exitCode = 1;
          farewell = status;
          conn?.close();
        }
        if (plain && f.code !== 'NOT_FOUND') out.write(`${status}\n`);
        break;
      }
      default:
        break;
    }
    redraw();
  };

  const keys = tty && opts.input?.isTTY === true ? opts.input : undefined;
  const onKey = (chunk: Buffer): void => {
    const key = chunk.toString();
    if (key === 'l' || key === 'L') {
      labels = !labels;
      redraw();
    } else if (key === 'q' || key === 'Q' || key === '\x03') {
      // In raw mode Ctrl-C is a key, not a signal.
      onAbort();
    }
  };
  if (keys) {
    keys.setRawMode(true);
    keys.resume();
    keys.on('data', onKey);
  }
  // Offers leave the screen when their claim-by time passes, without an event to say so.
  const ticker = tty ? setInterval(() => offers.size > 0 && redraw(), 1000) : undefined;
  ticker?.unref();

  if (tty) out.write('\x1b[?25l');
  while (!stop && Date.now() < endAt) {
    let closed!: () => void;
    const whenClosed = new Promise<void>((r) => (closed = r));
    try {
      const c = (conn = await FramedSocket.connect(host, port, onFrame, () => closed()));
      subscribed = false;
      const since = resumeFrom(branches, opts.branch);
      const epoch = since === undefined ? undefined : [...branches.values()].find((b) => b.epoch !== undefined)?.epoch;
      // Stopped while connecting: close instead of subscribing.
      if (stop) c.close();
      else {
        // A branch as typed: the server reads digits as an id, anything else as a name (src/wire/branchRef.ts).
        const subscribe: SubscribeArgs = { type: 'subscribe', branch: opts.branch, ...(token ? { token } : {}), ...(since === undefined ? {} : { since }), ...(epoch === undefined ? {} : { epoch }) };
        c.send(subscribe);
      }
      const timer = Number.isFinite(endAt) ? setTimeout(() => c.close(), Math.max(0, endAt - Date.now())) : undefined;
      await whenClosed;
      conn = undefined;
      if (timer) clearTimeout(timer);
    } catch (err) {
      status = `cannot connect: ${(err as Error).message}`;
    }
    if (stop || Date.now() >= endAt) break;
    const wait = backoffMs(attempt++);
    status = `disconnected; reconnecting in ${wait} ms`;
    if (plain) out.write(`${status}\n`);
    redraw();
    await sleep(wait, halt.signal);
  }
  if (exitCode !== 0 && /^server said NOT_FOUND/.test(farewell) && opts.branch !== '*') {
    // A mistyped branch: say which there are (from the server itself, on a connection of its own).
    // (The subscriber port reads names in any case, so only a misspelling gets here.)
    const names = await branchNames(host, port).catch(() => [] as string[]);
    farewell = `carrel: no branch ${JSON.stringify(opts.branch)}${names.length ? `; branches: ${names.join(', ')}` : ''}`;
    if (plain) out.write(`${farewell}\n`);
  }
  opts.signal?.removeEventListener('abort', onAbort);
  if (ticker) clearInterval(ticker);
  if (keys) {
    keys.off('data', onKey);
    keys.setRawMode(false);
    keys.pause();
  }
  if (tty) {
    // The last view stays on screen (a refusal has no view: its words are the last thing said).
    stop = true;
    out.write(exitCode === 0 ? `\x1b[H\x1b[2J${screen()}\x1b[?25h` : `\x1b[?25h\n${farewell}\n`);
  }
  return exitCode;
}

/** The branch names the subscriber port knows: the snapshots of a "*" subscription, until the pong that follows them. */
async function branchNames(host: string, port: number): Promise<string[]> {
  const names: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const c = await FramedSocket.connect(
    host,
    port,
    (f) => {
      if (f.type === 'snapshot') names.push(String(f.branch));
      else if (f.type === 'pong' || f.type === 'error') c.close();
    },
    () => done(),
  );
  const timer = setTimeout(() => c.close(), 3000);
  c.send({ type: 'subscribe', branch: '*' });
  c.send({ type: 'ping' });
  await finished;
  clearTimeout(timer);
  return names;
}

/** `since` for the next subscribe: a seq for one branch, an object by branch id for "*". */
function resumeFrom(branches: Map<number, BranchView>, scope: string): number | Record<string, number> | undefined {
  if (branches.size === 0) return undefined;
  if (scope !== '*') return [...branches.values()][0]!.seq;
  return Object.fromEntries([...branches.values()].map((b) => [String(b.id), b.seq]));
}

function flagText(flags: SnapshotSeat['flags'] | undefined): string {
  const parts = [];
  if (flags?.unbookedOccupancy) parts.push('unbooked');
  if (flags?.sensorOffline) parts.push('sensor offline');
  return parts.length ? ` [${parts.join(', ')}]` : '';
}

/** Offers whose claim-by time has not passed, soonest to lapse first. */
export function liveOffers(offers: Map<number, OfferView>, nowMs: number): OfferView[] {
  for (const [id, o] of offers) if (!(o.lapsesAtMs > nowMs)) offers.delete(id);
  return [...offers.values()].sort((a, b) => a.lapsesAtMs - b.lapsesAtMs);
}

/** "offer on waitlist entry 7: seat Q-01 (Main Library), 2026-01-05 10:00 → 11:00 EST; claim by 09:52 EST: carrel waitlist claim 7". */
export function offerText(o: OfferView, seat: string, zone: string | undefined): string {
  return `offer on waitlist entry ${o.waitlistId}: ${seat}, ${formatRange(o.start, o.end, zone)}; claim by ${formatTime(o.expiresAt, zone).replace(/^\S+ /, '')}: carrel waitlist claim ${o.waitlistId}`;
}

const paint = (codes: string[], text: string): string => (codes.length ? `\x1b[${codes.join(';')}m${text}\x1b[0m` : text);

/** One seat on the map: its state's glyph (or label), `!` for occupancy nobody booked, on grey while its sensor is offline. */
function seatCell(s: SnapshotSeat, labels: boolean, labelWidth: number): string {
  const codes = [s.flags.unbookedOccupancy ? '35' : (COLOR[s.state] ?? '37')];
  if (s.flags.sensorOffline) codes.push(OFFLINE_BG);
  if (labels) return paint(codes, s.label.padEnd(labelWidth));
  return paint(codes, s.flags.unbookedOccupancy ? '!' : (CHAR[s.state] ?? '?'));
}

/** The seat map: per branch a header with counts, then per area its seats as glyphs or labels; then the offers, the legend, the status. */
export function render(branches: BranchView[], status: string, lastEvent: string, view: ViewOptions): string {
  const lines: string[] = [];
  for (const b of branches) {
    const counts: Record<string, number> = { free: 0, reserved: 0, occupied: 0, away: 0, unavailable: 0 };
    let offline = 0;
    let unbooked = 0;
    const areas = new Map<string, SnapshotSeat[]>();
    for (const s of b.seats.values()) {
      counts[s.state] = (counts[s.state] ?? 0) + 1;
      if (s.flags.sensorOffline) offline++;
      if (s.flags.unbookedOccupancy) unbooked++;
      let list = areas.get(s.area);
      if (!list) areas.set(s.area, (list = []));
      list.push(s);
    }
    lines.push(
      `\x1b[1m${b.name}\x1b[0m  seq ${b.seq}   free ${counts.free}  reserved ${counts.reserved}  occupied ${counts.occupied}  unavailable ${counts.unavailable}  of ${b.seats.size}` +
        (unbooked ? `   unbooked ${unbooked}` : '') +
        (offline ? `   sensors offline ${offline} (last known state, on grey)` : ''),
    );
    const width = Math.max(...[...areas.keys()].map((a) => a.length), 8);
    const labelWidth = Math.max(1, ...[...b.seats.values()].map((s) => s.label.length));
    for (const [area, seats] of areas) {
      seats.sort((x, y) => x.label.localeCompare(y.label));
      const cells = seats.map((s) => seatCell(s, view.labels, labelWidth));
      const room = Math.max(10, view.columns - width - 4);
      const perLine = view.labels ? Math.max(1, Math.floor((room + 1) / (labelWidth + 1))) : room;
      const sep = view.labels ? ' ' : '';
      for (let i = 0; i < cells.length; i += perLine) lines.push(`  ${(i === 0 ? area : '').padEnd(width)}  ${cells.slice(i, i + perLine).join(sep)}`);
    }
    lines.push('');
  }
  if (view.offers.length > 0) {
    lines.push('\x1b[1myour offers\x1b[0m (claim before they lapse):');
    for (const o of view.offers) {
      const b = branches.find((x) => x.id === o.branchId);
      const seat = b?.seats.get(o.seatId);
      lines.push(`  ${offerText(o, seat ? `seat ${seat.label} (${b!.name})` : `seat ${o.seatId}`, view.zoneOf(o.branchId))}`);
    }
    lines.push('');
  }
  // With labels the words themselves wear the colours; with glyphs each glyph is explained.
  const key = (codes: string[], glyph: string, word: string): string => (view.labels ? paint(codes, word) : `${paint(codes, glyph)} ${word}`);
  const legend = ['free', 'reserved', 'occupied', 'away', 'unavailable'].map((st) => key([COLOR[st]!], CHAR[st]!, st));
  legend.push(key(['35'], '!', 'unbooked'), key([OFFLINE_BG], ' ', 'sensor offline'));
  lines.push(`${legend.join('  ')}    l: ${view.labels ? 'glyphs' : 'labels'}  q: quit`);
  lines.push(status);
  if (lastEvent) lines.push(`last: ${lastEvent}`);
  return `${lines.join('\n')}\n`;
}
