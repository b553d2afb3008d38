// Writes schema/atp-ws-protocol.schema.json from the built package, so the
// shipped JSON Schema is always generated from the zod schemas.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildJsonSchema } from '../dist/json-schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'schema'), { recursive: true });
writeFileSync(
  join(root, 'schema', 'atp-ws-protocol.schema.json'),
  `${JSON.stringify(buildJsonSchema(), null, 2)}\n`,
);
