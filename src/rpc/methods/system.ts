// PING and server.info: the two methods a client can call before anything else (docs/protocol.md,
// "RPC methods").
import { z } from 'zod';
import { defineMethod, type MethodDef } from '../registry.js';

export interface ServerInfo {
  name: string;
  version: string;
  instanceId: string;
  startedAt: string;
  ports: Record<string, number>;
  limits: Record<string, number>;
}

const noArgs = z.union([z.undefined(), z.strictObject({})]);

export function systemMethods(info: () => ServerInfo): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'PING',
      access: 'public',
      args: z.unknown(),
      summary: 'liveness check; answers "PONG"',
      handler: () => 'PONG',
    }),
    defineMethod({
      name: 'server.info',
      access: 'public',
      args: noArgs,
      summary: 'name, version, instance, ports and limits of this server',
      handler: () => info(),
    }),
  ];
}

export { noArgs };
