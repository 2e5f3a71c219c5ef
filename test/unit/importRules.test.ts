// The import rules (.dependency-cruiser.cjs, docs/architecture.md "Import rules"): carrel's own
// tree breaks none of them and every file of it was read, and each rule still refuses the import
// it exists to refuse, written in a small tree of its own. The pretest step runs the same cruise
// from the command line; this test is what notices when the cruiser silently reads nothing (swc
// missing: it then reports "no violations, 0 modules").
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cruise, type ICruiseOptions, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';

const ROOTS = ['src', 'cli', 'clients', 'loadtest'];

let options: ICruiseOptions;
const dirs: string[] = [];

beforeAll(async () => {
  options = await extractDepcruiseOptions(join(projectRoot, '.dependency-cruiser.cjs'));
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function cruiseIn(baseDir: string, roots: string[]): Promise<ICruiseResult> {
  const result = await cruise(roots, { ...options, baseDir });
  return result.output as ICruiseResult;
}

function violations(r: ICruiseResult): string[] {
  return r.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
}

/** A throwaway tree of TypeScript files, path → source. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'carrel-imports-'));
  dirs.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** One module per layer, each importing only what the rules allow. */
const ALLOWED: Record<string, string> = {
  'src/errors.ts': "export const E = 1;\nexport * from './wire/codes.js';\n",
  'src/wire/words.ts': "export * from './codes.js';\n",
  'src/wire/codes.ts': 'export const W = 1;\n',
  'src/deadline.ts': 'export interface Deadline { remainingMs(): number }\n',
  'src/codec/frame.ts': "export * from './parts.js';\n",
  'src/codec/parts.ts': 'export const F = 1;\n',
  'src/net/connection.ts': "export * from '../codec/frame.js';\nexport * from '../rpc/session.js';\n",
  'src/rpc/session.ts': "export * from '../core/seats.js';\nexport type { Deadline } from '../deadline.js';\nexport * from '../errors.js';\n",
  'src/core/seats.ts': "export * from '../db/pool.js';\nexport * from '../obs/log.js';\nexport * from '../wire/words.js';\n",
  'src/db/pool.ts': 'export const P = 1;\n',
  'src/obs/log.ts': 'export const L = 1;\n',
  'src/bus/bus.ts': "export * from '../core/seats.js';\n",
  'src/pubsub/hub.ts': "export * from '../bus/bus.js';\nexport * from '../codec/frame.js';\n",
  'cli/main.ts': "export * from '../src/net/connection.js';\nexport * from '../clients/cli.js';\nexport * from '../loadtest/cli.js';\n",
  'clients/cli.ts': "export * from '../src/errors.js';\nexport * from '../src/wire/words.js';\n",
  'loadtest/cli.ts': "export * from '../src/codec/frame.js';\n",
};

/** The allowed tree plus one file that breaks a rule. */
async function withOne(path: string, text: string): Promise<string[]> {
  return violations(await cruiseIn(tree({ ...ALLOWED, [path]: text }), ROOTS));
}

describe('carrel itself', () => {
  it('breaks no import rule, and every TypeScript file under src, cli, clients and loadtest was read', async () => {
    const r = await cruiseIn(projectRoot, ROOTS);
    expect(violations(r)).toEqual([]);
    const cruised = new Set(r.modules.map((m) => m.source));
    const files = ROOTS.flatMap((root) =>
      readdirSync(join(projectRoot, root), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
        .map((f) => `${root}/${f.split('\\').join('/')}`),
    );
    expect(files.length).toBeGreaterThan(100);
    expect(files.filter((f) => !cruised.has(f))).toEqual([]);
    // Imports were followed, not just files listed: the composition root reaches every layer.
    const server = r.modules.find((m) => m.source === 'src/server.ts');
    expect(server?.dependencies.map((d) => d.resolved)).toEqual(expect.arrayContaining(['src/rpc/rpcPort.ts', 'src/rpc/dispatch.ts', 'src/db/admission.ts']));
    // …and on through the parts it builds, down to the sockets.
    const rpcPort = r.modules.find((m) => m.source === 'src/rpc/rpcPort.ts');
    expect(rpcPort?.dependencies.map((d) => d.resolved)).toEqual(expect.arrayContaining(['src/net/listener.ts']));
  });
});

describe('each rule refuses what it exists to refuse', () => {
  it('a tree that keeps every direction passes (the rules are not broader than stated)', async () => {
    const r = await cruiseIn(tree(ALLOWED), ROOTS);
    expect(violations(r)).toEqual([]);
    expect(r.modules.map((m) => m.source).sort()).toEqual(Object.keys(ALLOWED).sort());
  });

  it('the codec imports nothing of carrel, not even the shared error module', async () => {
    expect(await withOne('src/codec/parts.ts', "export { E } from '../errors.js';\n")).toEqual([
      'codec-imports-nothing-of-carrel: src/codec/parts.ts → src/errors.ts',
    ]);
  });

  it('the wire vocabulary imports nothing of carrel but itself, not the error class, core or the codec', async () => {
    const text = ["'../errors.js'", "'../core/seats.js'", "'../codec/frame.js'", "'../../clients/cli.js'"].map((p) => `export * from ${p};\n`).join('');
    expect(await withOne('src/wire/codes.ts', text)).toEqual([
      'server-imports-no-tools: src/wire/codes.ts → clients/cli.ts',
      'wire-imports-only-itself: src/wire/codes.ts → clients/cli.ts',
      'wire-imports-only-itself: src/wire/codes.ts → src/codec/frame.ts',
      'wire-imports-only-itself: src/wire/codes.ts → src/core/seats.ts',
      'wire-imports-only-itself: src/wire/codes.ts → src/errors.ts',
    ]);
  });

  it('core imports no net, codec, rpc or pubsub', async () => {
    const text = ["'../net/connection.js'", "'../codec/frame.js'", "'../rpc/session.js'", "'../pubsub/hub.js'"].map((p) => `export * from ${p};\n`).join('');
    expect(await withOne('src/core/seats.ts', text)).toEqual([
      'core-imports-no-transport: src/core/seats.ts → src/codec/frame.ts',
      'core-imports-no-transport: src/core/seats.ts → src/net/connection.ts',
      'core-imports-no-transport: src/core/seats.ts → src/pubsub/hub.ts',
      'core-imports-no-transport: src/core/seats.ts → src/rpc/session.ts',
    ]);
  });

  it('rpc does not import db, even for a type', async () => {
    expect(await withOne('src/rpc/session.ts', "import type { P } from '../db/pool.js';\nexport type Q = typeof P;\n")).toEqual([
      'rpc-imports-no-db: src/rpc/session.ts → src/db/pool.ts',
    ]);
  });

  it('obs does not import rpc', async () => {
    expect(await withOne('src/obs/log.ts', "export * from '../rpc/session.js';\n")).toEqual(['obs-imports-no-rpc: src/obs/log.ts → src/rpc/session.ts']);
  });

  it('bus does not import pubsub', async () => {
    expect(await withOne('src/bus/bus.ts', "export * from '../pubsub/hub.js';\n")).toEqual(['bus-imports-no-pubsub: src/bus/bus.ts → src/pubsub/hub.ts']);
  });

  it('src does not import clients or loadtest, by a dynamic import either', async () => {
    const text = "export const load = () => import('../../clients/cli.js');\nexport * from '../../loadtest/cli.js';\n";
    expect(await withOne('src/cli/serve.ts', text)).toEqual([
      'server-imports-no-tools: src/cli/serve.ts → clients/cli.ts',
      'server-imports-no-tools: src/cli/serve.ts → loadtest/cli.ts',
    ]);
  });

  it('an import that resolves to no file is refused, since no rule could judge it', async () => {
    expect(await withOne('src/db/pool.ts', "export * from './gone.js';\n")).toEqual(['carrel-imports-resolve: src/db/pool.ts → ./gone.js']);
  });
});
