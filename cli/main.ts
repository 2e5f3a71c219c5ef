// The `carrel` command line: the server, database chores, and the client subcommands.
//
// It lives outside src/ because it puts three programs behind one command: the server (src/),
// the clients (clients/) and the load generator (loadtest/). The server itself never imports
// the other two (docs/architecture.md, "Import rules").
//
// The server and database modules are imported only by the commands that use them: a client
// command (`carrel reserve`, `carrel mine`) should not pay for loading the whole server, which
// was most of its start-up time.
import { Command, Option } from 'commander';
import { printError, processIo } from '../clients/cliIo.js';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { VERSION } from '../src/version.js';
import { registerClientCommands } from '../clients/cli.js';
import { registerBenchCommands } from '../loadtest/cli.js';

// With --json, every error is one JSON object on stderr (scripts parse it), commander's own
// usage errors included; set before the commands are added, which inherit it.
const jsonErrors = process.argv.includes('--json');
const program = new Command();
program
  .name('carrel')
  .description('carrel: seat reservations for university libraries')
  .version(VERSION)
  .showHelpAfterError(!jsonErrors);
if (jsonErrors) {
  program.configureOutput({
    outputError: (text, write) => write(`${JSON.stringify({ code: 'INVALID_ARGUMENT', message: text.replace(/^error: /, '').trim() })}\n`),
  });
}

program
  .command('serve')
  .description('run the server: RPC, sensor and subscriber ports (embedded PostgreSQL without DATABASE_URL)')
  .addOption(new Option('-c, --config <file>', 'config file (default: $CARREL_CONFIG or ./config.json)'))
  .addOption(new Option('-w, --workers <n>', 'cluster workers sharing the ports (more than 1 needs REDIS_URL)').argParser((v) => Number(v)))
  .action(async (opts: { config?: string; workers?: number }) => {
    const { serve } = await import('../src/cli/serve.js');
    await serve(opts);
  });

const db = program.command('db').description('database chores');
db.command('migrate')
  .description('apply pending migrations from db/migrations, then the SQL functions from db/functions')
  .option('-c, --config <file>', 'config file')
  .action(async (opts: { config?: string }) => {
    const { openDatabase } = await import('../src/db/database.js');
    const { migrate } = await import('../src/db/migrate.js');
    const { commandLogger } = await import('../src/cli/logging.js');
    const config = loadConfig({ file: opts.config });
    const log = commandLogger(config);
    const database = await openDatabase(config, log, { migrate: false, seedIfNew: false, attach: true });
    try {
      const applied = await migrate(database.pool, log);
      process.stdout.write(applied.length ? `applied ${applied.map((m) => `${m.version}_${m.name}`).join(', ')}\n` : 'nothing to apply\n');
    } finally {
      await database.close();
    }
  });
db.command('seed')
  .description('load demo branches, seats, users and the development sensor key (idempotent); --history N adds N days of simulated use')
  .option('-c, --config <file>', 'config file')
  .option('--history <days>', 'also simulate this many days before today: bookings, check-ins, no-shows, walk-ins and sensor history (1-366; days with data are left alone)')
  .option('--seed <n>', 'the simulation\'s random seed: the same seed gives the same history', '1')
  .option('-b, --branch <name>', 'simulate only this branch (default: every branch)')
  .action(async (opts: { config?: string; history?: string; seed: string; branch?: string }) => {
    const { openDatabase } = await import('../src/db/database.js');
    const { seed } = await import('../src/db/migrate.js');
    const { commandLogger } = await import('../src/cli/logging.js');
    const { simulateHistory, MAX_SIMULATED_DAYS } = await import('../src/history/simulate.js');
    const { writerStaleAfterMs } = await import('../src/sensors/presenceHistory.js');
    const days = opts.history === undefined ? undefined : Number(opts.history);
    if (days !== undefined && !(Number.isInteger(days) && days >= 1 && days <= MAX_SIMULATED_DAYS)) {
      throw Object.assign(new Error(`--history takes a whole number of days from 1 to ${MAX_SIMULATED_DAYS}, not ${opts.history}`), { exitCode: 2 });
    }
    const seedValue = Number(opts.seed);
    if (!Number.isSafeInteger(seedValue)) throw Object.assign(new Error(`--seed takes an integer, not ${opts.seed}`), { exitCode: 2 });
    const config = loadConfig({ file: opts.config });
    const log = commandLogger(config);
    const database = await openDatabase(config, log, { migrate: true, seedIfNew: false, attach: true });
    try {
      await seed(database.pool, log);
      process.stdout.write('seeded\n');
      if (days !== undefined) {
        const started = Date.now();
        const r = await simulateHistory(database.pool, {
          days,
          seed: seedValue,
          nowMs: Date.now(),
          branch: opts.branch,
          slotMinutes: config.rules.slotMinutes,
          checkInGraceMinutes: config.rules.checkInGraceMinutes,
          awayHoldMs: config.presence.awayMinutes * 60_000,
          staleAfterMs: writerStaleAfterMs(config.sensors.flushEveryMs),
        });
        process.stdout.write(
          `simulated ${r.days} branch-days in ${((Date.now() - started) / 1000).toFixed(1)} s: ${r.bookings.toLocaleString('en')} bookings ` +
            `(${r.noShows.toLocaleString('en')} no-shows), ${r.walkIns.toLocaleString('en')} walk-ins, ${r.intervals.toLocaleString('en')} sensor intervals; ` +
            `${r.summed} days summed up for the report\n`,
        );
        if (r.days === 0) process.stdout.write('(every day asked for already had bookings or sensor history: nothing was added)\n');
      }
    } finally {
      await database.close();
    }
  });

registerClientCommands(program);
registerBenchCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  void printError(processIo, err, { json: jsonErrors }).then(() => process.exit(process.exitCode ?? 1));
});
