import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { freshDatabase, type TestDatabase } from '../support/db.js';
import { branchSeats, connectSensor, sendReadings, subscribe, waitFor } from '../support/live.js';
import { dropKeys, redisAvailable, redisUrl, testKeyPrefix } from '../support/redis.js';

/** A TCP proxy in front of Redis that a test can cut and restore, to simulate Redis going away. */
class CuttableProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
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

const suite = redisAvailable ? describe : describe.skip;

suite('when Redis goes away', () => {
  let db: TestDatabase;
  let proxy: CuttableProxy;
  let a: TestServer;
  let b: TestServer;
  const keyPrefix = testKeyPrefix('outage');
  beforeAll(async () => {
    db = await freshDatabase(6);
    const u = new URL(redisUrl);
    proxy = new CuttableProxy({ host: u.hostname, port: Number(u.port || 6379) });
    await proxy.open();
    a = await startTestServer({ redis: { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix } }, { db });
    b = await startTestServer({ redis: { url: redisUrl, keyPrefix } }, { db });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await proxy?.cut();
    await db?.drop();
    await dropKeys(keyPrefix);
  });

  it('an instance keeps serving its own events, then catches up and resyncs its subscribers when Redis is back', async () => {
    const [seatA, seatB] = await branchSeats(db.pool, 'Main Library', 2);
    const onA = await subscribe(a.server.ports.pubsub, { branch: 'Main Library' });
    const onB = await subscribe(b.server.ports.pubsub, { branch: 'Main Library' });
    await onA.waitFrames(2);
    await onB.waitFrames(2);
    const sensorA = await connectSensor(a.server.ports.sensor);
    const sensorB = await connectSensor(b.server.ports.sensor);

    await proxy.cut();
    const bus = () => a.server.realtime.busStats();
    for (let i = 0; i < 200 && bus().connected; i++) await new Promise((r) => setTimeout(r, 10));
    expect(bus().connected).toBe(false);

    // A's own sensor still reaches A's subscribers, numbered locally; B's reading does not reach A.
    await sendReadings(sensorA, [{ seatId: seatA!, occupied: true, at: Date.now() }]);
    expect(await waitFor(onA, (f) => f.type === 'seat' && f.seatId === seatA)).toMatchObject({ state: 'occupied' });
    await sendReadings(sensorB, [{ seatId: seatB!, occupied: true, at: Date.now() }]);
    await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seatB);
    expect(bus().queued).toBeGreaterThanOrEqual(1);

    await proxy.open();
    // Back: A's subscriber gets a fresh snapshot that includes B's change, B's subscriber gets A's.
    const resync = await waitFor(onA, (f) => f.type === 'snapshot' && f.fresh === true, { timeoutMs: 10_000 });
    expect(resync).toMatchObject({ reason: 'resync' });
    const seats = resync.seats as Array<{ seatId: number; state: string }>;
    expect(seats.find((s) => s.seatId === seatA)).toMatchObject({ state: 'occupied' });
    expect(seats.find((s) => s.seatId === seatB)).toMatchObject({ state: 'occupied' });
    const fromA = await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seatA, { timeoutMs: 10_000 });
    // Numbering stays monotonic for A's subscriber: the shared seq is past every local one.
    expect(resync.seq as number).toBeGreaterThanOrEqual(fromA.seq as number);
    // And live events flow to both again with one seq.
    await sendReadings(sensorB, [{ seatId: seatB!, occupied: false, at: Date.now() }]);
    const evA = await waitFor(onA, (f) => f.type === 'seat' && f.seatId === seatB && f.state === 'free');
    const evB = await waitFor(onB, (f) => f.type === 'seat' && f.seatId === seatB && f.state === 'free');
    expect(evA.seq).toBe(evB.seq);
    for (const p of [onA, onB, sensorA, sensorB]) p.destroy();
  });
});
