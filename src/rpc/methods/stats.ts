// server.stats (DESIGN §2, §7): the figures /metrics exposes, as JSON over RPC. It needs a
// token: request rates and pool use tell an outsider how hard the service can be pushed.
import { defineMethod, type MethodDef } from '../registry.js';
import { noArgs } from './system.js';

export function statsMethods(stats: () => unknown): MethodDef<any>[] {
  return [
    defineMethod({
      name: 'server.stats',
      access: 'user',
      args: noArgs,
      summary: 'per-method counts and latency percentiles, errors by code, connections, in-flight, pool',
      handler: () => stats(),
    }),
  ];
}
