// Measures PING throughput against a server started in this process, to check that metrics
// and rate-limit hooks on the dispatch path cost nothing measurable. The client runs in a
// worker thread (its own core) and keeps `depth` PINGs pipelined on one connection.
// Usage: npm run build && node test/perf/pingThroughput.mjs [seconds=3] [depth=256] [rounds=3]
// (CARREL_DIST=/abs/path/to/another/dist compares against another build.)
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import net from 'node:net';

if (isMainThread) {
  const [seconds = 3, depth = 256, rounds = 3] = process.argv.slice(2).map(Number);
  const pg = (await import('pg')).default;
  const dist = new URL(process.env.CARREL_DIST ? `file://${process.env.CARREL_DIST}/` : '../../dist/', import.meta.url);
  const { parseConfig } = await import(new URL('src/config/load.js', dist).href);
  const { silentLogger } = await import(new URL('src/obs/log.js', dist).href);
  const { CarrelServer } = await import(new URL('src/server.js', dist).href);
  const config = parseConfig({ ports: { rpc: 0, sensor: 0, pubsub: 0, http: 0 } });
  // PING never touches the database; the pool is never connected.
  const db = new pg.Pool({ connectionString: 'postgres://unused@127.0.0.1:1/unused' });
  const server = await CarrelServer.start({ config, log: silentLogger, db });
  const rates = [];
  for (let r = 0; r < rounds; r++) {
    const worker = new Worker(new URL(import.meta.url), { workerData: { port: server.ports.rpc, seconds, depth } });
    rates.push(await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); }));
  }
  await server.shutdown();
  await db.end();
  const fmt = (n) => Math.round(n).toLocaleString('en');
  console.log(JSON.stringify({ rounds: rates.map(fmt), best: fmt(Math.max(...rates)), median: fmt(rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)]) }));
} else {
  const { port, seconds, depth } = workerData;
  const body = Buffer.from(JSON.stringify({ rpcId: 1, method: 'PING' }));
  const one = Buffer.alloc(4 + body.length);
  one.writeUInt32BE(body.length);
  body.copy(one, 4);
  const batch = Buffer.concat(Array.from({ length: depth }, () => one));
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  let replies = 0;
  let outstanding = 0;
  let pending = Buffer.alloc(0);
  let start = 0;
  let done = false;
  socket.on('connect', () => {
    // One second of warm-up, then the measured window.
    setTimeout(() => { replies = 0; start = performance.now(); }, 1000);
    setTimeout(() => {
      done = true;
      parentPort.postMessage(replies / ((performance.now() - start) / 1000));
      socket.destroy();
    }, 1000 + seconds * 1000);
    socket.write(batch); socket.write(batch); outstanding = 2 * depth;
  });
  socket.on('data', (chunk) => {
    let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const n = buf.readUInt32BE(off);
      if (buf.length - off < 4 + n) break;
      off += 4 + n;
      replies++;
      outstanding--;
    }
    pending = buf.subarray(off);
    if (!done && outstanding <= depth) { socket.write(batch); outstanding += depth; }
  });
}
