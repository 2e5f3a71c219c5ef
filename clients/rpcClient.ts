// A small pipelining client for carrel's RPC port: many calls in flight on one connection,
// replies matched by rpcId. Used by the CLI, the tests and the load generator's set-up.
import net from 'node:net';
import { FrameDecoder, encodeFrame } from '../src/codec/index.js';
import type { ErrorCode, WireError } from '../src/wire/errors.js';

export class RpcCallError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  constructor(readonly error: WireError) {
    super(`${error.code}: ${error.message}`);
    this.name = 'RpcCallError';
    this.code = error.code;
    this.details = error.details;
  }
}

export interface RpcReply {
  rpcId: number | string | null;
  result: unknown;
  error: WireError | null;
}

interface Waiter {
  resolve: (reply: RpcReply) => void;
  reject: (err: Error) => void;
}

export class RpcClient {
  private nextId = 1;
  private readonly waiters = new Map<number, Waiter>();
  private readonly decoder: FrameDecoder;
  private closedError: Error | undefined;
  /** Replies that matched no call (rpcId null: a BAD_FRAME or a refusal). */
  readonly unmatched: RpcReply[] = [];
  token: string | undefined;

  private constructor(readonly socket: net.Socket, maxFrameBytes: number) {
    this.decoder = new FrameDecoder({ maxFrameBytes, maxDepth: 512 });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  /** opts.localAddress: the address to connect from (tests speak from 127.0.0.2, 127.0.0.3, … to be several peers). */
  static connect(host: string, port: number, opts: { timeoutMs?: number; maxFrameBytes?: number; localAddress?: string } = {}): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, localAddress: opts.localAddress });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`could not connect to ${host}:${port} within ${opts.timeoutMs ?? 5000} ms`));
      }, opts.timeoutMs ?? 5000);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RpcClient(socket, opts.maxFrameBytes ?? 64 * 1024 * 1024));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Sends one request and resolves with the whole reply (error included). */
  request(method: string, args?: unknown[], token?: string): Promise<RpcReply> {
    if (this.closedError) return Promise.reject(this.closedError);
    const rpcId = this.nextId++;
    const frame: Record<string, unknown> = { rpcId, method };
    if (args !== undefined) frame.args = args;
    const tok = token ?? this.token;
    if (tok !== undefined) frame.token = tok;
    return new Promise((resolve, reject) => {
      this.waiters.set(rpcId, { resolve, reject });
      this.socket.write(encodeFrame(frame));
    });
  }

  /** Calls a method and resolves with its result, or rejects with RpcCallError. */
  async call<T = unknown>(method: string, options?: unknown): Promise<T> {
    const reply = await this.request(method, options === undefined ? undefined : [options]);
    if (reply.error) throw new RpcCallError(reply.error);
    return reply.result as T;
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    for (let item = this.decoder.next(); item; item = this.decoder.next()) {
      if (item.kind === 'error') {
        this.fail(new Error(`bad frame from server: ${item.message}`));
        return;
      }
      const reply = item.value as unknown as RpcReply;
      const waiter = typeof reply.rpcId === 'number' ? this.waiters.get(reply.rpcId) : undefined;
      if (waiter) {
        this.waiters.delete(reply.rpcId as number);
        waiter.resolve(reply);
      } else {
        this.unmatched.push(reply);
      }
    }
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }
}

/** Parses "host:port", ":port" or "host" (default port) into parts. */
export function parseServer(spec: string, defaultPort: number): { host: string; port: number } {
  const i = spec.lastIndexOf(':');
  if (i < 0) return { host: spec || '127.0.0.1', port: defaultPort };
  const host = spec.slice(0, i) || '127.0.0.1';
  const port = Number(spec.slice(i + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad --server ${spec}: port must be 1-65535`);
  return { host, port };
}
