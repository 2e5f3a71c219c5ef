// A framed-JSON TCP connection for the client tools (sensor simulator, watcher): frames in,
// frames out, one close callback. Reconnecting is the caller's business.
import net from 'node:net';
import { FrameDecoder, encodeFrame } from '../src/codec/index.js';

export type Frame = Record<string, unknown>;

export class FramedSocket {
  private readonly decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 * 1024, maxDepth: 64 });
  private closed = false;

  private constructor(
    readonly socket: net.Socket,
    onFrame: (f: Frame) => void,
    onClose: (err?: Error) => void,
  ) {
    let lastError: Error | undefined;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let d = this.decoder.next(); d; d = this.decoder.next()) {
        if (d.kind === 'message') onFrame(d.value);
      }
    });
    socket.on('error', (err) => (lastError = err));
    socket.on('close', () => {
      this.closed = true;
      onClose(lastError);
    });
  }

  static connect(host: string, port: number, onFrame: (f: Frame) => void, onClose: (err?: Error) => void, timeoutMs = 5000): Promise<FramedSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => socket.destroy(new Error(`could not connect to ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new FramedSocket(socket, onFrame, onClose));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Returns false when the socket's buffer is full (wait for 'drain'). */
  send(frame: Frame): boolean {
    if (this.closed) return false;
    return this.socket.write(encodeFrame(frame));
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }
}

/** Exponential backoff with jitter: 250 ms, 500 ms, … up to maxMs. */
export function backoffMs(attempt: number, maxMs = 5000): number {
  const base = Math.min(maxMs, 250 * 2 ** Math.min(attempt, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/** Resolves after ms, or at once when `signal` aborts (so Ctrl-C does not wait out a backoff). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
