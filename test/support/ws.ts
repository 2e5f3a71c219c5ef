// WebSocket peers for tests of /ws/rpc and /ws/live (docs/protocol.md, "WebSocket transports"): a
// ws client that collects every message as parsed JSON (the RawPeer of the TCP ports), and a raw
// upgrade that leaves the socket to the test, for frames no well-behaved client would send.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';

export interface Closed {
  code: number;
  reason: string;
}

export class WsPeer {
  readonly frames: Record<string, unknown>[] = [];
  readonly closed: Promise<Closed>;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.frames.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })));
  }

  /** Opens `ws://127.0.0.1:<port><path>`; rejects with the HTTP status when the upgrade is refused. */
  static connect(port: number, path: string, opts: { origin?: string; headers?: Record<string, string> } = {}): Promise<WsPeer> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { origin: opts.origin, headers: opts.headers, perMessageDeflate: false });
      ws.once('open', () => resolve(new WsPeer(ws)));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.ws.readyState === WebSocket.CLOSED;
  }

  send(obj: object): void {
    this.ws.send(JSON.stringify(obj));
  }

  /** Resolves once at least n messages have arrived (rejects after timeoutMs or on close). */
  async waitFrames(n: number, timeoutMs = 5000): Promise<Record<string, unknown>[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} messages, got ${this.frames.length}: ${JSON.stringify(this.frames.slice(-3))}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), new Promise<void>((r) => setTimeout(r, Math.min(left, 100))), this.closed]);
      if (this.isClosed && this.frames.length < n) throw new Error(`closed after ${this.frames.length} messages: ${JSON.stringify(this.frames.slice(-3))}`);
    }
    return this.frames;
  }

  /** The first message from index `from` on that matches. */
  async waitFor(pred: (f: Record<string, unknown>) => boolean, opts: { from?: number; timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    for (let seen = opts.from ?? 0; ; seen++) {
      await this.waitFrames(seen + 1, Math.max(1, deadline - Date.now()));
      if (pred(this.frames[seen]!)) return this.frames[seen]!;
    }
  }

  /** One RPC call over /ws/rpc: the reply whose rpcId matches. */
  async call(rpcId: number, method: string, args?: unknown[], token?: string): Promise<Record<string, unknown>> {
    const from = this.frames.length;
    this.send({ rpcId, method, ...(args ? { args } : {}), ...(token ? { token } : {}) });
    return this.waitFor((f) => f.rpcId === rpcId, { from });
  }

  destroy(): void {
    this.ws.terminate();
  }
}

/** Upgrades a plain socket to /path by hand; resolves with the socket once the 101 has been read. */
export function rawUpgrade(port: number, path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(head.slice(0, end)));
      else resolve(socket);
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/**
 * One client-to-server WebSocket frame (masked, as a client must): `declared` may claim more
 * payload than is given, to leave a message unfinished.
 */
export function clientFrame(opcode: number, payload: Buffer, opts: { fin?: boolean; declared?: number } = {}): Buffer {
  const length = opts.declared ?? payload.length;
  const head: number[] = [(opts.fin === false ? 0 : 0x80) | opcode];
  if (length < 126) head.push(0x80 | length);
  else if (length < 65536) head.push(0x80 | 126, length >> 8, length & 0xff);
  else {
    head.push(0x80 | 127, 0, 0, 0, 0);
    head.push((length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
  }
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i % 4]!;
  return Buffer.concat([Buffer.from(head), mask, body]);
}
