// The screenshots in docs/screens/ (docs/web.md), made from a running carrel with some life in
// it: bookings, check-ins, walk-ins a sensor sees, sensors gone quiet, seats out of service, a
// waitlist offer. Not part of the suite: it runs only when asked,
//
//   CARREL_SCREENSHOTS=1 npx vitest run test/e2e/screenshots.test.ts
//
// and needs chromium, as the browser tests do. The demo branch's zone is moved to one where it is
// the middle of the day now, so every run books "now" and shows a busy library.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { RpcClient } from '../../clients/rpcClient.js';
import { addBenchBranch, BENCH_BRANCH } from '../../loadtest/target.js';
import { projectRoot } from '../../src/paths.js';
import { browserAvailable, ensureWebBuilt, launchBrowser } from '../support/browser.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { connectSensor, sendReadings } from '../support/live.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { zonedToIso } from '../../web/src/lib/zoned.js';

const OUT = join(projectRoot, 'docs', 'screens');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1440, height: 900 };
const BRANCH = 'Main Library';

/** A city where the clock now reads between 10:00 and 15:59, so the library is open and busy. */
function middayZone(): string {
  const zones = ['Europe/London', 'Europe/Berlin', 'Asia/Kolkata', 'Asia/Singapore', 'Asia/Tokyo', 'Australia/Sydney', 'Pacific/Auckland', 'Pacific/Honolulu', 'America/Los_Angeles', 'America/Chicago', 'America/New_York', 'America/Sao_Paulo'];
  const hour = (tz: string) => Number(new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', hourCycle: 'h23' }).format(new Date()));
  return zones.find((z) => hour(z) >= 10 && hour(z) < 16) ?? 'UTC';
}

describe.skipIf(process.env.CARREL_SCREENSHOTS !== '1' || !browserAvailable)('screenshots of the pages for docs/', () => {
  let db: TestDatabase;
  let t: TestServer;
  let browser: Browser;
  let base: string;
  let mainId: number;
  const closers: (() => unknown)[] = [];

  async function client(studentId: string, password = 'password123'): Promise<RpcClient> {
    const c = await RpcClient.connect('127.0.0.1', t.server.ports.rpc);
    closers.push(() => c.close());
    if (studentId !== 'admin' && !/^s100\d$/.test(studentId)) await c.call('auth.register', { studentId, name: studentId, password });
    await c.call('auth.login', { studentId, password });
    return c;
  }

  async function shot(page: Page, name: string): Promise<void> {
    await page.waitForTimeout(400); // fonts and the last render
    await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: false });
  }

  async function page(viewport: { width: number; height: number }): Promise<Page> {
    const ctx = await browser.newContext({ viewport, deviceScaleFactor: 1 });
    closers.push(() => ctx.close());
    return ctx.newPage();
  }

  async function login(p: Page, studentId: string, password: string): Promise<void> {
    await p.getByLabel('Student id').fill(studentId);
    await p.getByLabel('Password').fill(password);
    await p.getByRole('button', { name: 'Log in' }).click();
  }

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    ensureWebBuilt();
    db = await freshDatabase();
    const allDay = JSON.stringify(Object.fromEntries(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'].map((d) => [d, { open: '07:00', close: '23:00' }])));
    await db.pool.query('UPDATE branches SET timezone = $1, hours = $2 WHERE name = $3', [middayZone(), allDay, BRANCH]);
    await addBenchBranch(db.pool, 2000);
    t = await startTestServer({ sensors: { offlineAfterMs: 1_500 }, rules: { maxActivePerUser: 50, dailyQuotaMinutes: 10_000, weeklyQuotaMinutes: 10_000 } }, { db });
    base = `http://127.0.0.1:${t.server.ports.http}`;
    browser = await launchBrowser();

    // Life in the library: bookings now, some checked in, walk-ins, quiet sensors, broken seats.
    mainId = (await db.pool.query<{ id: number }>('SELECT id FROM branches WHERE name = $1', [BRANCH])).rows[0]!.id;
    const seats = (await db.pool.query<{ id: number; label: string }>('SELECT s.id, s.label FROM seats s JOIN branches b ON b.id = s.branch_id WHERE b.name = $1 ORDER BY s.id', [BRANCH])).rows;
    const byLabel = (l: string) => seats.find((s) => s.label === l)!.id;
    const now = Date.now();
    const slot = 15 * 60_000;
    const start = new Date(Math.floor(now / slot) * slot).toISOString();
    const end = new Date(Math.floor(now / slot) * slot + 2 * 3_600_000).toISOString();
    const others = await client('reader');
    const booked = ['Q-02', 'Q-05', 'Q-06', 'Q-11', 'R-01', 'R-02', 'R-07', 'R-08', 'R-13', 'G-01', 'G-02', 'G-03', 'G-04', 'G-09', 'G-10'];
    const bookings = new Map<string, number>();
    for (const l of booked) bookings.set(l, (await others.call<{ id: number }>('reservations.create', { seatId: byLabel(l), start, end })).id);
    for (const l of ['Q-05', 'R-01', 'R-07', 'G-01', 'G-02', 'G-03']) await others.call('reservations.checkIn', { id: bookings.get(l) });
    const admin = await client('admin', 'admin-pass-2026');
    for (const l of ['R-17', 'R-18']) await admin.call('admin.seats.setStatus', { seatId: byLabel(l), status: 'OUT_OF_SERVICE' });
    // Two seats a sensor reported once, then never again: offline after sensors.offlineAfterMs.
    const quiet = await connectSensor(t.server.ports.sensor, { sensorId: 'gw-quiet' });
    await sendReadings(quiet, ['Q-14', 'G-16'].map((l) => ({ seatId: byLabel(l), occupied: false, at: Date.now() })));
    quiet.socket.destroy();
    await new Promise((r) => setTimeout(r, 2_500));
    // Checked-in seats read occupied, and two walk-ins sit in unbooked seats; this gateway keeps beating.
    const live = await connectSensor(t.server.ports.sensor, { sensorId: 'gw-live' });
    const beat = setInterval(() => live.send({ type: 'heartbeat' }), 300);
    closers.push(() => (clearInterval(beat), live.socket.destroy()));
    await sendReadings(live, ['Q-05', 'R-01', 'R-07', 'G-01', 'G-02', 'G-03', 'Q-09', 'R-11'].map((l) => ({ seatId: byLabel(l), occupied: true, at: Date.now() })));
  });

  afterAll(async () => {
    for (const c of closers.reverse()) await c();
    await browser?.close();
    await t?.close();
    await db?.drop();
  });

  it('the entrance display, on a wall screen and a phone, and for a 2,000-seat branch', async () => {
    for (const [name, vp] of [
      ['signage-desktop', DESKTOP],
      ['signage-phone', PHONE],
    ] as const) {
      const p = await page(vp);
      await p.goto(`${base}/signage/${encodeURIComponent(BRANCH)}`);
      await p.locator('.status.live').waitFor();
      await p.locator('[data-state="occupied"]').first().waitFor();
      await shot(p, name);
    }
    const big = await page({ width: 1920, height: 1080 });
    await big.goto(`${base}/signage/${encodeURIComponent(BENCH_BRANCH)}`);
    await big.locator('.status.live').waitFor();
    await shot(big, 'signage-2000-seats');
  });

  it("the student's page: logging in, finding and booking, and a waitlist offer", { timeout: 60_000 }, async () => {
    for (const [suffix, vp] of [
      ['phone', PHONE],
      ['desktop', DESKTOP],
    ] as const) {
      const p = await page(vp);
      await p.goto(`${base}/`);
      await p.getByLabel('Student id').waitFor();
      await shot(p, `student-login-${suffix}`);
      await login(p, 's1001', 'password123');
      await p.getByLabel('Library').selectOption(String(mainId));
      await p.getByLabel('Power outlet').check();
      await p.getByRole('button', { name: 'Choose a seat' }).click();
      await p.getByRole('heading', { name: /free seats?,/ }).waitFor();
      if (suffix === 'phone') {
        await p.getByRole('button', { name: /^Book seat Q-04/ }).click();
        await p.getByText(/^Booked Q-04/).waitFor();
      }
      await shot(p, `student-${suffix}`);
    }

    // An offer: every seat of a small branch is taken, s1002 waits, a seat is given back.
    const b = await db.pool.query<{ id: number }>(
      `INSERT INTO branches (name, timezone, hours) VALUES ('Law Library', $1, $2) RETURNING id`,
      [middayZone(), JSON.stringify(Object.fromEntries(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'].map((d) => [d, { open: '00:00', close: '24:00' }])))],
    );
    const law = (await db.pool.query<{ id: number }>(`INSERT INTO seats (branch_id, area, label) VALUES ($1, 'Stacks', 'L-01'), ($1, 'Stacks', 'L-02') RETURNING id`, [b.rows[0]!.id])).rows;
    await t.live.discover();
    const p = await page(PHONE);
    await p.goto(`${base}/`);
    await login(p, 's1002', 'password123');
    await p.getByLabel('Library').selectOption(String(b.rows[0]!.id));
    await p.getByRole('heading', { name: 'Find a seat' }).waitFor();
    await p.getByLabel('Day').selectOption({ index: 1 });
    await p.getByLabel('From').selectOption('14:00');
    await p.getByLabel('For').selectOption('120');
    const day = await p.getByLabel('Day').inputValue();
    const startIso = zonedToIso(day, '14:00', middayZone());
    const endIso = new Date(Date.parse(startIso) + 2 * 3_600_000).toISOString();
    const hog = await client('hog');
    const held = [];
    for (const s of law) held.push(await hog.call<{ id: number }>('reservations.create', { seatId: s.id, start: startIso, end: endIso }));
    await p.getByRole('button', { name: 'Choose a seat' }).click();
    await p.getByRole('button', { name: /^Join the waitlist/ }).click();
    await p.getByText(/^You are on the waitlist/).waitFor();
    await hog.call('reservations.cancel', { id: held[1]!.id });
    await p.getByRole('alert').filter({ hasText: 'A seat is free for you' }).waitFor();
    await shot(p, 'student-offer-phone');
  });

  it("the staff page: live counts and flags, the seat map, the utilization report", async () => {
    for (const [suffix, vp] of [
      ['desktop', DESKTOP],
      ['phone', PHONE],
    ] as const) {
      const p = await page(vp);
      await p.goto(`${base}/staff`);
      await login(p, 'admin', 'admin-pass-2026');
      await p.getByLabel('Branch').selectOption({ label: BRANCH });
      await p.locator('[data-state="occupied"]').first().waitFor();
      await p.getByRole('heading', { name: 'Utilization' }).waitFor();
      await p.waitForTimeout(800);
      await shot(p, `staff-${suffix}`);
    }
  });
});
