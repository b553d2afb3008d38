// Rewrites the generated sections of docs/PROTOCOL.md (topic, error code and
// close code tables) from the built package, so the document follows the code.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { updateGeneratedSections } from '../dist/docs.js';

const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'PROTOCOL.md');
const before = readFileSync(file, 'utf8');
const after = updateGeneratedSections(before);
if (after !== before) writeFileSync(file, after);
console.log(`${after === before ? 'unchanged' : 'updated'}: docs/PROTOCOL.md`);
