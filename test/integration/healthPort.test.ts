// The health port under abuse (docs/http.md): /readyz measures the instance itself, so a client
// that fills the request pool does not make it unready; keep-alive connections that hold the port
// cannot keep the probes out, and one address cannot take the whole port.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { waitFor } from '../support/fuzz.js';
import { CuttableProxy } from '../support/proxy.js';
import { createPool } from '../../src/db/pool.js';
import { silentLogger } from '../../src/obs/log.js';
import { CarrelServer } from '../../src/server.js';
import { testConfig } from '../support/server.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase(4);
});
afterAll(async () => db.drop());

interface ProbeResult {
  status: number;
  ms: number;
  body: string;
}

/**
 * One request on a connection of its own, as a load balancer's probe makes it; status 0 when
 * refused, reset or not answered within timeoutMs.
 */
function probe(port: number, path: string, opts: { localAddress?: string; timeoutMs?: number; headers?: Record<string, string> } = {}): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (status: number, body = ''): void => {
      if (done) return;
      done = true;
      resolve({ status, ms: performance.now() - started, body });
    };
    const req = http.request(
      { host: '127.0.0.1', port, path, agent: false, localAddress: opts.localAddress, headers: { connection: 'close', ...opts.headers }, timeout: opts.timeoutMs ?? 1_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => finish(res.statusCode ?? 0, body));
        res.on('error', () => finish(0));
      },
    );
    req.on('timeout', () => {
      req.destroy();
      finish(0);
    });
    req.on('error', () => finish(0));
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitForAsync(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Backends of the readiness probes connected to the file's database. */
async function probePids(): Promise<number[]> {
  const rows = await db.pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = 'carrel-readiness' AND datname = current_database()`);
  return rows.rows.map((r) => r.pid);
}

/** Probes `path` every `everyMs` until `until()` says stop; returns every result. */
async function probeWhile(port: number, path: string, keepOn: () => boolean, everyMs: number, opts: Parameters<typeof probe>[2] = {}): Promise<ProbeResult[]> {
  const results: ProbeResult[] = [];
  while (keepOn()) {
    results.push(await probe(port, path, opts));
    await sleep(everyMs);
  }
  return results;
}

function figures(results: ProbeResult[], withinMs: number): { probes: number; ok: number; share: number; maxMs: number } {
  const ok = results.filter((r) => r.status === 200 && r.ms <= withinMs).length;
  return { probes: results.length, ok, share: results.length === 0 ? 0 : ok / results.length, maxMs: Math.round(Math.max(0, ...results.map((r) => r.ms))) };
}

/** Figures for the report when CARREL_FIGURES is set; the assertions hold either way. */
function report(name: string, data: object): void {
  if (process.env.CARREL_FIGURES) console.log(`${name}: ${JSON.stringify(data)}`);
}

/**
 * A keep-alive connection that sends GET /healthz every everyMs from localAddress and, when the
 * server closes it, connects again after reconnectMs, until stop(). Counts what it saw.
 */
class Holder {
  opened = 0;
  closedByServer = 0;
  answers = 0;
  private socket: net.Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly done: Promise<void>;

  constructor(
    private readonly port: number,
    private readonly localAddress: string,
    private readonly everyMs: number,
    private readonly reconnectMs: number | null,
  ) {
    this.done = this.run();
  }

  get open(): boolean {
    return this.socket !== undefined && !this.socket.destroyed;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.once();
      if (this.stopped || this.reconnectMs === null) return;
      this.closedByServer++;
      await sleep(this.reconnectMs);
    }
  }

  private once(): Promise<void> {
    return new Promise((resolve) => {
      const s = net.connect({ port: this.port, host: '127.0.0.1', localAddress: this.localAddress });
      this.socket = s;
      this.opened++;
      let seen = '';
      s.setEncoding('utf8');
      s.on('error', () => undefined);
      s.on('data', (chunk: string) => {
        seen += chunk;
        const lines = seen.split('HTTP/1.1 200');
        this.answers += lines.length - 1;
        seen = lines[lines.length - 1]!.slice(-16);
      });
      const send = (): void => {
        if (!s.destroyed) s.write('GET /healthz HTTP/1.1\r\nHost: carrel\r\n\r\n');
      };
      s.once('connect', () => {
        send();
        this.timer = setInterval(send, this.everyMs);
      });
      s.once('close', () => {
        clearInterval(this.timer);
        resolve();
      });
    });
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.socket?.destroy();
    return this.done;
  }
}

describe('readiness measures the instance itself', () => {
  it('a request pool held whole by slow transactions leaves /readyz at 200 while PostgreSQL answers', async () => {
    const t = await startTestServer({ http: { readyTimeoutMs: 500 } }, { db });
    const port = t.server.ports.http;
    try {
      expect((await probe(port, '/readyz')).status).toBe(200);
      // Every connection of the request pool (4) sleeps inside a transaction, and more queries
      // queue behind them: what a client flooding uncached reads does to the pool.
      const pool = t.db.pool;
      const held = await Promise.all(Array.from({ length: 4 }, () => pool.connect()));
      const holdMs = 2_500;
      const sleeping = held.map(async (c) => {
        try {
          await c.query('BEGIN');
          await c.query('SELECT pg_sleep($1)', [holdMs / 1000]);
          await c.query('ROLLBACK');
        } finally {
          c.release();
        }
      });
      const queued = Array.from({ length: 8 }, () => pool.query('SELECT 1'));
      expect(pool.waitingCount).toBe(8);
      const stopAt = Date.now() + holdMs - 500;
      const results = await probeWhile(port, '/readyz', () => Date.now() < stopAt, 100, { timeoutMs: 1_500 });
      expect(pool.waitingCount, 'the pool was still saturated when the probes ended').toBeGreaterThan(0);
      await Promise.all([...sleeping, ...queued]);
      const f = figures(results, 500);
      report('readyz with the pool saturated', f);
      expect(f.probes).toBeGreaterThanOrEqual(3);
      expect(f, `every /readyz answered 200 within 500 ms: ${JSON.stringify(f)}`).toMatchObject({ share: 1 });
      const body = JSON.parse(results[0]!.body) as { checks: Record<string, { ok: boolean }> };
      expect(body.checks.postgres).toMatchObject({ ok: true });
    } finally {
      await t.close();
    }
  });

  it('PostgreSQL unreachable: /readyz is 503 naming postgres, and 200 again once it is back, without a restart', async () => {
    const u = new URL(db.url);
    const proxy = new CuttableProxy({ host: u.hostname, port: Number(u.port || 5432) });
    await proxy.open();
    u.host = `127.0.0.1:${proxy.port}`;
    const pool = createPool({ url: u.toString(), poolSize: 2, connectTimeoutMs: 1_000, statementTimeoutMs: 5_000 }, silentLogger);
    const server = await CarrelServer.start({ config: testConfig({ http: { readyTimeoutMs: 500 }, lifecycle: { enabled: false } }), log: silentLogger, db: pool });
    const port = server.ports.http;
    try {
      expect((await probe(port, '/readyz')).status).toBe(200);
      const before = new Set(await probePids());
      expect(before.size).toBe(1);
      await proxy.cut();
      const down = await probe(port, '/readyz', { timeoutMs: 1_500 });
      expect(down.status).toBe(503);
      expect(down.ms).toBeLessThan(1_000);
      expect(JSON.parse(down.body)).toMatchObject({ status: 'unavailable', ready: false, checks: { postgres: { ok: false } } });
      // Still down on the next probes: a failed connection is not mistaken for a healthy one.
      await sleep(300);
      expect((await probe(port, '/readyz', { timeoutMs: 1_500 })).status).toBe(503);
      await proxy.open();
      // Nobody probes, yet the probe's connection is opened again in the background.
      await waitForAsync(async () => (await probePids()).some((pid) => !before.has(pid)), 3_000, 'the probe to reconnect by itself');
      const backAt = Date.now();
      let status = 0;
      while ((status = (await probe(port, '/readyz', { timeoutMs: 1_500 })).status) !== 200 && Date.now() - backAt < 5_000) await sleep(50);
      expect(status).toBe(200);
      expect(Date.now() - backAt).toBeLessThan(500);
    } finally {
      await server.shutdown();
      await pool.end().catch(() => undefined);
      await proxy.cut();
    }
  });
});

describe('readiness: the probe connection and the event loop', () => {
  it('the probe keeps a PostgreSQL connection of its own and opens another when that one is killed', async () => {
    const t = await startTestServer({ http: { readyTimeoutMs: 500 } }, { db });
    const port = t.server.ports.http;
    try {
      expect((await probe(port, '/readyz')).status).toBe(200);
      const [first] = await probePids();
      expect(first).toBeDefined();
      await db.pool.query('SELECT pg_terminate_backend($1)', [first]);
      // Whether the probe saw its connection die or finds out on its next query, it answers from a new one.
      expect((await probe(port, '/readyz', { timeoutMs: 1_500 })).status).toBe(200);
      const after = await probePids();
      expect(after).toHaveLength(1);
      expect(after[0]).not.toBe(first);
    } finally {
      await t.close();
    }
  });

  it('a probe whose query hangs reports 503 at http.readyTimeoutMs, and the next probe does not queue behind it', async () => {
    const u = new URL(db.url);
    const proxy = new CuttableProxy({ host: u.hostname, port: Number(u.port || 5432) });
    await proxy.open();
    u.host = `127.0.0.1:${proxy.port}`;
    const pool = createPool({ url: u.toString(), poolSize: 2, connectTimeoutMs: 1_000, statementTimeoutMs: 5_000 }, silentLogger);
    const server = await CarrelServer.start({ config: testConfig({ http: { readyTimeoutMs: 300 }, lifecycle: { enabled: false } }), log: silentLogger, db: pool });
    const port = server.ports.http;
    try {
      expect((await probe(port, '/readyz')).status).toBe(200);
      // Every byte towards PostgreSQL now arrives 3 s late: the link hangs without failing.
      proxy.delayMs = 3_000;
      const hung = await probe(port, '/readyz', { timeoutMs: 1_500 });
      expect(hung.status).toBe(503);
      expect(JSON.parse(hung.body)).toMatchObject({ checks: { postgres: { ok: false, error: 'timeout' } } });
      proxy.delayMs = 0;
      // The old connection still has SELECT 1 pending for seconds; the next probe uses a new one.
      const next = await probe(port, '/readyz', { timeoutMs: 1_500 });
      expect(next.status).toBe(200);
      expect(next.ms).toBeLessThan(300);
    } finally {
      await server.shutdown();
      await pool.end().catch(() => undefined);
      await proxy.cut();
    }
  });

  it('an event loop blocked past http.readyMaxEventLoopLagMs makes /readyz 503 naming eventLoop, and 200 once it runs on time', async () => {
    const t = await startTestServer({ http: { readyMaxEventLoopLagMs: 300 } }, { db });
    const port = t.server.ports.http;
    try {
      expect((await probe(port, '/readyz')).status).toBe(200);
      await sleep(250); // a few samples on time first
      const until = Date.now() + 700;
      while (Date.now() < until); // the loop is stuck: every port waits
      const lagging = await probe(port, '/readyz');
      expect(lagging.status).toBe(503);
      expect(JSON.parse(lagging.body)).toMatchObject({ ready: false, checks: { eventLoop: { ok: false, error: 'EVENT_LOOP_LAG' }, postgres: { ok: true } } });
      const lag = Number(/^carrel_event_loop_lag_seconds (\S+)$/m.exec((await probe(port, '/metrics')).body)?.[1]);
      expect(lag).toBeGreaterThanOrEqual(0.3);
      // The window is a second: a stall long past keeps nobody unready.
      await sleep(1_300);
      expect((await probe(port, '/readyz')).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('GET /metrics with http.metricsToken', () => {
  const token = 'metrics-token-0123456789abcdef';
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ http: { metricsToken: token } }, { db });
  });
  afterAll(async () => t.close());

  it('answers 401 without a token, with a wrong one or another scheme, and 200 with the bearer token', async () => {
    const port = t.server.ports.http;
    const none = await probe(port, '/metrics');
    expect(none.status).toBe(401);
    expect(none.body).toBe('{"error":"unauthorized"}');
    expect(none.body).not.toContain('carrel_');
    for (const authorization of [`Bearer ${token.slice(0, -1)}x`, `Bearer ${token}x`, `Bearer ${token.slice(1)}`, `Basic ${token}`, token, 'Bearer ', `Bearer ${token} ${token}`]) {
      expect((await probe(port, '/metrics', { headers: { authorization } })).status, authorization).toBe(401);
    }
    const ok = await probe(port, '/metrics', { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('carrel_rpc_in_flight');
    expect(ok.body).toMatch(/^carrel_http_unauthorized_total [1-9]\d*$/m);
    // The probes carry no token and need none.
    expect((await probe(port, '/healthz')).status).toBe(200);
    expect((await probe(port, '/readyz')).status).toBe(200);
  });

  it('a flood of wrong tokens, some of 8 KB, gets 401 each and locks nobody out: the right token still reads', async () => {
    const port = t.server.ports.http;
    const started = performance.now();
    const statuses: number[] = [];
    // 10 addresses × 20 attempts, 20 at a time.
    for (let round = 0; round < 10; round++) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          probe(port, '/metrics', { localAddress: `127.0.0.${40 + (i % 10)}`, headers: { authorization: `Bearer ${i % 4 === 0 ? 'x'.repeat(8 * 1024) : `guess-${round}-${i}-0123456789`}` } }),
        ),
      );
      statuses.push(...batch.map((r) => r.status));
    }
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(performance.now() - started).toBeLessThan(5_000);
    expect((await probe(port, '/metrics', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await probe(port, '/metrics', { headers: { authorization: `bearer ${token}` } })).status, 'the scheme is case-insensitive').toBe(200);
  });
});

describe('keep-alive connections holding the health port', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({}, { db });
  });
  afterAll(async () => t.close());

  it('72 keep-alive holders from 8 addresses, each sending GET /healthz every second: every /readyz probe is still answered 200 within 500 ms', async () => {
    const port = t.server.ports.http;
    // 9 from each of 127.0.0.2-9: more than the port holds, none over an address's share. The
    // issue's holders sent every 3 s; every second keeps them as busy within a shorter test.
    const holders = Array.from({ length: 72 }, (_, i) => new Holder(port, `127.0.0.${2 + (i % 8)}`, 1_000, 200));
    try {
      await waitFor(() => holders.filter((h) => h.answers > 0).length >= 60, 5_000, 'the holders to take the port');
      const stopAt = Date.now() + 3_000;
      const results = await probeWhile(port, '/readyz', () => Date.now() < stopAt, 100, { timeoutMs: 1_000 });
      const f = figures(results, 500);
      const opened = holders.reduce((n, h) => n + h.opened, 0);
      report('readyz during a keep-alive hold', { ...f, holders: holders.length, holderConnections: opened, holdersOpenAtEnd: holders.filter((h) => h.open).length });
      expect(f.probes).toBeGreaterThanOrEqual(10);
      expect(f, `every /readyz answered 200 within 500 ms: ${JSON.stringify(f)}`).toMatchObject({ share: 1 });
      // The holders still got their answers: the port keeps serving them while it has room.
      expect(holders.reduce((n, h) => n + h.answers, 0)).toBeGreaterThan(72);
      expect(t.obs.stats().connections.http!.open).toBeLessThanOrEqual(t.config.http.maxConnections);
    } finally {
      await Promise.all(holders.map((h) => h.stop()));
    }
    // Every connection it counted, evicted or hung up, is counted out again.
    await waitFor(() => t.obs.stats().connections.http!.open === 0, 3_000, 'the health port to count no connections');
  });

  it('70 keep-alive connections from one address: it keeps no more than its share, and probes from another address are answered', async () => {
    const port = t.server.ports.http;
    const holders = Array.from({ length: 70 }, () => new Holder(port, '127.0.0.20', 1_000, null));
    try {
      await waitFor(() => holders.every((h) => h.opened === 1), 5_000, 'every holder to connect');
      await sleep(300);
      const open = holders.filter((h) => h.open).length;
      const results = await Promise.all(Array.from({ length: 5 }, () => probe(port, '/readyz', { localAddress: '127.0.0.21', timeoutMs: 1_000 })));
      // A probe from the holders' own address (a shared NAT) is taken too, at one of theirs' expense.
      const sameAddress = await probe(port, '/readyz', { localAddress: '127.0.0.20', timeoutMs: 1_000 });
      const f = figures([...results, sameAddress], 500);
      report('one address holding the port', { holders: holders.length, keptOpen: open, ...f });
      expect(open, 'connections the one address kept open').toBe(t.config.http.maxConnectionsPerAddress);
      expect(f, `every /readyz answered 200 within 500 ms: ${JSON.stringify(f)}`).toMatchObject({ share: 1 });
      const m = (await probe(port, '/metrics')).body;
      expect(Number(/^carrel_http_evictions_total\{reason="address"\} (\d+)$/m.exec(m)?.[1])).toBeGreaterThanOrEqual(70 - 16);
      expect(Number(/^carrel_connections_open\{port="http"\} (\d+)$/m.exec(m)?.[1])).toBeLessThanOrEqual(16 + 1);
    } finally {
      await Promise.all(holders.map((h) => h.stop()));
    }
  });
});
