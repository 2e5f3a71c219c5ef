// /signage/<branch>: the entrance display (docs/web.md). Free seats per area in large type and a
// seat map per area, live from /ws/live; it reconnects and resumes by itself and keeps nothing but
// the branch's current map, so it can run unattended for days.
import { render } from 'preact';
import { useEffect, useMemo } from 'preact/hooks';
import { signal } from '@preact/signals';
import { Board, STATES, type Area, type Cell } from '../lib/board.js';
import { LiveFeed, type LiveStatus } from '../lib/live.js';
import { wsUrl } from '../lib/endpoints.js';
import { RpcClient } from '../lib/rpc.js';
import type { BranchWire } from '../wire.js';
import { stateLabel, describeCell } from '../lib/text.js';
import { Clock } from '../ui/clock.js';
import '../ui/base.css';
import './signage.css';

/** `?perf` turns on the Performance API marks the signage benchmark reads (docs/web.md). */
const measuring = new URLSearchParams(location.search).has('perf');

function branchFromPath(): string | undefined {
  const m = /^\/signage\/([^/]+)\/?$/.exec(location.pathname);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined;
  }
}

/** Runs `fn` once the renders queued by this turn have been committed (after microtasks). */
const afterCommit = (() => {
  const channel = new MessageChannel();
  const queue: (() => void)[] = [];
  channel.port1.onmessage = () => queue.splice(0).forEach((fn) => fn());
  return (fn: () => void) => {
    if (queue.push(fn) === 1) channel.port2.postMessage(0);
  };
})();

function measureFrom(name: string, start: number): void {
  afterCommit(() => {
    void document.body.offsetHeight; // style and layout of the change, inside the measure
    performance.measure(name, { start, end: performance.now() });
  });
}

/** The branch's time zone, for the clock (branches.list, asked once the branch is known). */
const timezone = signal<string | undefined>(undefined);

async function learnTimezone(branchId: number): Promise<void> {
  if (timezone.peek() !== undefined) return;
  const rpc = new RpcClient(wsUrl('/ws/rpc'));
  try {
    timezone.value = (await rpc.call<BranchWire[]>('branches.list')).find((b) => b.id === branchId)?.timezone;
  } catch {
    // The device's clock stands in; the next snapshot asks again.
  } finally {
    rpc.close();
  }
}

const status = signal<{ s: LiveStatus; why?: string; lastLive?: number }>({ s: 'connecting' });
const missing = signal<string | undefined>(undefined);

/** The side of a seat tile, in px: the largest with which every area fits the screen without scrolling. */
const tile = signal(48);

/** Finds that side by trying (a binary search of a dozen layouts, at a snapshot or a resize only). */
function fitTiles(): void {
  const root = document.querySelector<HTMLElement>('.signage');
  const areas = document.querySelector<HTMLElement>('.areas');
  if (!root || !areas) return;
  const fits = (px: number) => {
    root.style.setProperty('--tile', `${px}px`);
    root.classList.toggle('compact', px < 34);
    return areas.scrollHeight <= areas.clientHeight + 1;
  };
  let lo = 8;
  let hi = 112;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  fits(lo);
  tile.value = lo;
}

function SeatTile({ cell }: { cell: Cell }) {
  const v = cell.value.value;
  const cls = `seat ${v.state}${v.sensorOffline ? ' offline' : ''}${v.unbookedOccupancy ? ' unbooked' : ''}`;
  return (
    <li class={cls} title={describeCell(cell.label, v)} data-seat={cell.id} data-state={v.state}>
      <span class="label">{cell.label}</span>
    </li>
  );
}

// An event re-renders its seat's tile and nothing else: the counts are signals bound straight to
// their text nodes, and no component above the tiles reads a seat's state.
function AreaPanel({ area }: { area: Area }) {
  const id = `area-${area.name.replace(/[^A-Za-z0-9]+/g, '-')}`;
  return (
    <section class="area" aria-labelledby={id}>
      <header class="area-head">
        <h2 id={id}>{area.name}</h2>
        <p class="area-free" data-area-free={area.name}>
          <strong>{area.free}</strong>
          <span> free of {area.cells.length}</span>
        </p>
      </header>
      <ul class="seats" aria-label={`Seats in ${area.name}`}>
        {area.cells.map((cell) => (
          <SeatTile key={cell.id} cell={cell} />
        ))}
      </ul>
    </section>
  );
}

function Legend() {
  return (
    <ul class="legend" aria-label="Legend">
      {STATES.map((s) => (
        <li key={s}>
          <span class={`swatch seat ${s}`} aria-hidden="true" />
          {stateLabel(s)}
        </li>
      ))}
      <li>
        <span class="swatch seat free offline" aria-hidden="true" />
        sensor offline
      </li>
    </ul>
  );
}

function StatusLine() {
  const st = status.value;
  if (st.s === 'live') return <p class="status live">live</p>;
  const last = st.lastLive ? ` · last update ${new Date(st.lastLive).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}` : '';
  return (
    <p class="status offline" role="status">
      {st.s === 'connecting' ? 'connecting…' : 'reconnecting…'}
      {last}
    </p>
  );
}

function Signage({ board, requested }: { board: Board; requested: string }) {
  const name = board.branch.value?.name ?? requested;
  const areas = board.areas.value;
  const stale = status.value.s !== 'live' && areas.length > 0;
  return (
    <div class={`signage${tile.value < 34 ? ' compact' : ''}${stale ? ' stale' : ''}`} style={{ '--tile': `${tile.value}px` }}>
      <header class="top">
        <div>
          <h1>{name}</h1>
          <StatusLine />
        </div>
        <p class="total" aria-live="polite">
          <strong data-total-free>{board.free}</strong>
          <span>
            seats free
            <br />
            of {board.size}
          </span>
        </p>
        <Clock timezone={timezone.value} />
      </header>
      {missing.value ? (
        <p class="notice">No branch called “{requested}”. Check the address: /signage/&lt;branch name or id&gt;.</p>
      ) : areas.length === 0 ? (
        <p class="notice">Loading the seat map…</p>
      ) : (
        <main class="areas">
          {areas.map((a) => (
            <AreaPanel key={a.name} area={a} />
          ))}
        </main>
      )}
      <footer>
        <Legend />
      </footer>
    </div>
  );
}

function App() {
  const requested = branchFromPath();
  const board = useMemo(() => new Board(), []);
  useEffect(() => {
    if (requested === undefined) return;
    const feed = new LiveFeed({
      url: wsUrl('/ws/live'),
      branch: requested,
      handlers: {
        snapshot(f) {
          const t0 = performance.now();
          missing.value = undefined;
          board.load({ id: f.branchId, name: f.branch }, f.seats);
          afterCommit(fitTiles);
          void learnTimezone(f.branchId);
          if (measuring) measureFrom('signage.snapshot', t0);
        },
        seat(f, receivedAt) {
          board.apply(f);
          if (measuring) measureFrom('signage.apply', receivedAt);
        },
        status(s, why) {
          const prev = status.peek();
          status.value = { s, why, lastLive: prev.s === 'live' ? Date.now() : prev.lastLive };
        },
        notFound(message) {
          missing.value = message;
        },
      },
    });
    let resizing = 0;
    const onResize = () => {
      cancelAnimationFrame(resizing);
      resizing = requestAnimationFrame(fitTiles);
    };
    addEventListener('resize', onResize);
    feed.start();
    return () => {
      removeEventListener('resize', onResize);
      cancelAnimationFrame(resizing);
      feed.stop();
    };
  }, [board, requested]);
  if (requested === undefined) {
    return (
      <div class="signage">
        <p class="notice">Open /signage/&lt;branch name or id&gt;, for example /signage/Main%20Library.</p>
      </div>
    );
  }
  return <Signage board={board} requested={requested} />;
}

render(<App />, document.getElementById('app')!);
