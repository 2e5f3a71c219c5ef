// `carrel watch <branch>` (docs/protocol.md): a live view of a branch. For people (stdout a TTY): a
// compact seat map grouped by area with counts, redrawn in place with ANSI codes. For programs
// (--json): one JSON line per frame received. Otherwise: one plain line per change. After a
// disconnect (server restart, SLOW_CONSUMER) it reconnects with backoff and resumes with `since`
// and the epoch the seqs count in; when the server can no longer resume (or its sequence
// restarted: docs/redis.md), the fresh snapshot it sends replaces the view.
// With a token (by default the one `carrel login` remembered for this server) it also shows the
// watcher's personal events (waitlist offers, releases). Stopping is the caller's: `signal`.
import { FramedSocket, backoffMs, sleep, type Frame } from './framedSocket.js';
import { parseServer } from './rpcClient.js';

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
  /** Ends the watch (Ctrl-C): the connection closes, the cursor comes back, watch() resolves. */
  signal?: AbortSignal;
}

interface SeatView {
  seatId: number;
  area: string;
  label: string;
  state: string;
  flags: { unbookedOccupancy?: boolean; sensorOffline?: boolean };
}

interface BranchView {
  id: number;
  name: string;
  seq: number;
  /** The sequence space `seq` counts in, as the snapshot named it. */
  epoch?: string;
  seats: Map<number, SeatView>;
}

const STATE_GLYPH: Record<string, string> = {
  free: '\x1b[32m·\x1b[0m',
  reserved: '\x1b[33mr\x1b[0m',
  occupied: '\x1b[31m■\x1b[0m',
  unavailable: '\x1b[90mx\x1b[0m',
};

/** Resolves with the exit code: 0 when stopped or done, 1 when the server refused the subscription. */
export async function watch(opts: WatchOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const tty = !opts.json && out.isTTY === true;
  const { host, port } = parseServer(opts.server, 9002);
  const branches = new Map<number, BranchView>();
  const endAt = opts.durationSec ? Date.now() + opts.durationSec * 1000 : Infinity;
  let status = 'connecting';
  let lastEvent = '';
  let redrawPending = false;
  let attempt = 0;
  let stop = false;
  let token = opts.token;
  let subscribed = false;
  let exitCode = 0;
  let conn: FramedSocket | undefined;
  const halt = new AbortController();
  const onAbort = (): void => {
    stop = true;
    halt.abort();
    conn?.close();
  };
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const redraw = (): void => {
    if (!tty || redrawPending) return;
    redrawPending = true;
    setTimeout(() => {
      redrawPending = false;
      out.write(`\x1b[H\x1b[2J${render([...branches.values()], status, lastEvent, out.columns ?? 100)}`);
    }, 100).unref();
  };

  const onFrame = (f: Frame): void => {
    if (opts.json) out.write(`${JSON.stringify(f)}\n`);
    switch (f.type) {
      case 'subscribed':
        subscribed = true;
        status = `live on ${host}:${port}${f.resumed === true ? ' (resumed)' : ''}${f.personal === true ? ', with your personal events' : ''}`;
        attempt = 0;
        break;
      case 'snapshot': {
        const b: BranchView = { id: Number(f.branchId), name: String(f.branch), seq: Number(f.seq), seats: new Map() };
        if (typeof f.epoch === 'string') b.epoch = f.epoch;
        for (const s of f.seats as SeatView[]) b.seats.set(s.seatId, s);
        branches.set(b.id, b);
        const fresh = f.reason === 'seqReset' ? ' (fresh: the server\'s sequence restarted)' : f.fresh ? ' (fresh: could not resume)' : '';
        if (!tty && !opts.json) out.write(`${b.name}: snapshot at seq ${b.seq}${fresh}, ${b.seats.size} seats\n`);
        break;
      }
      case 'seat': {
        const b = branches.get(Number(f.branchId));
        if (!b) break;
        const seat = b.seats.get(Number(f.seatId));
        if (seat) {
          seat.state = String(f.state);
          seat.flags = (f.flags ?? {}) as SeatView['flags'];
        }
        b.seq = Number(f.seq);
        lastEvent = `#${b.seq} ${seat?.label ?? f.seatId} → ${String(f.state)} (${String(f.cause)})`;
        if (!tty && !opts.json) out.write(`${b.name} ${lastEvent}${flagText(seat?.flags)}\n`);
        break;
      }
      case 'personal':
        lastEvent = `for you: ${String(f.kind)} (reservation ${String((f.reservation as { id?: number })?.id)})`;
        if (!tty && !opts.json) out.write(`${lastEvent}\n`);
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
          conn?.close();
        }
        if (!tty && !opts.json) out.write(`${status}\n`);
        break;
      }
      default:
        break;
    }
    redraw();
  };

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
      else c.send({ type: 'subscribe', branch: /^\d+$/.test(opts.branch) ? Number(opts.branch) : opts.branch, ...(token ? { token } : {}), ...(since === undefined ? {} : { since }), ...(epoch === undefined ? {} : { epoch }) });
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
    if (!tty && !opts.json) out.write(`${status}\n`);
    redraw();
    await sleep(wait, halt.signal);
  }
  opts.signal?.removeEventListener('abort', onAbort);
  if (tty) out.write('\x1b[?25h\n');
  return exitCode;
}

/** `since` for the next subscribe: a seq for one branch, an object by branch id for "*". */
function resumeFrom(branches: Map<number, BranchView>, scope: string): number | Record<string, number> | undefined {
  if (branches.size === 0) return undefined;
  if (scope !== '*') return [...branches.values()][0]!.seq;
  return Object.fromEntries([...branches.values()].map((b) => [String(b.id), b.seq]));
}

function flagText(flags: SeatView['flags'] | undefined): string {
  const parts = [];
  if (flags?.unbookedOccupancy) parts.push('unbooked');
  if (flags?.sensorOffline) parts.push('sensor offline');
  return parts.length ? ` [${parts.join(', ')}]` : '';
}

/** The seat map: per branch a header with counts, then one line of glyphs per area. */
export function render(branches: BranchView[], status: string, lastEvent: string, columns: number): string {
  const lines: string[] = [];
  for (const b of branches) {
    const counts: Record<string, number> = { free: 0, reserved: 0, occupied: 0, unavailable: 0 };
    let offline = 0;
    let unbooked = 0;
    const areas = new Map<string, SeatView[]>();
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
        (offline ? `   sensors offline ${offline}` : ''),
    );
    const width = Math.max(...[...areas.keys()].map((a) => a.length), 8);
    for (const [area, seats] of areas) {
      seats.sort((x, y) => x.label.localeCompare(y.label));
      const glyphs = seats.map((s) => (s.flags.sensorOffline ? '\x1b[90m?\x1b[0m' : s.flags.unbookedOccupancy ? '\x1b[35m!\x1b[0m' : (STATE_GLYPH[s.state] ?? '?')));
      const perLine = Math.max(10, columns - width - 4);
      for (let i = 0; i < glyphs.length; i += perLine) lines.push(`  ${(i === 0 ? area : '').padEnd(width)}  ${glyphs.slice(i, i + perLine).join('')}`);
    }
    lines.push('');
  }
  lines.push('\x1b[32m·\x1b[0m free  \x1b[33mr\x1b[0m reserved  \x1b[31m■\x1b[0m occupied  \x1b[90mx\x1b[0m unavailable  \x1b[35m!\x1b[0m unbooked  \x1b[90m?\x1b[0m sensor offline');
  lines.push(status);
  if (lastEvent) lines.push(`last: ${lastEvent}`);
  return `${lines.join('\n')}\n`;
}
