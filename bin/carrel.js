#!/usr/bin/env node
// The `carrel` command: runs the compiled CLI (npm install / npm start build it into dist/).
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('carrel: not built yet; run `npm install` (or `npm run build`) first');
    process.exit(1);
  }
  throw err;
});
