// The client subcommands of `carrel` (docs/protocol.md): talk to a running server over the RPC port,
// act as a sensor gateway on the sensor port, watch the subscriber port.
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { Option } from 'commander';
import { DEFAULT_RPC_SERVER, processIo, rpcServer, type CliIo } from './cliIo.js';
import { RpcClient, parseServer } from './rpcClient.js';
import type { BranchWire, WaitlistEntryWire } from '../src/wire/types.js';
import { registerWaitlistCommands } from './waitlistCommands.js';
import { registerAdminCommands } from './adminCommands.js';
import { registerReportCommand } from './reportCommand.js';
import { TokenStore, tokenFilePath } from './tokenStore.js';
import { registerUserCommands } from './userCommands.js';
import { simulate, type Pattern } from './sensorSim.js';
import { watch, type OfferView } from './watch.js';

function positive(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw Object.assign(new Error(`${name} must be a positive number, not ${v}`), { exitCode: 2 });
    return n;
  };
}

/**
 * SIGINT (Ctrl-C), SIGTERM and SIGHUP end a long-running command the orderly way (the simulator
 * waits for its last acks and prints its stats; watch restores the cursor); a second signal
 * exits at once. The handlers live only while the command runs.
 */
function stopOnSignals(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (): void => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort();
  };
  for (const s of signals) process.on(s, onSignal);
  return { signal: ac.signal, dispose: () => signals.forEach((s) => process.off(s, onSignal)) };
}

/** A stream for watch's output: the process's stdout, or io.out in tests. */
function outStream(io: CliIo): NodeJS.WritableStream & { isTTY?: boolean; columns?: number } {
  if (io === processIo) return process.stdout;
  return new Writable({
    write(chunk, _enc, cb) {
      io.out(String(chunk));
      cb();
    },
  });
}

export function registerClientCommands(program: Command, io: CliIo = processIo): void {
  registerWaitlistCommands(program, io);
  program
    .command('call')
    .description('send one raw RPC request and print the reply, e.g. carrel call seats.list \'{"branch":"Main Library"}\'')
    .argument('<method>', 'method name, e.g. PING or server.info')
    .argument('[json]', 'args[0] as JSON (an object), or the whole args array')
    .option('-s, --server <host:port>', 'server address (default: $CARREL_SERVER, else 127.0.0.1:9000)')
    .option('-t, --token <jwt>', 'token to send with the request (default: the one `carrel login` remembered)')
    .action(async (method: string, json: string | undefined, opts: { server?: string; token?: string }) => {
      let args: unknown[] | undefined;
      if (json !== undefined) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(json);
        } catch {
          throw Object.assign(new Error(`the json argument is not valid JSON: ${json}`), { exitCode: 2 });
        }
        args = Array.isArray(parsed) ? parsed : [parsed];
      }
      const server = rpcServer(opts.server, io.env);
      const { host, port } = parseServer(server, 9000);
      const client = await RpcClient.connect(host, port);
      try {
        const reply = await client.request(method, args, opts.token ?? new TokenStore(tokenFilePath(io.env)).get(server)?.token);
        if (reply.error) {
          io.err(`${JSON.stringify(reply.error, null, 2)}\n`);
          io.setExitCode(1);
        } else {
          io.out(`${typeof reply.result === 'string' ? reply.result : JSON.stringify(reply.result, null, 2)}\n`);
        }
      } finally {
        client.close();
      }
    });
  registerUserCommands(program, io);
  registerAdminCommands(program, io);
  registerReportCommand(program, io);

  const sensors = program.command('sensors').description('occupancy sensor tools');
  sensors
    .command('simulate')
    .description('act as a sensor gateway: stream occupancy readings for a branch or N seats (reconnects and resends; Ctrl-C stops and prints the stats)')
    .option('-s, --server <host:port>', 'the sensor port (default: $CARREL_SENSOR_SERVER, else 127.0.0.1:9001)')
    .option('-b, --branch <name>', 'simulate every seat of this branch (seat ids come from the subscriber port)')
    .option('--pubsub <host:port>', 'the subscriber port used to list the branch\'s seats (default: the port after --server\'s, on its host; without --server, $CARREL_PUBSUB_SERVER if set)')
    .option('-n, --seats <n>', 'simulate seat ids 1..n (without --branch)', positive('--seats'), 50)
    .option('-r, --rate <readings/s>', 'readings per second (at most 1,000 per seat)', positive('--rate'), 20)
    .addOption(new Option('-p, --pattern <pattern>', 'arrivals/departures').choices(['random', 'lecture-break']).default('random'))
    .option('--period <seconds>', 'length of one lecture-break cycle (the break is its last fifth)', positive('--period'), 60)
    .option('-d, --duration <seconds>', 'stop after this long (default: until Ctrl-C)', positive('--duration'))
    .option('-k, --key <key>', 'sensor key', 'dev-sensor-key')
    .option('--sensor-id <id>', 'this gateway\'s id', 'sim-gateway')
    .action(async (o: { server?: string; branch?: string; pubsub?: string; seats: number; rate: number; pattern: Pattern; period: number; duration?: number; key: string; sensorId: string }) => {
      const stop = stopOnSignals();
      try {
        const stats = await simulate({
          server: o.server ?? io.env.CARREL_SENSOR_SERVER ?? '127.0.0.1:9001',
          // The environment's subscriber port only goes with the environment's sensor port.
          pubsub: o.pubsub ?? (o.server === undefined ? io.env.CARREL_PUBSUB_SERVER : undefined),
          branch: o.branch,
          seats: Math.floor(o.seats),
          rate: o.rate,
          pattern: o.pattern,
          periodSec: o.period,
          durationSec: o.duration,
          key: o.key,
          sensorId: o.sensorId,
          signal: stop.signal,
          ...(io === processIo ? {} : { out: outStream(io), quiet: true }),
        });
        io.out(`${JSON.stringify(stats)}\n`);
      } finally {
        stop.dispose();
      }
    });

  program
    .command('watch')
    .description('watch a branch live (or "*" for all): a seat map for people (l: labels, q: quit), --json for JSON lines; resumes after disconnects')
    .argument('<branch>', 'branch name or id, or "*"')
    .option('-s, --server <host:port>', 'the subscriber port (default: $CARREL_PUBSUB_SERVER, else 127.0.0.1:9002)')
    .option('--json', 'one JSON line per frame received', false)
    .option('--labels', 'show the seats\' labels instead of glyphs (the `l` key toggles)', false)
    .option('-t, --token <jwt>', 'receive the personal events (waitlist offers, releases) of this token\'s user (default: the token `carrel login` remembered for this server)')
    .option('--no-token', 'send no token, not even the remembered one: seat events only')
    .option('-d, --duration <seconds>', 'stop after this long', positive('--duration'))
    .action(async (branch: string, o: { server?: string; json: boolean; labels: boolean; token?: string | false; duration?: number }) => {
      const server = o.server ?? io.env.CARREL_PUBSUB_SERVER ?? '127.0.0.1:9002';
      let token: string | undefined;
      let tokenFrom: 'flag' | 'remembered' | undefined;
      const remembered = new TokenStore(tokenFilePath(io.env)).forSubscriberPort(server);
      if (typeof o.token === 'string') {
        token = o.token;
        tokenFrom = 'flag';
      } else if (o.token !== false) {
        token = remembered?.login.token;
        if (token) tokenFrom = 'remembered';
      }
      // The RPC port of the same server, for the branches' time zones (an offer's times are the
      // branch's): the one the login was made on, else the one named for this shell.
      const rpc = remembered?.server ?? io.env.CARREL_SERVER ?? (o.server === undefined && io.env.CARREL_PUBSUB_SERVER === undefined ? DEFAULT_RPC_SERVER : undefined);
      const stop = stopOnSignals();
      try {
        const code = await watch({
          branch,
          server,
          json: o.json,
          labels: o.labels,
          token,
          tokenFrom,
          durationSec: o.duration,
          signal: stop.signal,
          out: outStream(io),
          ...(io === processIo ? { input: process.stdin } : {}),
          ...(token && rpc && !o.json ? { branchZones: branchZones(rpc), offers: openOffers(rpc, token) } : {}),
        });
        if (code !== 0) io.setExitCode(code);
      } finally {
        stop.dispose();
      }
    });
}

/** The watcher's offers not yet claimed (waitlist.mine), as watch shows them; rejects when it cannot tell. */
async function openOffers(server: string, token: string): Promise<OfferView[]> {
  const { host, port } = parseServer(server, 9000);
  const client = await RpcClient.connect(host, port, { timeoutMs: 2000 });
  try {
    client.token = token;
    const entries = await client.call<WaitlistEntryWire[]>('waitlist.mine');
    return entries.flatMap((e) =>
      e.status === 'OFFERED' && e.offer
        ? [{ waitlistId: e.id, reservationId: e.offer.reservationId, seatId: e.offer.seatId, branchId: e.branchId, start: e.start, end: e.end, expiresAt: e.offer.offerExpiresAt, lapsesAtMs: Date.parse(e.offer.offerExpiresAt) }]
        : [],
    );
  } finally {
    client.close();
  }
}

/** Branch id → time zone, from branches.list on the RPC port; rejects when it cannot tell. */
async function branchZones(server: string): Promise<Map<number, string>> {
  const { host, port } = parseServer(server, 9000);
  const client = await RpcClient.connect(host, port, { timeoutMs: 2000 });
  try {
    const list = await client.call<BranchWire[]>('branches.list');
    return new Map(list.map((b) => [b.id, b.timezone]));
  } finally {
    client.close();
  }
}
