// The web pages on the HTTP port (docs/web.md): the files `npm run build` puts in dist/web,
// read into memory once at start and answered from there. A request path is only ever a key of
// that map — never joined to a directory — so no path (`..`, `%2e%2e`, `//`, a backslash, a NUL)
// can reach another file. Hashed assets (assets/*) are cached for a year; pages and other files
// are revalidated by ETag on every load, so a new build shows at once. Text is gzipped once, here.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import type http from 'node:http';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Logger } from '../obs/log.js';

interface SiteFile {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
  etag: string;
  cacheControl: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/** The pages' own routes: each answers with one built page; the page reads the rest of its path. */
const PAGES: [RegExp, string][] = [
  [/^\/(?:index\.html)?$/, 'index.html'],
  [/^\/staff\/?$/, 'staff.html'],
  [/^\/signage(?:\/[^/]*)?\/?$/, 'signage.html'],
];

// Same-origin everything: scripts, styles and the WebSocket transports (`'self'` covers ws: and
// wss: to this host). No inline script or style is built, and no page may frame these.
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'same-origin',
};

/** Limits on what is read at start: the built site is a few hundred kilobytes. */
const MAX_FILES = 2_000;
const MAX_TOTAL_BYTES = 64 * 1024 * 1024;

export class StaticSite {
  private constructor(
    private readonly files: ReadonlyMap<string, SiteFile>,
    private readonly dir: string,
  ) {}

  /** Reads the built site under `dir`; a missing build gives a site that says so on its routes. */
  static async load(dir: string, log: Logger): Promise<StaticSite> {
    const files = new Map<string, SiteFile>();
    let total = 0;
    const walk = async (d: string): Promise<void> => {
      for (const entry of await readdir(d, { withFileTypes: true })) {
        if (entry.name.startsWith('.')) continue; // .vite/ and the like: build bookkeeping
        const full = join(d, entry.name);
        if (entry.isDirectory()) {
          await walk(full);
          continue;
        }
        if (!entry.isFile()) continue; // a symlink could point anywhere
        const size = (await stat(full)).size;
        if (files.size >= MAX_FILES || total + size > MAX_TOTAL_BYTES) throw new Error(`more than ${MAX_FILES} files or ${MAX_TOTAL_BYTES} bytes`);
        total += size;
        const key = relative(dir, full).split(sep).join('/');
        files.set(key, describe(key, await readFile(full)));
      }
    };
    try {
      await walk(dir);
    } catch (err) {
      files.clear();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') log.warn({ dir }, 'the web pages are not built (npm run build); /, /signage and /staff answer 503');
      else log.error({ dir, err: (err as Error).message }, 'the web pages could not be read; /, /signage and /staff answer 503');
    }
    return new StaticSite(files, dir);
  }

  /** Answers a GET or HEAD for `path` if it is a page or a built file; false leaves it to the caller. */
  serve(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean {
    const page = PAGES.find(([re]) => re.test(path))?.[1];
    const file = this.files.get(page ?? path.slice(1));
    if (!file) {
      if (!page) return false;
      const body = `The web pages are not built. Run npm run build, then restart carrel (looked in ${this.dir}).\n`;
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    }
    const headers: Record<string, string | number> = {
      'content-type': file.type,
      'cache-control': file.cacheControl,
      etag: file.etag,
      'x-content-type-options': 'nosniff',
      ...(file.type.startsWith('text/html') ? PAGE_HEADERS : {}),
    };
    if (file.gzip) headers.vary = 'Accept-Encoding';
    if (etagMatches(req.headers['if-none-match'], file.etag)) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    const body = file.gzip && acceptsGzip(req.headers['accept-encoding']) ? file.gzip : file.body;
    if (body === file.gzip) headers['content-encoding'] = 'gzip';
    headers['content-length'] = body.length;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }

  /** How many files were read (0: not built). */
  get size(): number {
    return this.files.size;
  }
}

function describe(key: string, body: Buffer): SiteFile {
  const type = TYPES[extname(key).toLowerCase()] ?? 'application/octet-stream';
  const compressible = /^(text\/|application\/(json|manifest\+json)|image\/svg)/.test(type) && body.length > 512;
  const gzip = compressible ? gzipSync(body, { level: 9 }) : undefined;
  return {
    body,
    gzip: gzip && gzip.length < body.length ? gzip : undefined,
    type,
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
    // Vite names every file under assets/ by its content's hash: a changed file is a new name.
    cacheControl: key.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
  };
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}
