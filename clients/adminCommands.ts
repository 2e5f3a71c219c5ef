// `carrel admin sensor-keys add|list|revoke` (docs/sensors.md): an admin manages the sensor keys
// gateways say hello with. `add` prints the new key once (the server keeps only its digest), for
// one branch whose seats alone it may write; `list` never shows a key; `revoke` takes a name or an
// id, and --branch as a check that it is that branch's key. Token, output and errors as for every
// other command (cliIo.ts): the token `carrel login` remembered, --json for scripts.
import type { Command } from 'commander';
import { processIo, runCommand, type CliIo } from './cliIo.js';
import { table } from './table.js';
import { formatTime } from './timeInput.js';
import type { SensorKeyWire } from '../src/wire/types.js';

interface CommonOpts {
  server?: string;
  json?: boolean;
}

/** A branch as the server reads a reference: digits are an id. */
const scopeOf = (k: SensorKeyWire): string => k.branch ?? 'every branch';

export function registerAdminCommands(program: Command, io: CliIo = processIo): Command {
  const admin = program.command('admin').description('admin chores (needs an admin login)');
  const keys = admin.command('sensor-keys').description('the keys sensor gateways say hello with, each for one branch');
  const common = (cmd: Command): Command =>
    cmd
      .option('-s, --server <host:port>', 'server address (default: $CARREL_SERVER, else 127.0.0.1:9000)')
      .option('--json', 'print the server\'s JSON instead of text (errors too, on stderr)');

  common(
    keys
      .command('add')
      .description('make a key that may write only one branch\'s seats; it is printed this once, never again')
      .argument('<name>', 'a name to tell the key by (letters, digits, ._:@/-; not all digits)')
      .requiredOption('-b, --branch <branch>', 'the branch (name or id) whose seats the key may write'),
  ).action((name: string, opts: CommonOpts & { branch: string }) =>
    runCommand(io, opts, async (s) => {
      const k = await s.call('admin.sensors.addKey', { name, branch: opts.branch });
      return {
        value: k,
        text: () =>
          `sensor key ${JSON.stringify(k.name)} (id ${k.id}, fingerprint ${k.fingerprint}) for ${scopeOf(k)}:\n\n  ${k.key}\n\n` +
          'This is the only time it is shown: the server keeps only its SHA-256 digest. Give it to the gateway now.',
      };
    }),
  );

  common(
    keys
      .command('list')
      .description('the keys (never the keys themselves), of one branch with --branch')
      .option('-b, --branch <branch>', 'only this branch\'s keys (name or id)')
      .option('--revoked', 'include revoked keys'),
  ).action((opts: CommonOpts & { branch?: string; revoked?: boolean }) =>
    runCommand(io, opts, async (s) => {
      const list = await s.call('admin.sensors.listKeys', {
        ...(opts.branch === undefined ? {} : { branch: opts.branch }),
        ...(opts.revoked ? { includeRevoked: true } : {}),
      });
      return {
        value: list,
        text: () =>
          list.length === 0
            ? 'No sensor keys.'
            : table(
                ['ID', 'NAME', 'BRANCH', 'FINGERPRINT', 'CREATED', 'REVOKED'],
                list.map((k) => [k.id, k.name, scopeOf(k), k.fingerprint, formatTime(k.createdAt), k.revokedAt ? formatTime(k.revokedAt) : '']),
              ),
      };
    }),
  );

  common(
    keys
      .command('revoke')
      .description('revoke a key: refused at its next hello, its open connections closed')
      .argument('<key>', 'the key\'s name, or its id')
      .option('-b, --branch <branch>', 'revoke only if the key is this branch\'s (name or id)'),
  ).action((which: string, opts: CommonOpts & { branch?: string }) =>
    runCommand(io, opts, async (s) => {
      const branch = opts.branch === undefined ? {} : { branch: opts.branch };
      const k = await s.call('admin.sensors.revokeKey', /^\d{1,9}$/.test(which) ? { id: Number(which), ...branch } : { name: which, ...branch });
      return { value: k, text: () => `revoked sensor key ${JSON.stringify(k.name)} (id ${k.id}, ${scopeOf(k)}) as of ${formatTime(k.revokedAt!)}` };
    }),
  );

  // Strikes (docs/rules.md, "Strikes and suspension"): by user id.
  const strikes = admin.command('strikes').description('no-show strikes and the suspensions they earn');
  const userIdOf = (text: string): number => {
    if (!/^\d{1,10}$/.test(text) || Number(text) < 1 || Number(text) > 2_147_483_647) throw new Error(`not a user id: ${JSON.stringify(text)}`);
    return Number(text);
  };
  common(strikes.command('list').description('a user\'s strikes as they count now').argument('<user id>', 'the user\'s id')).action(
    (which: string, opts: CommonOpts) =>
      runCommand(io, opts, async (s) => {
        const st = await s.call('admin.users.strikes', { userId: userIdOf(which) });
        return {
          value: st,
          text: () =>
            `${st.strikes.length} of ${st.limit} strikes within ${st.windowDays} days; ` +
            `${st.suspendedUntil ? `booking suspended until ${formatTime(st.suspendedUntil)}` : 'not suspended'}` +
            (st.strikes.length === 0 ? '' : `\n${table(['ID', 'RESERVATION', 'REASON', 'AT'], st.strikes.map((k) => [k.id, k.reservationId, k.reason, formatTime(k.at)]))}`),
        };
      }),
  );
  common(strikes.command('clear').description('clear a user\'s strikes and lift their suspension').argument('<user id>', 'the user\'s id')).action(
    (which: string, opts: CommonOpts) =>
      runCommand(io, opts, async (s) => {
        const r = await s.call('admin.users.clearStrikes', { userId: userIdOf(which) });
        return { value: r, text: () => `cleared ${r.cleared} strike${r.cleared === 1 ? '' : 's'} of user ${which}; booking is open to them again` };
      }),
  );
  return admin;
}
