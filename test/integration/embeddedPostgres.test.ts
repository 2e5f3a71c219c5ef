// The embedded PostgreSQL: initialises a fresh data directory, serves queries, keeps its data
// across a stop and restart, says clearly when its port is taken, and leaves alone a directory
// another process is still initialising.
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embeddedPostgres.js';

// initdb alone can take 10-20 s on a slow machine; two starts and stops ride on top.
const TIMEOUT_MS = 120_000;

async function listenOnFreePort(): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

async function freePort(): Promise<number> {
  const server = await listenOnFreePort();
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('startEmbeddedPostgres', () => {
  it(
    'initialises a fresh directory, serves queries, and keeps data across a restart',
    async () => {
      const dataDir = join(await mkdtemp(join(tmpdir(), 'carrel-epg-')), 'pgdata');
      const port = await freePort();
      try {
        const first = await startEmbeddedPostgres({ dataDir, port });
        try {
          expect(await query<{ one: number }>(first.url, 'select 1 as one')).toEqual([{ one: 1 }]);
          await query(first.url, "create table survivor (note text); insert into survivor values ('still here')");
        } finally {
          await first.stop();
        }
        await first.stop(); // idempotent

        const second = await startEmbeddedPostgres({ dataDir, port });
        try {
          expect(await query<{ note: string }>(second.url, 'select note from survivor')).toEqual([{ note: 'still here' }]);
        } finally {
          await second.stop();
        }
      } finally {
        await rm(join(dataDir, '..'), { recursive: true, force: true });
      }
    },
    TIMEOUT_MS,
  );

  it(
    'fails with a clear error when the port is taken',
    async () => {
      const holder = await listenOnFreePort();
      const { port } = holder.address() as net.AddressInfo;
      const dataDir = join(await mkdtemp(join(tmpdir(), 'carrel-epg-')), 'pgdata');
      try {
        await expect(startEmbeddedPostgres({ dataDir, port })).rejects.toThrow(`port ${port} is already in use`);
      } finally {
        await new Promise<void>((resolve) => holder.close(() => resolve()));
        await rm(join(dataDir, '..'), { recursive: true, force: true });
      }
    },
    TIMEOUT_MS,
  );

  it('refuses a data directory another live process is still initialising, rather than wiping it', async () => {
    // What a first `carrel serve` leaves while its initdb runs: a half-made cluster and, beside
    // it, the marker naming the initialising process.
    const dataDir = join(await mkdtemp(join(tmpdir(), 'carrel-epg-')), 'pgdata');
    await mkdir(dataDir);
    await writeFile(join(dataDir, 'PG_VERSION'), '18\n');
    const initialiser = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      await writeFile(`${dataDir}.initdb-incomplete`, `${initialiser.pid}\n`);
      for (const attach of [false, true]) {
        await expect(startEmbeddedPostgres({ dataDir, port: await freePort(), attach })).rejects.toThrow(
          `${dataDir} is being initialised by process ${initialiser.pid} (a carrel starting for the first time); try again once it is up`,
        );
      }
      expect(await readdir(dataDir)).toEqual(['PG_VERSION']);
    } finally {
      initialiser.kill('SIGKILL');
      await rm(join(dataDir, '..'), { recursive: true, force: true });
    }
  });
});
