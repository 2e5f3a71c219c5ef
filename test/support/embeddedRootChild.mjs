// Run by test/integration/embeddedRoot.test.ts as root inside a private mount namespace (its own
// /etc without a `postgres` user, the package's lib without its symlinks): starts the embedded
// PostgreSQL from the built code the way `carrel serve` does, queries it, stops it, and prints
// what it found as one JSON line on stdout.
// Usage: node embeddedRootChild.mjs <dataDir> <port>
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../dist/src/db/embeddedPostgres.js';

const [dataDir, port] = process.argv.slice(2);

/** The `postgres` OS user as this mount namespace's /etc has it, or null. */
function osUser() {
  try {
    const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return null;
  }
}

const userBefore = osUser();
const notices = [];
const server = await startEmbeddedPostgres({
  dataDir,
  port: Number(port),
  onNotice: (level, message) => notices.push({ level, message }),
});
let rows;
let postmasterUid;
try {
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    rows = (await client.query('SELECT 1 AS one, current_user AS role')).rows;
  } finally {
    await client.end();
  }
  const pmPid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n', 1)[0]);
  // "Uid:\treal\teffective\tsaved\tfs"
  postmasterUid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pmPid}/status`, 'utf8'))[1]);
} finally {
  await server.stop();
}
process.stdout.write(`${JSON.stringify({ userBefore, userAfter: osUser(), notices, rows, postmasterUid })}\n`);
