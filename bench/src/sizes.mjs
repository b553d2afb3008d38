// Gzipped size of our browser build vs socket.io-client's browser bundle.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));

function gzipped(file) {
  if (!existsSync(file)) return undefined;
  const raw = readFileSync(file);
  return { file, bytes: raw.length, gzipBytes: gzipSync(raw, { level: 9 }).length };
}

/** `{ ours, socketio }`: bytes and gzip -9 bytes of each, `undefined` when a file is absent. */
export async function bundleSizes() {
  const ours = gzipped(join(here, '..', '..', 'packages', 'client', 'dist', 'browser.global.js'));
  // socket.io-client's `exports` hides dist/; its entry point lives in build/, next to dist/.
  const require = createRequire(import.meta.url);
  const entry = require.resolve('socket.io-client');
  const root = entry.slice(0, entry.lastIndexOf(`${'/'}build${'/'}`));
  const socketio = gzipped(join(root, 'dist', 'socket.io.min.js'));
  return { ours, socketio };
}
