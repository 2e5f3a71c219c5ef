// A raw framed-JSON peer for tests: writes arbitrary bytes, collects decoded frames, and
// reports when the server closes the connection.
import net from 'node:net';
import { FrameDecoder, encodeFrame } from '../../src/codec/index.js';

export class RawPeer {
  readonly frames: Record<string, unknown>[] = [];
  readonly closed: Promise<void>;
  private waiters: Array<() => void> = [];
  private readonly decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 * 1024, maxDepth: 1000 });

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let d = this.decoder.next(); d; d = this.decoder.next()) {
        if (d.kind === 'message') this.frames.push(d.value);
      }
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  send(obj: object): void {
    this.socket.write(encodeFrame(obj));
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** Resolves once at least n frames have arrived (rejects after timeoutMs). */
  async waitFrames(n: number, timeoutMs = 5000): Promise<Record<string, unknown>[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} frames, got ${this.frames.length}`);
      await Promise.race([
        new Promise<void>((r) => this.waiters.push(r)),
        new Promise<void>((r) => setTimeout(r, Math.min(left, 100))),
        this.closed,
      ]);
      if (this.socket.destroyed && this.frames.length < n) throw new Error(`closed after ${this.frames.length} frames`);
    }
    return this.frames;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function rawFrame(payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}
