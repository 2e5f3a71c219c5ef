// The baseline: the least a framed-JSON RPC server on this machine can do per request. It
// splits frames, parses each request's JSON, builds the reply object and serialises it, and
// writes all the replies of one read in one write. No validation, no limits, no auth: whatever
// carrel does beyond this is its own cost, so carrel's figures are quoted as a ratio to this.
//
// Given a canned result (ECHO_RESULT_FILE: JSON text), it answers every method but PING with
// it, encoded once like carrel's cached listing, so a seats.list run has a baseline that
// sends replies of the same size.
//
// It is also the fan-out ceiling (startFanoutBaseline): a sensor port that answers hello and acks
// each occupancy frame, and a subscriber port that answers subscribe with a snapshot; each
// reading becomes one seat-event frame of carrel's shape and size, serialised once and written
// to every subscriber at once. No live model, no rings, no rules: what a loopback write to
// each of N sockets costs on this machine, which is the floor under carrel's fan-out latency.
//
// Run as its own process (a server must not share an event loop with the load it is given):
//   node dist/loadtest/echoServer.js [port]     → prints "echo listening <rpc> <sensor> <pubsub>"
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { FrameSplitter, frameText } from './frames.js';

export function startEchoServer(port = 0, host = '127.0.0.1', cannedResult?: string): Promise<net.Server> {
  const canned = cannedResult === undefined ? undefined : Buffer.from(cannedResult, 'utf8');
  const tail = Buffer.from(',"error":null}');
  const server = net.createServer({ noDelay: true }, (socket) => {
    const splitter = new FrameSplitter();
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      const out: Buffer[] = [];
      splitter.push(chunk, (text) => {
        const req = JSON.parse(text) as { rpcId?: unknown; method?: unknown };
        if (canned && req.method !== 'PING') {
          const head = Buffer.from(`{"rpcId":${JSON.stringify(req.rpcId ?? null)},"result":`);
          const len = Buffer.alloc(4);
          len.writeUInt32BE(head.length + canned.length + tail.length);
          out.push(len, head, canned, tail);
          return;
        }
        out.push(frameText(JSON.stringify({ rpcId: req.rpcId ?? null, result: req.method === 'PING' ? 'PONG' : null, error: null })));
      });
      if (out.length) socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    });
  });
  return listen(server, port, host);
}

function listen(server: net.Server, port: number, host: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 1024 }, () => resolve(server));
  });
}

/** Seats the fan-out baseline's snapshot lists (the readings the bench sends name these). */
const BASELINE_SEATS = Array.from({ length: 50 }, (_, i) => ({ seatId: i + 1, label: `B-${String(i + 1).padStart(3, '0')}`, state: 'free' }));

export function startFanoutBaseline(host = '127.0.0.1'): Promise<{ sensor: net.Server; pubsub: net.Server }> {
  const subscribers = new Set<net.Socket>();
  let seq = 0;
  const pubsub = net.createServer({ noDelay: true }, (socket) => {
    const splitter = new FrameSplitter();
    socket.on('error', () => socket.destroy());
    socket.on('close', () => subscribers.delete(socket));
    socket.on('data', (chunk: Buffer) =>
      splitter.push(chunk, (text) => {
        const req = JSON.parse(text) as { type?: unknown; branch?: unknown };
        if (req.type !== 'subscribe') return;
        socket.write(frameText(JSON.stringify({ type: 'snapshot', branch: req.branch, branchId: 1, seq, seats: BASELINE_SEATS })));
        subscribers.add(socket);
      }),
    );
  });
  const sensor = net.createServer({ noDelay: true }, (socket) => {
    const splitter = new FrameSplitter();
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      const acks: Buffer[] = [];
      splitter.push(chunk, (text) => {
        const msg = JSON.parse(text) as { type?: unknown; ref?: unknown; readings?: Array<{ seatId: number; occupied: boolean; at: string }> };
        if (msg.type === 'hello') {
          acks.push(frameText('{"type":"welcome"}'));
          return;
        }
        if (msg.type !== 'occupancy' || !Array.isArray(msg.readings)) return;
        for (const r of msg.readings) {
          // carrel's seat event, field for field (the same bytes on the wire).
          const event = frameText(
            JSON.stringify({
              type: 'seat', branch: 'Main Library', branchId: 1, seq: ++seq, seatId: r.seatId,
              state: r.occupied ? 'occupied' : 'free', flags: r.occupied ? { unbookedOccupancy: true } : {}, cause: 'sensor', at: r.at,
            }),
          );
          for (const sub of subscribers) sub.write(event);
        }
        acks.push(frameText(JSON.stringify({ type: 'ack', ref: msg.ref, applied: msg.readings.length })));
      });
      if (acks.length) socket.write(acks.length === 1 ? acks[0]! : Buffer.concat(acks));
    });
  });
  return Promise.all([listen(sensor, 0, host), listen(pubsub, 0, host)]).then(() => ({ sensor, pubsub }));
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const file = process.env.ECHO_RESULT_FILE;
  const server = await startEchoServer(Number(process.argv[2] ?? 0), '127.0.0.1', file ? readFileSync(file, 'utf8') : undefined);
  const live = await startFanoutBaseline('127.0.0.1');
  const port = (s: net.Server): number => (s.address() as net.AddressInfo).port;
  process.stdout.write(`echo listening ${port(server)} ${port(live.sensor)} ${port(live.pubsub)}\n`);
  const stop = (): void => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
