// The web pages in a real browser (docs/web.md): chromium against a carrel started here, its HTTP
// port serving the built pages and the WebSocket transports. One browser for the whole file.
//
// The branch is made for this file, open around the clock in a zone where it is about noon now,
// so "today, from the slot under way, for two hours" can always be booked whatever the time of
// the run.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { browserAvailable, ensureWebBuilt, launchBrowser } from '../support/browser.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, sendReadings, subscribe, waitFor } from '../support/live.js';
import type { RawPeer } from '../support/peer.js';
import { startTestServer, type DeepPartial, type TestServer } from '../support/server.js';
import type { Config } from '../../src/config/schema.js';

const BRANCH = 'E2E Library';

/** Hours the branch's clock is ahead of UTC: it reads about noon now. */
const OFFSET_H = 12 - new Date().getUTCHours();
/** That fixed-offset zone (Etc/GMT-5 is UTC+5). */
const ZONE = OFFSET_H === 0 ? 'Etc/GMT' : `Etc/GMT${OFFSET_H > 0 ? '-' : '+'}${Math.abs(OFFSET_H)}`;

const OVERRIDES: DeepPartial<Config> = {
  // Several bookings per test user; the limits themselves are tested elsewhere.
  rules: { maxActivePerUser: 20, dailyQuotaMinutes: 1440, weeklyQuotaMinutes: 10_000 },
};

interface Seat {
  id: number;
  label: string;
  area: string;
}

describe.skipIf(!browserAvailable)('the web pages in a browser', () => {
  let db: TestDatabase;
  let t: TestServer;
  let browser: Browser;
  let base: string;
  let seats: Seat[];
  let branchId: number;
  const contexts: BrowserContext[] = [];
  const peers: { close(): void }[] = [];

  async function newPage(viewport = { width: 390, height: 844 }): Promise<Page> {
    const ctx = await browser.newContext({ viewport });
    contexts.push(ctx);
    const page = await ctx.newPage();
    page.setDefaultTimeout(10_000);
    return page;
  }

  async function rpc(): Promise<RpcClient> {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    peers.push(c);
    return c;
  }

  async function sensor(): Promise<RawPeer> {
    const s = await connectSensor(t.server.ports.sensor);
    peers.push({ close: () => s.socket.destroy() });
    return s;
  }

  /** A registered, logged-in user on an RPC connection of its own. */
  async function user(studentId: string): Promise<RpcClient> {
    const c = await rpc();
    await c.call('auth.register', { studentId, name: `User ${studentId}`, password: 'password123' });
    await c.call('auth.login', { studentId, password: 'password123' });
    return c;
  }

  /** DOM nodes, event listeners and JS heap after a garbage collection (DevTools Protocol). */
  async function figures(page: Page): Promise<{ nodes: number; listeners: number; heapBytes: number }> {
    const cdp = await page.context().newCDPSession(page);
    try {
      await cdp.send('Performance.enable');
      await cdp.send('HeapProfiler.collectGarbage');
      await cdp.send('HeapProfiler.collectGarbage');
      const m = new Map((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
      return { nodes: m.get('Nodes')!, listeners: m.get('JSEventListeners')!, heapBytes: m.get('JSHeapUsedSize')! };
    } finally {
      await cdp.detach();
    }
  }

  const seatEl = (page: Page, id: number, state: string) => page.locator(`[data-seat="${id}"][data-state="${state}"]`);

  async function openSignage(): Promise<Page> {
    const page = await newPage({ width: 1440, height: 900 });
    await page.goto(`${base}/signage/${encodeURIComponent(BRANCH)}`);
    await page.locator('.status.live').waitFor();
    await page.locator(`[data-seat="${seats[0]!.id}"]`).waitFor();
    return page;
  }

  /** Registers on `/` through the form and lands on the booking page of the test branch. */
  async function openStudent(studentId: string): Promise<Page> {
    const page = await newPage();
    await page.goto(`${base}/`);
    await page.getByRole('button', { name: 'Create an account' }).click();
    await page.getByLabel('Student id').fill(studentId);
    await page.getByLabel('Your name').fill(`Student ${studentId}`);
    await page.getByLabel('Password').fill('password123');
    await page.getByRole('button', { name: 'Create account and log in' }).click();
    await page.getByLabel('Library').selectOption(String(branchId));
    await page.getByRole('heading', { name: 'Find a seat' }).waitFor();
    return page;
  }

  beforeAll(async () => {
    ensureWebBuilt();
    db = await freshDatabase();
    const b = await db.pool.query<{ id: number }>(
      `INSERT INTO branches (name, timezone, hours, padding_minutes) VALUES ($1, $2, $3, 0) RETURNING id`,
      [BRANCH, ZONE, JSON.stringify(Object.fromEntries(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'].map((d) => [d, { open: '00:00', close: '24:00' }])))],
    );
    branchId = b.rows[0]!.id;
    const s = await db.pool.query<Seat>(
      `INSERT INTO seats (branch_id, area, label, has_power, has_monitor)
       VALUES ($1, 'Quiet Room', 'Q-1', true, false), ($1, 'Quiet Room', 'Q-2', false, false),
              ($1, 'Reading Room', 'R-1', true, true), ($1, 'Reading Room', 'R-2', false, true)
       RETURNING id, label, area`,
      [branchId],
    );
    seats = s.rows;
    t = await startTestServer(OVERRIDES, { db });
    base = `http://127.0.0.1:${t.server.ports.http}`;
    browser = await launchBrowser();
  });

  afterAll(async () => {
    for (const p of peers) p.close();
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await t?.close();
    await db?.drop();
  });

  it('a sensor reading shows on the signage page within a second', async () => {
    const signage = await openSignage();
    const seat = seats[1]!;
    await seatEl(signage, seat.id, 'free').waitFor();
    const freeBefore = Number(await signage.locator('[data-total-free]').textContent());
    const gateway = await sensor();
    const sent = Date.now();
    const ack = sendReadings(gateway, [{ seatId: seat.id, occupied: true, at: sent }]);
    await seatEl(signage, seat.id, 'occupied').waitFor({ timeout: 1_000 });
    const shownMs = Date.now() - sent;
    expect((await ack).applied).toBe(1);
    expect(shownMs).toBeLessThan(1_000);
    await expect.poll(async () => Number(await signage.locator('[data-total-free]').textContent())).toBe(freeBefore - 1);
    // Unbooked and occupied: the page marks it so (a second cue beside the colour for staff).
    expect(await signage.locator(`[data-seat="${seat.id}"]`).getAttribute('title')).toContain('occupied without a booking');
    await sendReadings(gateway, [{ seatId: seat.id, occupied: false, at: Date.now() }]);
    await seatEl(signage, seat.id, 'free').waitFor({ timeout: 1_000 });
  });

  it('a student registers and books a chosen seat on /, and the signage page shows it reserved', async () => {
    const signage = await openSignage();
    const student = await openStudent('e2e-booker');
    const q1 = seats.find((s) => s.label === 'Q-1')!;
    await student.getByLabel('Area').selectOption('Quiet Room');
    await student.getByLabel('Power outlet').check();
    await student.getByRole('button', { name: 'Choose a seat' }).click();
    // Only Q-1 is in the Quiet Room with power.
    await student.getByRole('heading', { name: /^1 free seat,/ }).waitFor();
    await student.getByRole('button', { name: 'Book seat Q-1, power outlet' }).click();
    await student.getByText(/^Booked Q-1 \(Quiet Room\)/).waitFor();
    await seatEl(signage, q1.id, 'reserved').waitFor({ timeout: 5_000 });
    // It is listed under My bookings, with what can be done to it.
    const row = student.locator('.booking', { hasText: 'Q-1' });
    await row.getByRole('button', { name: 'Cancel' }).waitFor();
    await row.getByRole('button', { name: 'Check in' }).click();
    await student.getByText('Checked in to Q-1.').waitFor();
    await row.getByText('Checked in').waitFor();
  });

  it('a waitlist offer appears live with its claim-by time, and is claimed', async () => {
    const student = await openStudent('e2e-waiter');
    // Tomorrow 10:00-11:00 on the branch's clock: another user takes every seat.
    await student.getByLabel('Day').selectOption({ index: 1 });
    await student.getByLabel('From').selectOption('10:00');
    await student.getByLabel('For').selectOption('60');
    const tomorrow = await student.getByLabel('Day').inputValue();
    const start = new Date(Date.parse(`${tomorrow}T10:00:00Z`) - OFFSET_H * 3_600_000).toISOString();
    const end = new Date(Date.parse(start) + 3_600_000).toISOString();
    // One user a seat: a person holds one seat at a time (rules.oneSeatAtATime).
    const hogs = [];
    const held = [];
    for (const [i, s] of seats.entries()) {
      const hog = await user(`e2e-hog-${i}`);
      hogs.push(hog);
      held.push(await hog.call<{ id: number }>('reservations.create', { seatId: s.id, start, end }));
    }

    await student.getByRole('button', { name: 'Choose a seat' }).click();
    await student.getByRole('heading', { name: /^0 free seats,/ }).waitFor();
    await student.getByRole('button', { name: `Join the waitlist for ${BRANCH}` }).click();
    await student.getByText(/^You are on the waitlist/).waitFor();
    await student.locator('.booking', { hasText: 'Any seat' }).getByText('Waiting').waitFor();

    // A seat is given back: the offer reaches the page as a personal event, without a reload.
    const freed = held[2]!;
    await hogs[2]!.call('reservations.cancel', { id: freed.id });
    const banner = student.getByRole('alert').filter({ hasText: 'A seat is free for you' });
    await banner.waitFor({ timeout: 5_000 });
    const claimBy = (await banner.locator('[data-claim-by]').textContent())!;
    expect(claimBy).toMatch(/^\d\d:\d\d \(\d+ min left\)$/);
    await banner.getByText(/R-1|R-2|Q-1|Q-2/).waitFor();
    await banner.getByRole('button', { name: 'Claim this seat' }).click();
    await student.getByText(/^Claimed: /).waitFor();
    await banner.waitFor({ state: 'detached' });
    // The claimed booking is the student's now.
    const mine = student.locator('.booking', { hasText: '10:00–11:00' });
    await mine.getByText('Booked').waitFor();
  });

  it('the signage page ends thousands of events as it began: same DOM, same listeners, no heap growth', { timeout: 120_000 }, async () => {
    const signage = await openSignage();
    // The seats nobody has booked for now (Q-1 is checked in above): a reading alone decides their state.
    const unbooked = seats.filter((s) => s.label !== 'Q-1').map((s) => s.id);
    const occupied = new Map<number, boolean>();
    let at = Date.now() - 3_600_000;
    /** n seat events through the live model, in batches the page keeps up with; resolves once the page shows the last. */
    const churn = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const seat = unbooked[i % unbooked.length]!;
        const next = !(occupied.get(seat) ?? false);
        occupied.set(seat, next);
        t.live.model.applyReading(seat, next, ++at, Date.now(), 'gw-churn');
        if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20));
      }
      // A memory test, not a timing one: on a loaded CI machine the page may take a while to catch up.
      for (const [seat, on] of occupied) await seatEl(signage, seat, on ? 'occupied' : 'free').waitFor({ timeout: 30_000 });
    };
    await churn(3_000); // warm: the page's code is compiled and its caches filled
    const warm = await figures(signage);
    await churn(12_000);
    const after = await figures(signage);
    expect(after.nodes).toBe(warm.nodes);
    expect(after.listeners).toBe(warm.listeners);
    // A leak of even 32 bytes an event would show as 384 kB here (seen: about 100 kB of drift).
    expect(after.heapBytes - warm.heapBytes).toBeLessThan(384 * 1024);
    // Every event was applied in order, without a reconnect.
    expect(await signage.locator('.status.live').count()).toBe(1);
    // Back to free, for the tests after this one.
    for (const seat of occupied.keys()) t.live.model.applyReading(seat, false, ++at, Date.now(), 'gw-churn');
    for (const seat of occupied.keys()) await seatEl(signage, seat, 'free').waitFor();
  });

  it('the pages recover by themselves after the server restarts', { timeout: 60_000 }, async () => {
    const signage = await openSignage();
    const student = await openStudent('e2e-restart');
    const before = await figures(signage);
    const ports = t.server.ports;
    await t.server.shutdown();
    await signage.locator('.status.offline').waitFor({ timeout: 5_000 });

    t = await startTestServer({ ...OVERRIDES, ports: { rpc: ports.rpc, sensor: ports.sensor, pubsub: ports.pubsub, http: ports.http } }, { db });
    await signage.locator('.status.live').waitFor({ timeout: 30_000 });
    // Resubscribed, not just reconnected: a reading after the restart shows.
    const seat = seats[3]!;
    const gateway = await sensor();
    await sendReadings(gateway, [{ seatId: seat.id, occupied: true, at: Date.now() }]);
    await seatEl(signage, seat.id, 'occupied').waitFor({ timeout: 2_000 });
    // A page that reconnects for days keeps what it had: the same map, no listener left behind.
    const after = await figures(signage);
    expect(after.listeners).toBe(before.listeners);
    expect(Math.abs(after.nodes - before.nodes)).toBeLessThan(10);
    // The student page's next request goes over a new connection.
    await student.getByRole('button', { name: 'Choose a seat' }).click();
    await student.getByRole('heading', { name: /free seats?,/ }).waitFor({ timeout: 10_000 });
  });

  it('a page that stops reading /ws/live is cut off SLOW_CONSUMER like a TCP subscriber, and catches up by itself', { timeout: 45_000 }, async () => {
    const db2 = await freshDatabase();
    const slow = await startTestServer({ pubsub: { highWaterBytes: 16 * 1024, queueCapacity: 16, maxDrops: 50, slowConsumerLingerMs: 30_000 } }, { db: db2 });
    try {
      const page = await newPage({ width: 1440, height: 900 });
      await page.goto(`http://127.0.0.1:${slow.server.ports.http}/signage/Medical%20Library`);
      await page.locator('.status.live').waitFor();
      const tcp = await subscribe(slow.server.ports.pubsub, { branch: 'Medical Library' });
      peers.push({ close: () => tcp.socket.destroy() });
      tcp.socket.pause(); // stops reading, as the page is about to
      // The page's main thread is busy for a while: it reads nothing, and neither does chromium for it.
      const busy = page.evaluate(() => {
        const end = Date.now() + 8_000;
        while (Date.now() < end);
      });
      const seats = await branchSeats(db2.pool, 'Medical Library', 48);
      const hub = slow.live.hub;
      const occupied = new Map<number, boolean>();
      let at = Date.now() - 3_600_000;
      const started = Date.now();
      while (hub.stats.slowConsumers < 2 && Date.now() - started < 7_000) {
        for (const seat of seats) {
          const next = !(occupied.get(seat) ?? false);
          occupied.set(seat, next);
          slow.live.model.applyReading(seat, next, ++at, Date.now(), 'gw-churn');
        }
        await new Promise<void>((r) => setImmediate(r));
      }
      expect(hub.stats.slowConsumers).toBe(2);
      // The TCP subscriber, reading again, finds why it was cut after what was already in its socket.
      tcp.socket.resume();
      await waitFor(tcp, (f) => f.type === 'error' && f.code === 'SLOW_CONSUMER', { timeoutMs: 10_000 });
      await busy;
      // Cut off, it reconnects with `since` and shows what a new subscriber sees.
      await page.locator('.status.live').waitFor({ timeout: 10_000 });
      const fresh = await subscribe(slow.server.ports.pubsub, { branch: 'Medical Library' });
      peers.push({ close: () => fresh.socket.destroy() });
      const snap = (await waitFor(fresh, (f) => f.type === 'snapshot')) as { seats: { seatId: number; state: string }[] };
      const expected = Object.fromEntries(snap.seats.map((x) => [x.seatId, x.state]));
      await expect
        .poll(async () => Object.fromEntries((await page.locator('[data-seat]').evaluateAll((els) => els.map((e) => [e.getAttribute('data-seat'), e.getAttribute('data-state')]))).map(([k, v]) => [Number(k), v])), { timeout: 10_000 })
        .toEqual(expected);
    } finally {
      await slow.close();
      await db2.drop();
    }
  });

  // Last: the seat it books stays reserved, which the churn above would not expect.
  it('a student books the best free seat on /: the server picks one that matches, the page names it, signage shows it reserved', async () => {
    const signage = await openSignage();
    const student = await openStudent('e2e-best');
    await student.getByLabel('Area').selectOption('Quiet Room');
    await student.getByRole('button', { name: 'Book the best free seat' }).click();
    // The server picks a free seat of the Quiet Room (Q-1 may be taken by the test before).
    const booked = student.getByText(/^Booked Q-\d+ \(Quiet Room\)/);
    await booked.waitFor();
    const label = /^Booked (Q-\d+)/.exec((await booked.textContent()) ?? '')![1]!;
    const seat = seats.find((s) => s.label === label)!;
    await seatEl(signage, seat.id, 'reserved').waitFor({ timeout: 5_000 });
  });
});
