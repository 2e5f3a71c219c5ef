// The booking baseline: pgbench running the INSERT that a booking ends in — into the same
// exclusion-constrained `reservations` table of the same PostgreSQL, distinct seats and slots,
// same number of clients — with nothing of carrel around it. Its slots start ten days out,
// past every slot carrel's own booking runs use, so the two never collide.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { LatencyHistogram, round3 } from './histogram.js';
import { customRecord, sampleServer, type RunRecord } from './record.js';
import { BENCH_BRANCH, type Target } from './target.js';

const execFileAsync = promisify(execFile);

export async function pgbenchVersion(): Promise<string | null> {
  try {
    const { stdout } = await execFileAsync('pgbench', ['--version']);
    return stdout.trim();
  } catch {
    return null;
  }
}

export const PGBENCH_SCRIPT = `-- One booking's INSERT, as carrel's reservations.create issues it, on distinct seat/slot pairs.
INSERT INTO reservations (seat_id, user_id, during, hold, status, created_at, updated_at)
SELECT :first + (n % :seats), :uid, tstzrange(t, t + interval '30 minutes'), tstzrange(t, t + interval '30 minutes'), 'CONFIRMED', now(), now()
FROM (SELECT n, to_timestamp(:base) + (n / :seats) * interval '30 minutes' AS t
      FROM (SELECT nextval('carrel_pgbench_seq') AS n) x) y;
`;

export interface PgbenchOptions {
  clients: number;
  durationS: number;
  /** Epoch seconds of the first slot pgbench may use. */
  baseEpochS: number;
}

/** Runs the baseline against the target's benchmark database (the server keeps running, idle). */
export async function pgbenchBaseline(target: Target, opts: PgbenchOptions, cpuTarget?: Target): Promise<RunRecord> {
  if (!target.dbUrl) throw new Error('the pgbench baseline needs the benchmark database (run without --server)');
  const pool = new pg.Pool({ connectionString: target.dbUrl, max: 1 });
  let first: number;
  let seats: number;
  let uid: number;
  try {
    const r = await pool.query<{ first: number; last: number; n: number }>(
      `SELECT min(s.id) AS first, max(s.id) AS last, count(*)::int AS n FROM seats s JOIN branches b ON b.id = s.branch_id WHERE b.name = $1`,
      [BENCH_BRANCH],
    );
    ({ first, n: seats } = r.rows[0]!);
    if (r.rows[0]!.last - first + 1 !== seats) throw new Error('bench seat ids are not contiguous');
    uid = (await pool.query<{ id: number }>(`SELECT min(id) AS id FROM users`)).rows[0]!.id;
    await pool.query('CREATE SEQUENCE IF NOT EXISTS carrel_pgbench_seq');
  } finally {
    await pool.end();
  }
  const dir = mkdtempSync(join(tmpdir(), 'carrel-pgbench-'));
  const script = join(dir, 'booking.sql');
  writeFileSync(script, PGBENCH_SCRIPT);
  const sampling = sampleServer(cpuTarget ?? target);
  try {
    const args = [
      '-n', '-M', 'prepared', '-c', String(opts.clients), '-j', '2', '-T', String(opts.durationS),
      '-f', script, '-D', `first=${first}`, '-D', `seats=${seats}`, '-D', `uid=${uid}`, '-D', `base=${opts.baseEpochS}`,
      '-l', `--log-prefix=${join(dir, 'log')}`, target.dbUrl,
    ];
    const { stdout } = await execFileAsync('pgbench', args, { maxBuffer: 16 * 1024 * 1024 });
    const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1] ?? NaN);
    const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
    // Per-transaction log lines: client_id transaction_no latency_us script_no epoch_s epoch_us.
    const latency = new LatencyHistogram();
    for (const f of readdirSync(dir).filter((n) => n.startsWith('log'))) {
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
        const us = Number(line.split(' ')[2]);
        if (Number.isFinite(us) && us > 0) latency.recordMs(us / 1000);
      }
    }
    const server = sampling.stop();
    return customRecord({
      scenario: 'pgbench',
      label: `pgbench: the booking INSERT, ${opts.clients} clients`,
      target: 'pgbench → the same PostgreSQL',
      connections: opts.clients,
      depth: 1,
      rate: null,
      windowS: opts.durationS,
      throughput: Math.round(tps),
      unit: 'inserts/s',
      latencyHistogram: latency,
      errors: failed ? { FAILED: failed } : {},
      connectFailures: 0,
      neverAnswered: 0,
      unanswered: 0,
      serverRssMb: null,
      serverCpuPct: server.cpuPct,
      clientCpuPct: 0,
      extra: { tps: round3(tps), script: PGBENCH_SCRIPT.trim(), note: 'serverCpuPct is carrel idling meanwhile' },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

