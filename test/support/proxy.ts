// A TCP proxy for fault tests: in front of Redis it can be cut and restored, and slowed.
import net from 'node:net';

/**
 * A TCP proxy in front of Redis that a test can cut and restore, to simulate Redis going away.
 * With `delayMs` every command from the client reaches Redis that much later (in order), which
 * widens the windows between an instance's commands for the other instance's writes to land in.
 */
export class CuttableProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  delayMs = 0;
  /** Connections accepted so far (an instance reconnecting shows here first). */
  accepted = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      this.accepted++;
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      // Same-duration timers fire in the order they were set, so the byte stream stays in order.
      client.on('data', (chunk: Buffer) => {
        if (this.delayMs === 0) upstream.write(chunk);
        else setTimeout(() => upstream.write(chunk), this.delayMs);
      });
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async cut(): Promise<void> {
    await new Promise<void>((r) => {
      this.server?.close(() => r());
      for (const s of this.sockets) s.destroy();
    });
  }
}
