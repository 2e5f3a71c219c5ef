// The baseline: the least a framed-JSON RPC server on this machine can do per request. It
// splits frames, parses each request's JSON, builds the reply object and serialises it, and
// writes all the replies of one read in one write. No validation, no limits, no auth: whatever
// carrel does beyond this is its own cost, so carrel's figures are quoted as a ratio to this.
//
// Given a canned result (ECHO_RESULT_FILE: JSON text), it answers every method but PING with
// it, encoded once like carrel's cached listing, so a seats.list run has a baseline that
// sends replies of the same size.
//
// Run as its own process (a server must not share an event loop with the load it is given):
//   node dist/loadtest/echoServer.js [port]     → prints "echo listening <port>"
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
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 1024 }, () => resolve(server));
  });
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const file = process.env.ECHO_RESULT_FILE;
  const server = await startEchoServer(Number(process.argv[2] ?? 0), '127.0.0.1', file ? readFileSync(file, 'utf8') : undefined);
  process.stdout.write(`echo listening ${(server.address() as net.AddressInfo).port}\n`);
  const stop = (): void => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
