// The client subcommands of `carrel` (DESIGN §8): talk to a running server over the RPC port.
import type { Command } from 'commander';
import { RpcClient, parseServer } from './rpcClient.js';
import { registerWaitlistCommands } from './waitlistCommands.js';

import { TokenStore } from './tokenStore.js';
import { DEFAULT_SERVER, registerUserCommands } from './userCommands.js';

export function registerClientCommands(program: Command): void {
  registerWaitlistCommands(program);
  program
    .command('call')
    .description('send one raw RPC request and print the reply, e.g. carrel call seats.list \'{"branch":"Main Library"}\'')
    .argument('<method>', 'method name, e.g. PING or server.info')
    .argument('[json]', 'args[0] as JSON (an object), or the whole args array')
    .option('-s, --server <host:port>', 'server address', DEFAULT_SERVER)
    .option('-t, --token <jwt>', 'token to send with the request (default: the one `carrel login` remembered)')
    .action(async (method: string, json: string | undefined, opts: { server: string; token?: string }) => {
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
      const { host, port } = parseServer(opts.server, 9000);
      const client = await RpcClient.connect(host, port);
      try {
        const reply = await client.request(method, args, opts.token ?? new TokenStore().get(opts.server)?.token);
        if (reply.error) {
          process.stderr.write(`${JSON.stringify(reply.error, null, 2)}\n`);
          process.exitCode = 1;
        } else {
          process.stdout.write(`${typeof reply.result === 'string' ? reply.result : JSON.stringify(reply.result, null, 2)}\n`);
        }
      } finally {
        client.close();
      }
    });
  registerUserCommands(program);
}
