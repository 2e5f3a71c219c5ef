// docs/operations.md tells operators how to run carrel under a service manager; what it says must
// stay true of the code: the unit runs node on bin/carrel.js serve (npm start stands between the
// service manager and carrel, and npm does not pass SIGTERM on), only carrel gets the signal, and
// the stop timeout outlasts the grace carrel gives itself.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { projectRoot } from '../../src/paths.js';

const ops = readFileSync(join(projectRoot, 'docs', 'operations.md'), 'utf8');
const section = ops.slice(ops.indexOf('## Running as a service'), ops.indexOf('\n## ', ops.indexOf('## Running as a service') + 1));
const unit = /```ini\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
const directive = (name: string): string | undefined => new RegExp(`^${name}=(.*)$`, 'm').exec(unit)?.[1]?.replace(/\s+#.*$/, '').trim();

describe('docs/operations.md: running as a service', () => {
  it('the systemd unit runs node on bin/carrel.js serve, never npm or npx', () => {
    expect(unit).not.toBe('');
    expect(directive('ExecStart')).toMatch(/^\/\S*node \S*\/bin\/carrel\.js serve\b/);
    expect(directive('ExecStart')).not.toMatch(/\bnpm\b|\bnpx\b/);
  });

  it('only carrel gets SIGTERM, and systemd waits longer than shutdown.graceMs before it kills', () => {
    expect(directive('KillSignal')).toBe('SIGTERM');
    expect(directive('KillMode')).toBe('mixed');
    expect(Number(directive('TimeoutStopSec')) * 1000).toBeGreaterThan(parseConfig({}).shutdown.graceMs);
  });

  it('says why not npm start (the orphans, the exit status) and how a container runs it', () => {
    expect(section).toMatch(/never `npm start` or `npx carrel serve`/);
    expect(section).toMatch(/orphans/);
    expect(section).toContain('CMD ["node", "bin/carrel.js", "serve"]');
  });
});
