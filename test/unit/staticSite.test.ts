// The web pages on the HTTP port (src/http/staticSite.ts, docs/web.md): routes, content types,
// caching, compression, and that no request path reaches a file outside the built site.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StaticSite } from '../../src/http/staticSite.js';
import { silentLogger } from '../../src/obs/log.js';

const root = mkdtempSync(join(tmpdir(), 'carrel-site-'));
const site = join(root, 'web');
const INDEX = '<!doctype html><title>student</title>';
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4000))});`;
let server: http.Server;
let base: string;

async function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  // A raw request: fetch() would normalise `..` and `%2e%2e` away before sending.
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}`, { method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  mkdirSync(join(site, 'assets'), { recursive: true });
  mkdirSync(join(site, '.vite'), { recursive: true });
  writeFileSync(join(site, 'index.html'), INDEX);
  writeFileSync(join(site, 'signage.html'), '<!doctype html><title>signage</title>');
  writeFileSync(join(site, 'staff.html'), '<!doctype html><title>staff</title>');
  writeFileSync(join(site, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(join(site, 'assets', 'app-1a2b3c.js'), SCRIPT);
  writeFileSync(join(site, 'assets', 'app-1a2b3c.css'), 'body{}');
  writeFileSync(join(site, '.vite', 'manifest.json'), '{}');
  // What must never be served: a file beside the site, reached by any spelling of "..".
  writeFileSync(join(root, 'secret.txt'), 'secret');
  const pages = await StaticSite.load(site, silentLogger);
  server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (!pages.serve(req, res, path)) {
      res.writeHead(404);
      res.end('not ours');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(root, { recursive: true, force: true });
});

describe('the pages', () => {
  it('answers each page route with its page, whatever follows /signage/', async () => {
    for (const [path, title] of [
      ['/', 'student'],
      ['/index.html', 'student'],
      ['/staff', 'staff'],
      ['/staff/', 'staff'],
      ['/signage/Main%20Library', 'signage'],
      ['/signage/3/', 'signage'],
      ['/signage', 'signage'],
      ['/?next=1', 'student'],
    ] as const) {
      const r = await get(path);
      expect(r.status, path).toBe(200);
      expect(r.body.toString(), path).toContain(`<title>${title}</title>`);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.headers['cache-control']).toBe('no-cache');
      expect(r.headers['content-security-policy']).toContain("connect-src 'self'");
      expect(r.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('serves hashed assets for a year with their content type, and other files revalidated', async () => {
    const js = await get('/assets/app-1a2b3c.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.body.toString()).toBe(SCRIPT);
    expect((await get('/assets/app-1a2b3c.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    const svg = await get('/favicon.svg');
    expect(svg.headers['content-type']).toBe('image/svg+xml');
    expect(svg.headers['cache-control']).toBe('no-cache');
  });

  it('answers 304 to a matching If-None-Match, and the whole file to a stale one', async () => {
    const first = await get('/assets/app-1a2b3c.js');
    const etag = first.headers.etag!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await get('/assets/app-1a2b3c.js', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect((await get('/assets/app-1a2b3c.js', { 'if-none-match': `"other", W/${etag}` })).status).toBe(304);
    expect((await get('/assets/app-1a2b3c.js', { 'if-none-match': '"stale"' })).status).toBe(200);
  });

  it('gzips text for a client that accepts it, never for one that refuses it', async () => {
    const gz = await get('/assets/app-1a2b3c.js', { 'accept-encoding': 'br, gzip, deflate' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.vary).toBe('Accept-Encoding');
    expect(Number(gz.headers['content-length'])).toBe(gz.body.length);
    expect(gz.body.length).toBeLessThan(SCRIPT.length / 10);
    expect(gunzipSync(gz.body).toString()).toBe(SCRIPT);
    for (const refusal of ['gzip;q=0', 'identity', 'br']) {
      const plain = await get('/assets/app-1a2b3c.js', { 'accept-encoding': refusal });
      expect(plain.headers['content-encoding'], refusal).toBeUndefined();
      expect(plain.body.toString()).toBe(SCRIPT);
    }
  });

  it('answers HEAD with the headers alone', async () => {
    const r = await get('/', {}, 'HEAD');
    expect(r.status).toBe(200);
    expect(Number(r.headers['content-length'])).toBe(INDEX.length);
    expect(r.body.length).toBe(0);
  });

  it('reaches no file outside the built site, nor its build bookkeeping, by any path', async () => {
    for (const path of [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/..%2fsecret.txt',
      '/assets/..\\..\\secret.txt',
      '//secret.txt',
      '/secret.txt',
      '/.vite/manifest.json',
      '/assets/',
      '/assets',
      '/index.html%00.js',
      '/ASSETS/app-1a2b3c.js',
    ]) {
      const r = await get(path);
      expect(r.status, path).toBe(404);
      expect(r.body.toString(), path).toBe('not ours');
    }
  });
});

describe('a site that was not built', () => {
  it('answers its page routes 503 saying how to build, and leaves other paths alone', async () => {
    const pages = await StaticSite.load(join(root, 'nowhere'), silentLogger);
    expect(pages.size).toBe(0);
    const s = http.createServer((req, res) => {
      if (!pages.serve(req, res, req.url!)) {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
      const page = await fetch(`${url}/signage/x`);
      expect(page.status).toBe(503);
      expect(await page.text()).toContain('npm run build');
      expect((await fetch(`${url}/assets/app.js`)).status).toBe(404);
    } finally {
      await new Promise((r) => s.close(r));
    }
  });
});
