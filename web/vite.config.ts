// The pages (docs/web.md): three entries, built by `npm run build` into dist/web, which the HTTP
// port serves (src/http/staticSite.ts). `base: '/'` because pages live at nested paths
// (/signage/<branch>) and must load /assets/... from the root. Nothing is fetched from elsewhere:
// no CDN, no web fonts, so a library's machines without internet show the same pages.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/',
  publicDir: here('public'),
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    reportCompressedSize: false,
    rolldownOptions: {
      input: { index: here('index.html'), signage: here('signage.html'), staff: here('staff.html') },
    },
  },
});
