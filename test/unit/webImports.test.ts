// The pages' import rule (docs/architecture.md, "Import rules"): web/ runs in a browser and speaks
// the wire protocol, so of the rest of carrel it imports only the wire vocabulary's types
// (src/wire, type-only: nothing of it but its shapes may reach the bundle), nothing of the server,
// the CLI clients, the load generator or the tests, and no package but the few the pages are
// built with. The dependency cruiser checks the other layers, but its swc parse cannot read TSX;
// this reads the pages with swc's own TSX parser, every import form included (re-exports,
// `import()`, `import('…').T`).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { parseSync } from '@swc/core';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';

/** The packages the pages may import (docs/web.md says why each). */
const PACKAGES = new Set(['preact', '@preact/signals']);

interface Specifier {
  spec: string;
  /** Erased by the compiler: `import type`, `export type`, an import whose every name is a type, `import('…').T`. */
  typeOnly: boolean;
}

/** Every module specifier a TypeScript or TSX source names. */
function specifiers(source: string, tsx: boolean): Specifier[] {
  const ast = parseSync(source, { syntax: 'typescript', tsx, dynamicImport: true });
  const found: Specifier[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown> & { type?: string };
    const text = (v: unknown) => (v && typeof v === 'object' && typeof (v as { value?: unknown }).value === 'string' ? (v as { value: string }).value : undefined);
    if ((n.type === 'ImportDeclaration' || n.type === 'ExportAllDeclaration' || n.type === 'ExportNamedDeclaration') && text(n.source)) {
      const names = (n.specifiers as { isTypeOnly?: boolean }[] | undefined) ?? [];
      const typeOnly = n.typeOnly === true || (n.type !== 'ExportAllDeclaration' && names.length > 0 && names.every((x) => x.isTypeOnly === true));
      found.push({ spec: text(n.source)!, typeOnly });
    }
    if (n.type === 'CallExpression' && (n.callee as { type?: string })?.type === 'Import') {
      const arg = (n.arguments as { expression?: unknown }[])[0]?.expression;
      found.push({ spec: text(arg) ?? '(computed import)', typeOnly: false });
    }
    if (n.type === 'TsImportType' && text(n.argument)) found.push({ spec: text(n.argument)!, typeOnly: true });
    if (n.type === 'TsExternalModuleReference' && text(n.expression)) found.push({ spec: text(n.expression)!, typeOnly: false });
    for (const v of Object.values(n)) if (v && typeof v === 'object') walk(v);
  };
  walk(ast.body);
  return found;
}

/** What a file under web/ imports that the rule refuses, as "file → specifier". */
function refusals(file: string, source: string): string[] {
  return specifiers(source, file.endsWith('.tsx'))
    .filter(({ spec, typeOnly }) => {
      if (spec.startsWith('.')) {
        const target = join(dirname(file), spec);
        if (target.startsWith(`web${sep}`)) return false;
        return !(typeOnly && target.startsWith(join('src', 'wire') + sep));
      }
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      return !PACKAGES.has(name);
    })
    .map(({ spec }) => `${file.split(sep).join('/')} → ${spec}`);
}

describe('the pages import nothing of the server', () => {
  it('every file under web/src keeps the rule, and the files were read', () => {
    const files = readdirSync(join(projectRoot, 'web', 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => /\.tsx?$/.test(f))
      .map((f) => join('web', 'src', f));
    expect(files.length).toBeGreaterThan(10);
    let imports = 0;
    const bad: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(projectRoot, f), 'utf8');
      imports += specifiers(text, f.endsWith('.tsx')).length;
      bad.push(...refusals(relative(projectRoot, join(projectRoot, f)), text));
    }
    expect(bad).toEqual([]);
    expect(imports).toBeGreaterThan(40);
  });

  it('refuses a server module, even for a type, a tool, a test helper, the wire vocabulary but for its types, and a package the pages do not use', () => {
    const file = join('web', 'src', 'staff', 'main.tsx');
    const text = [
      "import type { SeatWire } from '../../../src/wire/types.js';",
      "export type { WireError } from '../../../src/wire/errors.js';",
      "import { type UserWire, type BranchWire } from '../../../src/wire/types.js';",
      "import { methodArgs } from '../../../src/wire/args.js';",
      "export * from '../../../src/wire/types.js';",
      "import type { LiveSeats } from '../../../src/core/liveSeats.js';",
      "export * from '../../../clients/rpcClient.js';",
      "export { x } from '../../../loadtest/live.js';",
      "const h = await import('../../../test/support/server.js');",
      "import pg from 'pg';",
      "import { readFileSync } from 'node:fs';",
      "type T = import('../../../src/errors.js').WireError;",
      "import { Board } from '../lib/board.js';",
      "import { render } from 'preact';",
      "import { signal } from '@preact/signals';",
      'export const el = <div class="x">{h}</div>;',
    ].join('\n');
    expect(refusals(file, text).sort()).toEqual(
      [
        'web/src/staff/main.tsx → ../../../src/wire/args.js', // a value: zod and the schemas would be bundled
        'web/src/staff/main.tsx → ../../../src/wire/types.js', // export *: values too, were there any
        'web/src/staff/main.tsx → ../../../src/core/liveSeats.js',
        'web/src/staff/main.tsx → ../../../clients/rpcClient.js',
        'web/src/staff/main.tsx → ../../../loadtest/live.js',
        'web/src/staff/main.tsx → pg',
        'web/src/staff/main.tsx → node:fs',
        'web/src/staff/main.tsx → ../../../test/support/server.js',
        'web/src/staff/main.tsx → ../../../src/errors.js',
      ].sort(),
    );
  });
});
