// A simple client in any language works (docs/protocol.md, "Framing"). The example Python client,
// clients/examples/ping.py (socket, struct and json only), gets PONG, survives garbage, and sees
// 200 pipelined requests answered.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { startTestServer, type TestServer } from '../support/server.js';

const run = promisify(execFile);
const python = await run('python3', ['--version']).then(
  () => true,
  () => false,
);
if (!python) process.stderr.write('pythonClient.test: python3 not found, skipping the Python client test\n');

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => t?.close());

describe.skipIf(!python)('a 20-line Python client', () => {
  it('gets PONG, a BAD_FRAME for garbage on the same connection, and 200 pipelined answers', async () => {
    const { stdout } = await run('python3', [join(projectRoot, 'clients', 'examples', 'ping.py'), '127.0.0.1', String(t.server.ports.rpc)]);
    const [pong, garbage, pipelined] = stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(pong).toEqual({ rpcId: 1, result: 'PONG', error: null });
    expect(garbage).toMatchObject({ rpcId: null, result: null, error: { code: 'BAD_FRAME' } });
    expect(pipelined).toEqual({ answered: 200, allPong: true, ids: true });
  });
});
