// `/`: a student's page (docs/web.md). Log in or register; find seats with filters and a time
// window on the branch's clock; book the best free seat or a chosen one; see, check in to, check
// out of and cancel bookings; join a waitlist and claim an offer that arrives live (a personal
// event on /ws/live). Phone in portrait first.
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { signal } from '@preact/signals';
import type { BranchWire, PersonalFrame, ReservationFact, ReservationWire, SeatWire, WaitlistEntryWire } from '../wire.js';
import { RpcClient, RpcError } from '../lib/rpc.js';
import { LiveFeed } from '../lib/live.js';
import { Board } from '../lib/board.js';
import { wsUrl } from '../lib/endpoints.js';
import { sessionStore, type Session } from '../lib/session.js';
import { SeatDirectory, hoursOn, hm } from '../lib/seats.js';
import { addDays, dateTimeIn, dayIn, timeIn, todayIn, wallClock, windowIn, zonedToIso } from '../lib/zoned.js';
import { errorText } from '../lib/text.js';
import { LoginForm } from '../ui/login.js';
import '../ui/base.css';
import '../ui/app.css';

const rpc = new RpcClient(wsUrl('/ws/rpc'));
const session = sessionStore('carrel.student');
const directory = new SeatDirectory(rpc);

/** What the page says after an action, read out by screen readers (one at a time). */
const notice = signal<{ kind: 'ok' | 'error' | 'info'; text: string } | null>(null);
/** An offer that arrived live and is not yet claimed, declined or lapsed. */
const offer = signal<{ waitlistId: number; reservation: ReservationFact; offerExpiresAt: string } | null>(null);
/** Bumped to make the bookings and waitlist lists read again. */
const reloads = signal(0);

const say = (kind: 'ok' | 'error' | 'info', text: string) => (notice.value = { kind, text });
const reload = () => reloads.value++;

const SLOT_MINUTES = 15;
const LENGTHS = [30, 60, 90, 120, 180, 240];
const DAYS_AHEAD = 7;

function failed(err: unknown, tz?: string): void {
  if (err instanceof RpcError && err.code === 'UNAUTHENTICATED') {
    session.logout();
    say('info', 'Your session has ended. Please log in again.');
    return;
  }
  say('error', errorText(err, tz ? (iso) => dateTimeIn(iso, tz) : undefined));
}

function randomKey(): string {
  // crypto.randomUUID needs a secure context; a library's http:// address is not one.
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function tzOf(branches: BranchWire[], name: string): string {
  return branches.find((b) => b.name === name)?.timezone ?? 'UTC';
}

/** Start times a booking can have on `date`: from opening (or the slot under way today) to the last slot of the shortest booking. */
function startTimes(branch: BranchWire, date: string): string[] {
  const hours = hoursOn(branch, date);
  if (!hours) return [];
  let first = hours.open;
  if (date === todayIn(branch.timezone)) {
    const w = wallClock(Date.now(), branch.timezone);
    first = Math.max(first, Math.floor((w.hour * 60 + w.minute) / SLOT_MINUTES) * SLOT_MINUTES);
  }
  const out: string[] = [];
  for (let m = Math.ceil(first / SLOT_MINUTES) * SLOT_MINUTES; m + LENGTHS[0]! <= hours.close; m += SLOT_MINUTES) out.push(hm(m));
  return out;
}

function lengthLabel(min: number): string {
  return min < 60 ? `${min} min` : min % 60 === 0 ? `${min / 60} h` : `${Math.floor(min / 60)} h ${min % 60} min`;
}

interface Window {
  date: string;
  time: string;
  length: number;
}

interface Filters {
  area: string;
  hasPower: boolean;
  hasMonitor: boolean;
}

function Finder({ branch, token, areas, board }: { branch: BranchWire; token: string; areas: string[]; board: Board }) {
  const tz = branch.timezone;
  const today = todayIn(tz);
  const days = useMemo(() => Array.from({ length: DAYS_AHEAD }, (_, i) => addDays(today, i)), [today]);
  const [win, setWin] = useState<Window>({ date: today, time: '', length: 120 });
  const [filters, setFilters] = useState<Filters>({ area: '', hasPower: false, hasMonitor: false });
  const [results, setResults] = useState<SeatWire[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [attempt, setAttempt] = useState<{ params: string; key: string } | null>(null);

  const times = startTimes(branch, win.date);
  const time = times.includes(win.time) ? win.time : (times[0] ?? '');
  const close = hoursOn(branch, win.date)?.close ?? 0;
  const lengths = time ? LENGTHS.filter((l) => minutesOfTime(time) + l <= close) : [];
  const length = lengths.includes(win.length) ? win.length : (lengths[lengths.length - 1] ?? 0);

  // A new search is needed when the window or filters change.
  useEffect(() => setResults(null), [branch.id, win.date, time, length, filters.area, filters.hasPower, filters.hasMonitor]);

  const span = (): { start: string; end: string } => {
    const start = zonedToIso(win.date, time, tz);
    return { start, end: new Date(Date.parse(start) + length * 60_000).toISOString() };
  };
  const filterArgs = () => ({
    ...(filters.area ? { area: filters.area } : {}),
    ...(filters.hasPower ? { hasPower: true } : {}),
    ...(filters.hasMonitor ? { hasMonitor: true } : {}),
  });

  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    notice.value = null;
    try {
      await fn();
    } catch (err) {
      failed(err, tz);
    } finally {
      setBusy(false);
    }
  };

  const search = () =>
    run(async () => {
      const seats = await rpc.call<SeatWire[]>('seats.list', { branch: branch.id, ...filterArgs(), availableOnly: true, ...span() });
      seats.forEach((s) => directory.remember(s));
      setResults(seats);
      if (seats.length === 0) say('info', 'No seat matching that is free for that time. You can join the waitlist.');
    });

  /** Books with an idempotency key that a retry of the very same request reuses (docs/protocol.md, Deadlines). */
  const book = (params: Record<string, unknown>) =>
    run(async () => {
      const json = JSON.stringify(params);
      const key = attempt?.params === json ? attempt.key : randomKey();
      setAttempt({ params: json, key });
      let r: ReservationWire;
      try {
        r = await rpc.call<ReservationWire>('reservations.create', { ...params, idempotencyKey: key }, token);
      } catch (err) {
        if (err instanceof RpcError && err.code === 'CONFLICT') setResults(null);
        throw err;
      }
      setAttempt(null);
      const seat = await directory.get(r.seatId);
      say('ok', `Booked ${seat.label} (${seat.area}), ${windowIn(r.start, r.end, tz)}.`);
      setResults(null);
      reload();
    });

  const bestAvailable = () => book({ branch: branch.id, ...filterArgs(), ...span() });

  const joinWaitlist = () =>
    run(async () => {
      await rpc.call<WaitlistEntryWire>('waitlist.join', { branch: branch.id, ...span() }, token);
      say('ok', `You are on the waitlist for ${branch.name}, ${windowIn(span().start, span().end, tz)}. An offer will appear here.`);
      reload();
    });

  const totals = board.totals.value;
  const byArea = new Map<string, SeatWire[]>();
  for (const s of results ?? []) byArea.set(s.area, [...(byArea.get(s.area) ?? []), s]);
  const noTimes = times.length === 0;
  // A window under way now: a seat a sensor sees taken may be a walk-in's, worth saying.
  const startsNow = results !== null && time !== '' && Date.parse(span().start) <= Date.now();

  return (
    <section class="card" aria-labelledby="find-title">
      <h2 id="find-title">Find a seat</h2>
      {board.size > 0 && (
        <p class="muted live-count">
          <span class="dot" aria-hidden="true" /> {totals.free} of {totals.total} seats free right now
        </p>
      )}
      <form
        class="finder"
        onSubmit={(e) => {
          e.preventDefault();
          void bestAvailable();
        }}
      >
        <div class="row when">
          <label>
            Day
            <select value={win.date} onChange={(e) => setWin({ ...win, date: e.currentTarget.value })}>
              {days.map((d, i) => (
                <option key={d} value={d}>
                  {i === 0 ? 'Today' : i === 1 ? 'Tomorrow' : dayIn(zonedToIso(d, '12:00', tz), tz)}
                  {hoursOn(branch, d) ? '' : ' (closed)'}
                </option>
              ))}
            </select>
          </label>
          <label>
            From
            <select value={time} disabled={noTimes} onChange={(e) => setWin({ ...win, time: e.currentTarget.value })}>
              {times.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </label>
          <label>
            For
            <select value={length} disabled={noTimes} onChange={(e) => setWin({ ...win, length: Number(e.currentTarget.value) })}>
              {lengths.map((l) => (
                <option key={l} value={l}>
                  {lengthLabel(l)}
                </option>
              ))}
            </select>
          </label>
        </div>
        <p class="muted small">Times are {branch.name}'s local time ({tz}).</p>
        <div class="row">
          <label>
            Area
            <select value={filters.area} onChange={(e) => setFilters({ ...filters, area: e.currentTarget.value })}>
              <option value="">Any area</option>
              {areas.map((a) => (
                <option key={a} value={a}>
                  {a}
                </option>
              ))}
            </select>
          </label>
          <fieldset class="checks">
            <legend>Needs</legend>
            <label class="check">
              <input type="checkbox" checked={filters.hasPower} onChange={(e) => setFilters({ ...filters, hasPower: e.currentTarget.checked })} />
              Power outlet
            </label>
            <label class="check">
              <input type="checkbox" checked={filters.hasMonitor} onChange={(e) => setFilters({ ...filters, hasMonitor: e.currentTarget.checked })} />
              Monitor
            </label>
          </fieldset>
        </div>
        {noTimes ? (
          <p class="muted">{hoursOn(branch, win.date) ? 'No more bookable times today. Pick another day.' : `${branch.name} is closed that day.`}</p>
        ) : (
          <div class="actions">
            <button class="primary" type="submit" disabled={busy}>
              Book the best free seat
            </button>
            <button type="button" disabled={busy} onClick={() => void search()}>
              Choose a seat
            </button>
          </div>
        )}
      </form>
      {results && (
        <div class="results" aria-live="polite">
          <h3>
            {results.length} free seat{results.length === 1 ? '' : 's'}, {windowIn(span().start, span().end, tz)}
          </h3>
          {results.length === 0 ? (
            <div class="empty">
              <p>Nothing matching is free then.</p>
              <button type="button" onClick={() => void joinWaitlist()} disabled={busy}>
                Join the waitlist for {branch.name}
              </button>
            </div>
          ) : (
            [...byArea].map(([area, seats]) => (
              <div key={area} class="area-results">
                <h4>{area}</h4>
                <ul class="seat-picks">
                  {seats.map((s) => (
                    <li key={s.id}>
                      <button
                        type="button"
                        class="pick"
                        disabled={busy}
                        onClick={() => void book({ seatId: s.id, ...span() })}
                        aria-label={`Book seat ${s.label}${s.hasPower ? ', power outlet' : ''}${s.hasMonitor ? ', monitor' : ''}${startsNow && s.live === 'occupied' ? ', someone is sitting there now' : ''}`}
                      >
                        <span class="pick-label">{s.label}</span>
                        <span class="pick-extras">
                          {startsNow && s.live === 'occupied' && <span class="tag busy">in use now</span>}
                          {s.hasPower && <span class="tag">power</span>}
                          {s.hasMonitor && <span class="tag">monitor</span>}
                        </span>
                      </button>
                    </li>
                  ))}
                </ul>
              </div>
            ))
          )}
        </div>
      )}
    </section>
  );
}

function minutesOfTime(t: string): number {
  const [h, m] = t.split(':').map(Number) as [number, number];
  return h * 60 + m;
}

const STATUS_WORDS: Record<string, string> = {
  CONFIRMED: 'Booked',
  CHECKED_IN: 'Checked in',
  OFFERED: 'Offered',
  COMPLETED: 'Done',
  CANCELLED: 'Cancelled',
  NO_SHOW: 'No-show',
};

function useSeat(id: number | null | undefined): SeatWire | undefined {
  const [seat, setSeat] = useState<SeatWire>();
  useEffect(() => {
    if (id == null) return;
    let live = true;
    directory.get(id).then(
      (s) => live && setSeat(s),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [id]);
  return seat;
}

function BookingRow({ r, token, branches }: { r: ReservationWire; token: string; branches: BranchWire[] }) {
  const seat = useSeat(r.seatId);
  const tz = seat ? tzOf(branches, seat.branch) : 'UTC';
  const [busy, setBusy] = useState(false);
  const act = async (method: string, done: string) => {
    setBusy(true);
    notice.value = null;
    try {
      await rpc.call<ReservationWire>(method, { id: r.id }, token);
      say('ok', done);
      reload();
    } catch (err) {
      failed(err, tz);
    } finally {
      setBusy(false);
    }
  };
  const name = seat ? `${seat.label}` : `seat ${r.seatId}`;
  return (
    <li class="booking" data-reservation={r.id}>
      <div class="what">
        <strong>{name}</strong>
        {seat && (
          <span class="muted">
            {' '}
            · {seat.area}, {seat.branch}
          </span>
        )}
        <div>{seat ? windowIn(r.start, r.end, tz) : ''}</div>
      </div>
      <span class={`badge ${r.status.toLowerCase()}`}>{STATUS_WORDS[r.status] ?? r.status}</span>
      <div class="row-actions">
        {r.status === 'CONFIRMED' && (
          <>
            <button type="button" disabled={busy} onClick={() => void act('reservations.checkIn', `Checked in to ${name}.`)}>
              Check in
            </button>
            <button type="button" class="danger" disabled={busy} onClick={() => void act('reservations.cancel', `Cancelled ${name}.`)}>
              Cancel
            </button>
          </>
        )}
        {r.status === 'CHECKED_IN' && (
          <button type="button" disabled={busy} onClick={() => void act('reservations.checkOut', `Checked out of ${name}. Thank you!`)}>
            Leave (check out)
          </button>
        )}
      </div>
    </li>
  );
}

function MyBookings({ token, branches }: { token: string; branches: BranchWire[] }) {
  const [list, setList] = useState<ReservationWire[] | null>(null);
  const version = reloads.value;
  useEffect(() => {
    let live = true;
    rpc.call<{ reservations: ReservationWire[] }>('reservations.mine', { scope: 'upcoming', limit: 20 }, token).then(
      (r) => live && setList(r.reservations.filter((x) => x.status !== 'OFFERED')),
      (err) => live && failed(err),
    );
    return () => {
      live = false;
    };
  }, [token, version]);
  return (
    <section class="card" aria-labelledby="bookings-title">
      <h2 id="bookings-title">My bookings</h2>
      {list === null ? (
        <p class="muted">Loading…</p>
      ) : list.length === 0 ? (
        <p class="muted">No upcoming bookings.</p>
      ) : (
        <ul class="bookings">
          {list.map((r) => (
            <BookingRow key={`${r.id}-${r.status}`} r={r} token={token} branches={branches} />
          ))}
        </ul>
      )}
    </section>
  );
}

function useNow(everyMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

function claimBy(iso: string, tz: string, now: number): string {
  const left = Math.max(0, Math.round((Date.parse(iso) - now) / 60_000));
  return `${timeIn(iso, tz)} (${left < 1 ? 'less than a minute' : `${left} min`} left)`;
}

async function claim(waitlistId: number, token: string, tz: string): Promise<void> {
  notice.value = null;
  try {
    const r = await rpc.call<ReservationWire>('waitlist.claim', { id: waitlistId }, token);
    const seat = await directory.get(r.seatId);
    offer.value = null;
    say('ok', `Claimed: ${seat.label} (${seat.area}) is yours, ${windowIn(r.start, r.end, tz)}.`);
    reload();
  } catch (err) {
    failed(err, tz);
    reload();
  }
}

function OfferBanner({ token, branches }: { token: string; branches: BranchWire[] }) {
  const o = offer.value;
  const seat = useSeat(o?.reservation.seatId);
  const now = useNow(15_000);
  if (!o) return null;
  const tz = seat ? tzOf(branches, seat.branch) : 'UTC';
  return (
    <section class="offer" role="alert" aria-labelledby="offer-title">
      <h2 id="offer-title">A seat is free for you</h2>
      <p>
        {seat ? `${seat.label} (${seat.area}, ${seat.branch})` : `SeatWire ${o.reservation.seatId}`}, {windowIn(o.reservation.start, o.reservation.end, tz)}.
        <br />
        Claim it by <strong data-claim-by>{claimBy(o.offerExpiresAt, tz, now)}</strong>.
      </p>
      <div class="actions">
        <button class="primary" type="button" onClick={() => void claim(o.waitlistId, token, tz)}>
          Claim this seat
        </button>
        <button type="button" onClick={() => (offer.value = null)}>
          Not now
        </button>
      </div>
    </section>
  );
}

function WaitRow({ e, token, branches }: { e: WaitlistEntryWire; token: string; branches: BranchWire[] }) {
  const seat = useSeat(e.offer?.seatId ?? e.seatId);
  const branchName = e.branch ?? branches.find((b) => b.id === e.branchId)?.name ?? '';
  const tz = branches.find((b) => b.id === e.branchId)?.timezone ?? 'UTC';
  const now = useNow(15_000);
  const leave = async () => {
    notice.value = null;
    try {
      await rpc.call('waitlist.leave', { id: e.id }, token);
      say('ok', e.status === 'OFFERED' ? 'Offer declined.' : 'You left the waitlist.');
      if (offer.value?.waitlistId === e.id) offer.value = null;
      reload();
    } catch (err) {
      failed(err, tz);
    }
  };
  const target = e.seatId != null ? `SeatWire ${seat?.label ?? e.seatId}` : `Any seat, ${branchName}`;
  return (
    <li class="booking" data-waitlist={e.id}>
      <div class="what">
        <strong>{target}</strong>
        <div>{windowIn(e.start, e.end, tz)}</div>
        {e.status === 'WAITING' && e.position != null && <div class="muted">Number {e.position} in line</div>}
        {e.status === 'OFFERED' && e.offer && (
          <div>
            Offered: {seat?.label ?? `seat ${e.offer.seatId}`}. Claim by {claimBy(e.offer.offerExpiresAt, tz, now)}.
          </div>
        )}
      </div>
      <span class={`badge ${e.status.toLowerCase()}`}>{e.status === 'WAITING' ? 'Waiting' : e.status === 'OFFERED' ? 'Offer' : e.status.toLowerCase()}</span>
      <div class="row-actions">
        {e.status === 'OFFERED' && (
          <button type="button" class="primary" onClick={() => void claim(e.id, token, tz)}>
            Claim
          </button>
        )}
        {(e.status === 'WAITING' || e.status === 'OFFERED') && (
          <button type="button" onClick={() => void leave()}>
            {e.status === 'OFFERED' ? 'Decline' : 'Leave'}
          </button>
        )}
      </div>
    </li>
  );
}

function Waitlist({ token, branches }: { token: string; branches: BranchWire[] }) {
  const [list, setList] = useState<WaitlistEntryWire[] | null>(null);
  const version = reloads.value;
  useEffect(() => {
    let live = true;
    rpc.call<WaitlistEntryWire[]>('waitlist.mine', undefined, token).then(
      (r) => live && setList(r.filter((e) => e.status === 'WAITING' || e.status === 'OFFERED')),
      (err) => live && failed(err),
    );
    return () => {
      live = false;
    };
  }, [token, version]);
  if (!list || list.length === 0) return null;
  return (
    <section class="card" aria-labelledby="waitlist-title">
      <h2 id="waitlist-title">Waitlist</h2>
      <ul class="bookings">
        {list.map((e) => (
          <WaitRow key={`${e.id}-${e.status}`} e={e} token={token} branches={branches} />
        ))}
      </ul>
    </section>
  );
}

function onPersonal(f: PersonalFrame, branches: BranchWire[]): void {
  // `away` and `awayEnding` come with away holds (a checked-in seat left empty for a while).
  switch (f.kind as string) {
    case 'offer':
      if (f.waitlistId !== undefined && f.offerExpiresAt) offer.value = { waitlistId: f.waitlistId, reservation: f.reservation, offerExpiresAt: f.offerExpiresAt };
      break;
    case 'offerExpired':
      if (offer.value?.waitlistId === f.waitlistId) offer.value = null;
      say('info', 'An offer from the waitlist lapsed before it was claimed.');
      break;
    case 'noShow':
      say('info', 'A booking was marked as a no-show: nobody checked in.');
      break;
    case 'released':
      say('info', 'Your seat was released: it stayed empty after you checked in.');
      break;
    case 'away':
      say('info', 'Your seat is empty: it is held for you for a while. Come back or check out.');
      break;
    case 'awayEnding':
      say('info', 'Your held seat will be released in a few minutes.');
      break;
  }
  void branches;
  reload();
}

function Home({ s }: { s: Session }) {
  const [branches, setBranches] = useState<BranchWire[]>([]);
  const [branchId, setBranchId] = useState<number>(() => Number(localStorage.getItem('carrel.branch')) || 0);
  const [areas, setAreas] = useState<string[]>([]);
  const board = useMemo(() => new Board(), []);
  const branch = branches.find((b) => b.id === branchId) ?? branches[0];

  useEffect(() => {
    rpc.call<BranchWire[]>('branches.list').then(setBranches, (err) => failed(err));
  }, []);

  useEffect(() => {
    if (!branch) return;
    localStorage.setItem('carrel.branch', String(branch.id));
    let live = true;
    rpc.call<SeatWire[]>('seats.list', { branch: branch.id }).then(
      (seats) => live && setAreas([...new Set(seats.map((x) => x.area))].sort()),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [branch?.id]);

  // The live feed: the branch's seats (the free count) and this user's personal events.
  const personal = useCallback((f: PersonalFrame) => onPersonal(f, branches), [branches]);
  useEffect(() => {
    if (!branch) return;
    const feed = new LiveFeed({
      url: wsUrl('/ws/live'),
      branch: String(branch.id),
      token: s.token,
      handlers: {
        snapshot: (f) => board.load({ id: f.branchId, name: f.branch }, f.seats),
        seat: (f) => void board.apply(f),
        personal,
      },
    });
    feed.start();
    return () => feed.stop();
  }, [branch?.id, s.token, personal]);

  return (
    <>
      <header class="bar">
        <span class="brand">carrel</span>
        <span class="who">
          {s.user.name}
          <button type="button" class="link" onClick={() => session.logout()}>
            Log out
          </button>
        </span>
      </header>
      <main class="page student">
        <div class="main-col">
          <Notice />
          <OfferBanner token={s.token} branches={branches} />
          {branches.length > 0 && branch && (
            <>
              <label class="branch-pick">
                Library
                <select value={branch.id} onChange={(e) => setBranchId(Number(e.currentTarget.value))}>
                  {branches.map((b) => (
                    <option key={b.id} value={b.id}>
                      {b.name}
                    </option>
                  ))}
                </select>
              </label>
              <Finder key={branch.id} branch={branch} token={s.token} areas={areas} board={board} />
            </>
          )}
        </div>
        <aside class="side-col" aria-label="Your bookings and waitlist">
          <Waitlist token={s.token} branches={branches} />
          <MyBookings token={s.token} branches={branches} />
        </aside>
      </main>
    </>
  );
}

function Notice() {
  const n = notice.value;
  const area = useRef<HTMLDivElement>(null);
  // What an action says appears at the top; the button that caused it may be far below.
  useEffect(() => {
    if (n) area.current?.scrollIntoView({ block: 'nearest' });
  }, [n]);
  return (
    <div class="notice-area" role="status" aria-live="polite" ref={area}>
      {n && (
        <p class={`notice ${n.kind}`}>
          <span>{n.text}</span>
          <button type="button" class="link" aria-label="Dismiss" onClick={() => (notice.value = null)}>
            ✕
          </button>
        </p>
      )}
    </div>
  );
}

function App() {
  const s = session.current.value;
  if (!s) {
    return (
      <main class="page narrow">
        <p class="brand big">carrel</p>
        <Notice />
        <LoginForm
          rpc={rpc}
          title="Book a study seat"
          intro="Log in with your student id to book a seat, see your bookings and get offers from the waitlist."
          allowRegister
          login={async (id, pw) => {
            await session.login(rpc, id, pw);
            notice.value = null;
          }}
        />
      </main>
    );
  }
  return <Home s={s} />;
}

render(<App />, document.getElementById('app')!);
