// WsSocket: carrel's length-prefixed frames in and out of WebSocket messages (framing only; the
// Connection above it is the TCP ports' own), its back-pressure, what it reports of an unfinished
// message; and the Origin rule of the HTTP port's WebSocket paths.
import http from 'node:http';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { encodeJsonText, FrameDecoder } from '../../src/codec/index.js';
import { originAllowed } from '../../src/net/wsGateway.js';
import { WsSocket } from '../../src/net/wsSocket.js';
import { clientFrame, rawUpgrade } from '../support/ws.js';

interface Pair {
  server: WsSocket;
  client: WebSocket;
  messages: string[];
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

/** An HTTP server whose one upgrade becomes a WsSocket; resolves with it and, unless raw, a client. */
async function listen(): Promise<{ port: number; next: Promise<WsSocket> }> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const server = http.createServer();
  let resolve!: (s: WsSocket) => void;
  const next = new Promise<WsSocket>((r) => (resolve = r));
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => resolve(new WsSocket(ws, socket as net.Socket))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  open.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as net.AddressInfo).port, next };
}

async function pair(): Promise<Pair> {
  const { port, next } = await listen();
  const client = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  const messages: string[] = [];
  client.on('message', (data: Buffer, isBinary) => messages.push(`${isBinary ? 'binary:' : ''}${data.toString('utf8')}`));
  await new Promise((r) => client.once('open', r));
  const server = await next;
  server.on('error', () => undefined);
  open.push(async () => {
    client.terminate();
    server.destroy();
  });
  return { server, client, messages };
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
};

describe('WsSocket out', () => {
  it('sends each frame as one text message, however the frames are cut across writes', async () => {
    const p = await pair();
    const frames = [{ n: 1 }, { n: 2, text: 'é'.repeat(300) }, { n: 3 }].map((m) => encodeJsonText(JSON.stringify(m)));
    const bytes = Buffer.concat(frames);
    // Every cut point: in a header, in a payload, between frames.
    for (let cut = 1; cut < bytes.length; cut += 7) {
      p.server.write(bytes.subarray(0, cut));
      p.server.write(bytes.subarray(cut));
    }
    // Joined frames in one write (a subscriber's turn), and a frame in parts (a spliced reply), corked.
    p.server.write(bytes);
    p.server.cork();
    p.server.write(frames[1]!.subarray(0, 10));
    p.server.write(frames[1]!.subarray(10, 200));
    p.server.write(frames[1]!.subarray(200));
    p.server.uncork();
    const rounds = Math.ceil((bytes.length - 1) / 7) + 1;
    await until(() => p.messages.length === rounds * 3 + 1);
    const expected = frames.map((f) => f.subarray(4).toString('utf8'));
    for (let i = 0; i < rounds; i++) expect(p.messages.slice(i * 3, i * 3 + 3)).toEqual(expected);
    expect(p.messages.at(-1)).toBe(expected[1]);
  });

  it('holds what the TCP socket will not take, where it is counted, and drains once the peer reads again', async () => {
    const p = await pair();
    p.client.pause();
    const frame = encodeJsonText(JSON.stringify({ pad: 'x'.repeat(16 * 1024) }));
    // Written until the kernel's buffers on both sides are full and the bytes stay with us.
    let writes = 0;
    while (writes < 4_000) {
      for (let i = 0; i < 50; i++) p.server.write(frame);
      writes += 50;
      await new Promise((r) => setTimeout(r, 10));
      if (p.server.writableLength > 1024 * 1024) break;
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(p.server.writableNeedDrain).toBe(true);
    expect(p.server.writableLength).toBeGreaterThan(1024 * 1024);
    // The TCP socket itself holds no more than its own mark and one write: the rest waits here.
    expect((p.server as unknown as { ws: WebSocket }).ws.bufferedAmount).toBeLessThan(16 * 1024 + 2 * frame.length);
    const drained = new Promise((r) => p.server.once('drain', r));
    p.client.resume();
    await drained;
    expect(p.server.writableLength).toBe(0);
    await until(() => p.messages.length === writes);
  });
});

describe('WsSocket in', () => {
  it('reads each text message as one length-prefixed frame, and stops reading the socket while unread', async () => {
    const p = await pair();
    const decoder = new FrameDecoder({ maxFrameBytes: 1 << 20 });
    p.client.send('{"a":1}');
    p.client.send('{"b":"é"}');
    await new Promise((r) => setTimeout(r, 50));
    // Nobody reads the stream yet: the first message waits in it and the WebSocket stopped reading.
    expect((p.server as unknown as { ws: WebSocket }).ws.isPaused).toBe(true);
    const seen: unknown[] = [];
    p.server.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let d = decoder.next(); d; d = decoder.next()) seen.push(d.kind === 'message' ? d.value : d.reason);
    });
    await until(() => seen.length === 2);
    expect(seen).toEqual([{ a: 1 }, { b: 'é' }]);
    expect((p.server as unknown as { ws: WebSocket }).ws.isPaused).toBe(false);
  });

  it('closes on a binary message with 1003', async () => {
    const p = await pair();
    const closed = new Promise<number>((r) => p.client.once('close', (code) => r(code)));
    p.client.send(Buffer.from('{}'), { binary: true });
    expect(await closed).toBe(1003);
  });

  it('reports what ws holds of an unfinished message, after each read, and nothing once it is whole', async () => {
    const { port, next } = await listen();
    const raw = await rawUpgrade(port, '/');
    const server = await next;
    open.push(async () => void raw.destroy());
    let reads = 0;
    server.on('partial', () => reads++);
    server.on('data', () => undefined);
    const payload = Buffer.from(JSON.stringify({ pad: 'y'.repeat(3_000) }));
    const frame = clientFrame(1, payload);
    raw.write(frame.subarray(0, 1_000));
    await until(() => reads >= 1 && server.partialBytes >= 1_000 - 8);
    raw.write(frame.subarray(1_000, 2_000));
    await until(() => server.partialBytes >= 2_000 - 8);
    raw.write(frame.subarray(2_000));
    await until(() => server.partialBytes === 0);
    // Fragments of one message count too, until its last.
    raw.write(clientFrame(1, Buffer.from('{"a":'), { fin: false }));
    await until(() => server.partialBytes >= 5);
    raw.write(clientFrame(0, Buffer.from('1}')));
    await until(() => server.partialBytes === 0);
  });
});

describe('originAllowed', () => {
  const allowed = new Set(['https://signage.example.edu']);
  it.each([
    [undefined, 'carrel:9090', true],
    ['http://carrel:9090', 'carrel:9090', true],
    ['http://CARREL:9090', 'carrel:9090', true],
    ['http://carrel', 'carrel:80', true],
    ['https://carrel', 'carrel', true],
    ['https://signage.example.edu', 'carrel:9090', true],
    ['http://signage.example.edu', 'carrel:9090', false],
    ['https://evil.example', 'carrel:9090', false],
    ['http://carrel:9091', 'carrel:9090', false],
    ['null', 'carrel:9090', false],
    ['file://', 'carrel:9090', false],
    ['http://carrel:9090', undefined, false],
    ['http://carrel:9090', 'bad host/x', false],
  ])('Origin %s to Host %s: %s', (origin, host, ok) => {
    expect(originAllowed(origin, host, allowed)).toBe(ok);
  });
});
