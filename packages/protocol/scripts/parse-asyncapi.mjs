// Parses an AsyncAPI document (file path as argument, or stdin) with the
// official parser, @asyncapi/parser, and prints what the tests check as JSON.
// Run as its own Node process: the parser's dependencies do not load under
// vitest's module runner (nimma's ESM build lacks a Babel helper it imports).
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const text = readFileSync(process.argv[2] ?? 0, 'utf8');
const { document, diagnostics } = await new Parser().parse(text);
const summary = {
  errors: diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('.')}: ${d.message}`),
  version: document?.version(),
  infoVersion: document?.info().version(),
  channels: document
    ?.channels()
    .all()
    .map((c) => ({ id: c.id(), address: c.address() })),
  operations: document
    ?.operations()
    .all()
    .map((op) => ({
      id: op.id(),
      action: op.action(),
      messages: op
        .messages()
        .all()
        .map((m) => m.name()),
    })),
  payloads: Object.fromEntries(
    document
      ?.components()
      .messages()
      .all()
      .map((m) => [m.id(), m.payload()?.json()]) ?? [],
  ),
};
process.stdout.write(JSON.stringify(summary));
