// A real browser for the end-to-end tests of the pages (docs/web.md): Debian's chromium driven by
// playwright-core, which never downloads a browser of its own. Without chromium the browser suites
// are skipped with a message — except in CI (CI=true), where they must run (.ci/run installs it).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { projectRoot } from '../../src/paths.js';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** CHROMIUM_PATH, else the first Debian or Chrome binary found. */
export const chromiumPath = process.env.CHROMIUM_PATH || CANDIDATES.find((p) => existsSync(p));
export const browserAvailable = chromiumPath !== undefined && existsSync(chromiumPath);

if (!browserAvailable) {
  if (process.env.CI === 'true') throw new Error('CI=true but no chromium was found (set CHROMIUM_PATH, or apt-get install chromium): the browser tests must run in CI');
  process.stderr.write(`tests: no chromium found (${CANDIDATES.join(', ')}; or set CHROMIUM_PATH); skipping the browser tests of the web pages\n`);
}

/** Headless chromium; as root it needs --no-sandbox (its sandbox refuses to run as root). */
export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const args = ['--disable-gpu', '--disable-dev-shm-usage', '--hide-scrollbars', '--font-render-hinting=none'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  return chromium.launch({ executablePath: chromiumPath, headless: true, args });
}

/** The newest modification time of any file under dir (0 when it does not exist). */
function newest(dir: string): number {
  if (!existsSync(dir)) return 0;
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** `npm test` builds the pages first; a direct vitest run after editing web/ rebuilds them here. */
export function ensureWebBuilt(): void {
  const built = join(projectRoot, 'dist', 'web', 'index.html');
  const builtAt = existsSync(built) ? statSync(built).mtimeMs : 0;
  if (newest(join(projectRoot, 'web')) <= builtAt) return;
  execFileSync(process.execPath, [join(projectRoot, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], {
    cwd: projectRoot,
    stdio: 'inherit',
  });
}
