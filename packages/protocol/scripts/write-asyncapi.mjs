// Writes schema/atp-ws-protocol.asyncapi.json from the built package, so the
// shipped AsyncAPI document is always generated from the zod schemas.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAsyncApiDocument } from '../dist/asyncapi.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'schema'), { recursive: true });
writeFileSync(
  join(root, 'schema', 'atp-ws-protocol.asyncapi.json'),
  `${JSON.stringify(buildAsyncApiDocument(), null, 2)}\n`,
);
