// A booking load for the shutdown tests: one connection pipelining reservations.create.
import type net from 'node:net';
import { FrameDecoder, encodeFrame } from '../../src/codec/index.js';

/**
 * Pipelines reservations.create on one connection, `depth` outstanding, and records each booked
 * id by rpcId; any other reply (an error, a bad frame) goes to `bad`. rpcIds are 1, 2, 3, … in
 * send order, and booking(k) gives request k's arguments.
 */
export class BookingClient {
  sent = 0;
  /** rpcId → reservation id, for every reply that came back. */
  readonly replies = new Map<number, number>();
  readonly bad: unknown[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder({ maxFrameBytes: 1 << 24, maxDepth: 64 });
  private running = true;

  constructor(
    private readonly socket: net.Socket,
    private readonly token: string | undefined,
    private readonly booking: (k: number) => Record<string, unknown>,
    private readonly depth = 16,
  ) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let d = this.decoder.next(); d; d = this.decoder.next()) {
        if (d.kind !== 'message' || d.value.error !== null) this.bad.push(d.kind === 'message' ? d.value : d.reason);
        else this.replies.set(d.value.rpcId as number, (d.value.result as { id: number }).id);
      }
      this.fill();
    });
    this.closed = new Promise((r) => socket.once('close', () => r()));
    socket.once('connect', () => this.fill());
  }

  /** Bytes left over at close: > 0 means the server cut a reply in half. */
  get leftover(): number {
    return this.decoder.pendingBytes;
  }

  stop(): void {
    this.running = false;
  }

  private fill(): void {
    while (this.running && !this.socket.destroyed && this.sent - this.replies.size - this.bad.length < this.depth) {
      this.sent++;
      this.socket.write(encodeFrame({ rpcId: this.sent, method: 'reservations.create', args: [this.booking(this.sent)], token: this.token }));
    }
  }
}
