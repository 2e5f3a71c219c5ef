// An RPC client over /ws/rpc: one WebSocket message is one request or reply object, exactly as on
// the RPC port (docs/protocol.md, "RPC port"). Requests are pipelined and matched by rpcId. The
// socket opens on the first call and again on the first call after it closed; a call in flight
// when it closes fails UNAVAILABLE (nothing is retried behind the caller's back: a booking retry
// must reuse its idempotencyKey, which only the caller knows).
import type { WireError } from '../wire.js';

export class RpcError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;
  constructor(err: WireError) {
    super(err.message);
    this.name = 'RpcError';
    this.code = err.code;
    this.details = err.details ?? {};
  }
}

interface Pending {
  /** The socket the request went out on: only its closing fails the request. */
  ws: WebSocket;
  resolve(value: unknown): void;
  reject(err: RpcError): void;
  timer: ReturnType<typeof setTimeout>;
}

export interface RpcOptions {
  /** A reply not here by then fails DEADLINE_EXCEEDED here (the server's own deadline is shorter). */
  timeoutMs?: number;
  /** How long opening the socket may take. */
  connectTimeoutMs?: number;
}

export class RpcClient {
  private ws: WebSocket | undefined;
  private opening: Promise<WebSocket> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;

  constructor(
    private readonly url: string,
    opts: RpcOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
  }

  /** Calls `method` with `params` as args[0]; `token` rides on this request only. */
  async call<T>(method: string, params?: object, token?: string | null): Promise<T> {
    const ws = await this.open();
    const rpcId = this.nextId++;
    const request: Record<string, unknown> = { rpcId, method, args: params === undefined ? [] : [params] };
    if (token) request.token = token;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rpcId);
        reject(new RpcError({ code: 'DEADLINE_EXCEEDED', message: 'the server did not answer in time' }));
      }, this.timeoutMs);
      this.pending.set(rpcId, { ws, resolve: resolve as (v: unknown) => void, reject, timer });
      ws.send(JSON.stringify(request));
    });
  }

  close(): void {
    this.ws?.close();
    this.ws = undefined;
  }

  private open(): Promise<WebSocket> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    this.opening ??= new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(this.url);
      const fail = (message: string) => {
        clearTimeout(timer);
        this.opening = undefined;
        ws.onopen = ws.onerror = ws.onclose = null;
        ws.close();
        reject(new RpcError({ code: 'UNAVAILABLE', message }));
      };
      const timer = setTimeout(() => fail('the server could not be reached'), this.connectTimeoutMs);
      ws.onerror = () => fail('the server could not be reached');
      ws.onclose = () => fail('the server could not be reached');
      ws.onopen = () => {
        clearTimeout(timer);
        this.opening = undefined;
        this.ws = ws;
        ws.onerror = null;
        ws.onmessage = (ev) => this.onMessage(ev.data);
        ws.onclose = () => this.onClose(ws);
        resolve(ws);
      };
    });
    return this.opening;
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') return;
    let reply: { rpcId?: unknown; result?: unknown; error?: WireError | null };
    try {
      reply = JSON.parse(data) as typeof reply;
    } catch {
      return;
    }
    if (typeof reply.rpcId !== 'number') return; // an rpcId null error: nothing of ours to settle
    const p = this.pending.get(reply.rpcId);
    if (!p) return;
    this.pending.delete(reply.rpcId);
    clearTimeout(p.timer);
    if (reply.error) p.reject(new RpcError(reply.error));
    else p.resolve(reply.result);
  }

  private onClose(ws: WebSocket): void {
    if (this.ws === ws) this.ws = undefined;
    for (const [rpcId, p] of this.pending) {
      if (p.ws !== ws) continue;
      this.pending.delete(rpcId);
      clearTimeout(p.timer);
      p.reject(new RpcError({ code: 'UNAVAILABLE', message: 'the connection to the server was lost' }));
    }
  }
}
