// PING and server.info: the two methods a client can call before anything else (docs/protocol.md,
// "RPC methods").
import { methodArgs } from '../../wire/args.js';
import type { ServerInfo } from '../../wire/types.js';
import { defineMethod, type MethodDef } from '../registry.js';

export function systemMethods(info: () => ServerInfo): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'PING',
      access: 'public',
      args: methodArgs.PING,
      summary: 'liveness check; answers "PONG"',
      handler: () => 'PONG',
    }),
    defineMethod({
      name: 'server.info',
      access: 'public',
      args: methodArgs['server.info'],
      summary: 'name, version, instance, ports and limits of this server',
      handler: () => info(),
    }),
  ];
}
