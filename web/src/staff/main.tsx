// `/staff`: the librarians' page (docs/web.md). Needs an admin account. Live counts and flags of
// a branch (occupied without a booking, sensors offline, away holds) from /ws/live, the branch's
// seat map, and the utilization report's charts (admin.reports.utilization over /ws/rpc).
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { signal } from '@preact/signals';
import type { BranchWire } from '../wire.js';
import { RpcClient, RpcError } from '../lib/rpc.js';
import { LiveFeed, type LiveStatus } from '../lib/live.js';
import { Board, STATES, type Cell } from '../lib/board.js';
import { wsUrl } from '../lib/endpoints.js';
import { sessionStore, type Session } from '../lib/session.js';
import { addDays, dateTimeIn, timeIn, todayIn } from '../lib/zoned.js';
import { describeCell, errorText, stateLabel } from '../lib/text.js';
import { LoginForm } from '../ui/login.js';
import { BarChart, type Series } from './charts.js';
import { reportRows, seatsWithoutSensor } from './report.js';
import '../ui/base.css';
import '../ui/app.css';
import './staff.css';

const rpc = new RpcClient(wsUrl('/ws/rpc'));
const session = sessionStore('carrel.staff');
const liveStatus = signal<LiveStatus>('connecting');

function Counts({ board }: { board: Board }) {
  const t = board.totals.value;
  const items: [string, number, string][] = [
    ...STATES.map((s): [string, number, string] => [stateLabel(s), t[s], s]),
    ['sensor offline', t.sensorOffline, 'flag-offline'],
    ['occupied, not booked', t.unbookedOccupancy, 'flag-unbooked'],
  ];
  return (
    <section class="card" aria-labelledby="counts-title">
      <h2 id="counts-title">
        Now: {t.free} of {t.total} seats free
      </h2>
      <ul class="counts">
        {items.map(([label, n, cls]) => (
          <li key={label} class={cls} data-count={cls}>
            <strong>{n}</strong>
            <span>{label}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function since(v: { since: string | undefined }, tz: string): string {
  return v.since ? `since ${timeIn(v.since, tz)}` : 'since before this page opened';
}

function Flags({ board, tz }: { board: Board; tz: string }) {
  const areas = board.areas.value;
  const unbooked: Cell[] = [];
  const offline: Cell[] = [];
  const away: Cell[] = [];
  for (const a of areas)
    for (const c of a.cells) {
      const v = c.value.value;
      if (v.unbookedOccupancy) unbooked.push(c);
      if (v.sensorOffline) offline.push(c);
      if (v.state === 'away') away.push(c);
    }
  const list = (title: string, id: string, cells: Cell[], extra: (c: Cell) => string, empty: string) => (
    <div class="flag-list" data-flags={id}>
      <h3 id={`flags-${id}`}>
        {title} <span class="n">{cells.length}</span>
      </h3>
      {cells.length === 0 ? (
        <p class="muted">{empty}</p>
      ) : (
        <ul aria-labelledby={`flags-${id}`}>
          {cells.slice(0, 50).map((c) => (
            <li key={c.id}>
              <strong>{c.label}</strong> <span class="muted">{c.area.name}</span> <span>{extra(c)}</span>
            </li>
          ))}
          {cells.length > 50 && <li class="muted">and {cells.length - 50} more</li>}
        </ul>
      )}
    </div>
  );
  return (
    <section class="card" aria-labelledby="flags-title">
      <h2 id="flags-title">Needs a look</h2>
      <div class="flags">
        {list('Occupied without a booking', 'unbooked', unbooked, (c) => since(c.value.value, tz), 'None: every occupied seat is booked.')}
        {list('Sensor offline', 'offline', offline, (c) => since(c.value.value, tz), 'All sensors are reporting.')}
        {list(
          'Away holds',
          'away',
          away,
          (c) => {
            const v = c.value.value;
            return v.holdUntil ? `held until ${timeIn(v.holdUntil, tz)}` : since(v, tz);
          },
          'Nobody is away from a checked-in seat.',
        )}
      </div>
    </section>
  );
}

function StaffTile({ cell }: { cell: Cell }) {
  const v = cell.value.value;
  return (
    <li class={`seat ${v.state}${v.sensorOffline ? ' offline' : ''}${v.unbookedOccupancy ? ' unbooked' : ''}`} title={describeCell(cell.label, v)} data-seat={cell.id} data-state={v.state}>
      {cell.label}
    </li>
  );
}

function SeatMap({ board }: { board: Board }) {
  const areas = board.areas.value;
  return (
    <section class="card" aria-labelledby="map-title">
      <h2 id="map-title">Seat map</h2>
      <ul class="legend-light" aria-label="Legend">
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
        <li>
          <span class="swatch seat occupied unbooked" aria-hidden="true" />
          not booked
        </li>
      </ul>
      <div class="staff-areas">
        {areas.map((a) => (
          <div key={a.name} class="staff-area">
            <h3>
              {a.name} <span class="muted">{a.counts.value.free} free</span>
            </h3>
            <ul class="staff-seats" aria-label={`Seats in ${a.name}`}>
              {a.cells.map((c) => (
                <StaffTile key={c.id} cell={c} />
              ))}
            </ul>
          </div>
        ))}
      </div>
    </section>
  );
}

type By = 'day' | 'hour' | 'area' | 'seat';

function Report({ branch, token }: { branch: BranchWire; token: string }) {
  const today = todayIn(branch.timezone);
  const [from, setFrom] = useState(addDays(today, -14));
  const [to, setTo] = useState(today);
  const [by, setBy] = useState<By>('day');
  const [state, setState] = useState<{ kind: 'idle' | 'loading' } | { kind: 'error'; text: string } | { kind: 'missing' } | { kind: 'done'; result: unknown }>({ kind: 'idle' });

  const load = async () => {
    setState({ kind: 'loading' });
    try {
      const result = await rpc.call<unknown>('admin.reports.utilization', { branch: branch.id, from, to, by }, token);
      setState({ kind: 'done', result });
    } catch (err) {
      if (err instanceof RpcError && err.code === 'UNKNOWN_METHOD') setState({ kind: 'missing' });
      else if (err instanceof RpcError && err.code === 'UNAUTHENTICATED') session.logout();
      else setState({ kind: 'error', text: errorText(err, (iso) => dateTimeIn(iso, branch.timezone)) });
    }
  };
  useEffect(() => {
    void load();
  }, [branch.id]);

  const rows = state.kind === 'done' ? reportRows(state.result) : [];
  const unsensed = state.kind === 'done' ? seatsWithoutSensor(state.result) : null;
  const minutes: Series[] = [
    { key: 'booked', label: 'booked', className: 'booked' },
    { key: 'attended', label: 'attended', className: 'attended' },
    { key: 'ghost', label: 'booked but empty', className: 'ghost' },
    { key: 'unbooked', label: 'occupied, not booked', className: 'unbooked' },
  ];
  return (
    <section class="card" aria-labelledby="report-title">
      <h2 id="report-title">Utilization</h2>
      <form
        class="report-form"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <label>
          From
          <input type="date" value={from} max={to} onChange={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          To
          <input type="date" value={to} min={from} onChange={(e) => setTo(e.currentTarget.value)} />
        </label>
        <label>
          By
          <select value={by} onChange={(e) => setBy(e.currentTarget.value as By)}>
            <option value="day">day</option>
            <option value="hour">hour of day</option>
            <option value="area">area</option>
            <option value="seat">seat</option>
          </select>
        </label>
        <button type="submit" class="primary" disabled={state.kind === 'loading'}>
          Show
        </button>
      </form>
      {state.kind === 'loading' && <p class="muted">Loading the report…</p>}
      {state.kind === 'missing' && (
        <p class="notice info" data-report="missing">
          This server has no utilization report yet (the method admin.reports.utilization is not available). Upgrade carrel to see booked, attended and
          empty-seat hours here.
        </p>
      )}
      {state.kind === 'error' && (
        <p class="notice error" role="alert">
          {state.text}
        </p>
      )}
      {state.kind === 'done' &&
        (rows.length === 0 ? (
          <p class="muted">No bookings or sensor readings in that period.</p>
        ) : (
          <div class="charts" data-report="charts">
            {unsensed && (
              <p class="muted">
                {unsensed.count} seat{unsensed.count === 1 ? ' has' : 's have'} no sensor
                {unsensed.labels.length > 0 ? ` (${unsensed.labels.slice(0, 12).join(', ')}${unsensed.count > 12 ? ', …' : ''})` : ''}: their attended and
                empty minutes are left out, not guessed.
              </p>
            )}
            <BarChart title="Minutes per bucket: booked, attended, booked but empty, occupied without a booking" rows={rows} series={minutes} unit="min" />
            <BarChart title="Utilization (%)" rows={rows} series={[{ key: 'utilization', label: 'utilization', className: 'utilization' }]} unit="%" max={100} />
            {rows.some((r) => r.values.peak !== undefined) && (
              <BarChart title="Peak occupancy (seats)" rows={rows} series={[{ key: 'peak', label: 'peak occupancy', className: 'peak' }]} unit="seats" />
            )}
          </div>
        ))}
    </section>
  );
}

function Staff({ s }: { s: Session }) {
  const [branches, setBranches] = useState<BranchWire[]>([]);
  const [branchId, setBranchId] = useState(() => Number(localStorage.getItem('carrel.staff.branch')) || 0);
  const board = useMemo(() => new Board(), [branchId]);
  const branch = branches.find((b) => b.id === branchId) ?? branches[0];

  useEffect(() => {
    rpc.call<BranchWire[]>('branches.list').then(setBranches, () => undefined);
  }, []);

  useEffect(() => {
    if (!branch) return;
    localStorage.setItem('carrel.staff.branch', String(branch.id));
    const feed = new LiveFeed({
      url: wsUrl('/ws/live'),
      branch: String(branch.id),
      handlers: {
        snapshot: (f) => board.load({ id: f.branchId, name: f.branch }, f.seats),
        seat: (f) => void board.apply(f),
        status: (st) => (liveStatus.value = st),
      },
    });
    feed.start();
    return () => feed.stop();
  }, [branch?.id, board]);

  const st = liveStatus.value;
  return (
    <>
      <header class="bar">
        <span class="brand">carrel · staff</span>
        <span class="who">
          {s.user.name}
          <button type="button" class="link" onClick={() => session.logout()}>
            Log out
          </button>
        </span>
      </header>
      <main class="page wide">
        {branch && (
          <div class="staff-top">
            <label class="branch-pick">
              BranchWire
              <select value={branch.id} onChange={(e) => setBranchId(Number(e.currentTarget.value))}>
                {branches.map((b) => (
                  <option key={b.id} value={b.id}>
                    {b.name}
                  </option>
                ))}
              </select>
            </label>
            <p class={`live-state ${st}`} role="status">
              {st === 'live' ? 'Live' : st === 'connecting' ? 'Connecting…' : 'Reconnecting… figures may be out of date'}
            </p>
          </div>
        )}
        <div class="staff-grid">
          <Counts board={board} />
          {branch && <Flags board={board} tz={branch.timezone} />}
        </div>
        <SeatMap board={board} />
        {branch && <Report key={branch.id} branch={branch} token={s.token} />}
      </main>
    </>
  );
}

function App() {
  const s = session.current.value;
  if (!s) {
    return (
      <main class="page narrow">
        <p class="brand big">carrel · staff</p>
        <LoginForm rpc={rpc} title="Staff log in" intro="For library staff: log in with an admin account." allowRegister={false} login={(id, pw) => session.login(rpc, id, pw)} />
      </main>
    );
  }
  if (s.user.role !== 'admin') {
    return (
      <main class="page narrow">
        <p class="brand big">carrel · staff</p>
        <div class="card">
          <h1>Staff only</h1>
          <p>
            {s.user.name}, your account is not a staff (admin) account. The student page is at <a href="/">/</a>.
          </p>
          <button type="button" onClick={() => session.logout()}>
            Log out
          </button>
        </div>
      </main>
    );
  }
  return <Staff s={s} />;
}

render(<App />, document.getElementById('app')!);
