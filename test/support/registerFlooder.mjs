// A flood of auth.register from a process of its own (an attacker's client is not the server's
// CPU or event loop): `connections` connections to 127.0.0.1:`port`, each keeping `inFlight`
// requests in flight until the parent sends 'stop' or each has sent `maxRequests`. Student ids:
// `taken` sends the same one every time; anything else is a prefix for fresh ids.
// Messages to the parent: 'ready' once connected, then { codes } (replies by error code) on stop.
// Imports the built client: callers run ensureBuilt() (test/support/serveProcess.ts) first.
import { RpcClient } from '../../dist/clients/rpcClient.js';

const [port, connections, inFlight, maxRequests, mode] = process.argv.slice(2);
const conns = await Promise.all(Array.from({ length: Number(connections) }, () => RpcClient.connect('127.0.0.1', Number(port))));
const codes = {};
let stopped = false;
process.on('message', (m) => {
  if (m === 'stop') stopped = true;
});
const loops = conns.map(async (c, ci) => {
  let sent = 0;
  const lane = async () => {
    while (!stopped && sent < Number(maxRequests)) {
      const i = sent++;
      const studentId = mode === 'taken' ? 'taken' : `${mode}-${ci}-${i}`;
      const reply = await c.request('auth.register', [{ studentId, name: 'Flood', password: 'flood-password' }]);
      const code = reply.error?.code ?? 'OK';
      codes[code] = (codes[code] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Number(inFlight) }, lane));
});
process.send('ready');
await Promise.all(loops);
for (const c of conns) c.close();
process.send({ codes }, () => process.exit(0));
