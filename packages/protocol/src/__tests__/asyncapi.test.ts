import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
// buildAsyncApiDocument is internal (the package ships its output as `@atp/ws-protocol/asyncapi.json`).
import { buildAsyncApiDocument } from '../asyncapi.js';
import {
  CLIENT_MESSAGE_TYPES,
  DATA_MESSAGE_TYPES,
  DeliveredDataMessageSchema,
  PROTOCOL_VERSION,
  ServerControlMessageSchema,
  WS_PATH,
} from '../index.js';

const file = fileURLToPath(new URL('../../schema/atp-ws-protocol.asyncapi.json', import.meta.url));
const parserScript = fileURLToPath(new URL('../../scripts/parse-asyncapi.mjs', import.meta.url));
const committed = readFileSync(file, 'utf8');
const CONTROL_TYPES = ServerControlMessageSchema.options.map((option) => option.shape.type.value);

interface ParseSummary {
  errors: string[];
  version?: string;
  infoVersion?: string;
  channels?: { id: string; address: string | null }[];
  operations?: { id: string; action: string; messages: string[] }[];
  payloads: Record<string, { required?: string[]; properties?: Record<string, unknown> } | undefined>;
}

/** Parses a document with the official AsyncAPI parser, in a Node process of its own. */
async function parse(text: string): Promise<ParseSummary> {
  const child = promisify(execFile)(process.execPath, [parserScript], { maxBuffer: 16 * 1024 * 1024 });
  child.child.stdin?.end(text);
  const { stdout } = await child;
  return JSON.parse(stdout) as ParseSummary;
}

let committedSummary: Promise<ParseSummary> | undefined;
/** The committed document parsed once for the tests that only read it. */
const parsedCommitted = () => {
  committedSummary ??= parse(committed);
  return committedSummary;
};

// Each parse is a Node process of its own that loads the parser: seconds on a busy machine.
describe('schema/atp-ws-protocol.asyncapi.json', { timeout: 30_000 }, () => {
  it('is what buildAsyncApiDocument() generates from the zod schemas', () => {
    expect(
      JSON.parse(committed),
      'the AsyncAPI document is stale: run `pnpm --filter @atp/ws-protocol generate` and commit the result',
    ).toEqual(JSON.parse(JSON.stringify(buildAsyncApiDocument())));
  });

  it('is a valid AsyncAPI 3 document for the official parser (@asyncapi/parser), without errors', async () => {
    const summary = await parsedCommitted();
    expect(summary.errors).toEqual([]);
    expect(summary.version).toBe('3.0.0');
    expect(summary.infoVersion).toBe(String(PROTOCOL_VERSION));
  });

  it('describes the WebSocket endpoint: a send operation per client message, receive per server message', async () => {
    const summary = await parsedCommitted();
    expect(summary.channels).toEqual([{ id: 'updates', address: WS_PATH }]);
    const names = (action: string) =>
      (summary.operations ?? []).filter((op) => op.action === action).flatMap((op) => op.messages);
    expect(names('send').sort()).toEqual([...CLIENT_MESSAGE_TYPES].sort());
    expect(names('receive').sort()).toEqual([...CONTROL_TYPES, ...DATA_MESSAGE_TYPES].sort());
  });

  it('gives a delivered data message the payload schema of the zod schema, delivery fields included', async () => {
    const summary = await parsedCommitted();
    const payload = summary.payloads.test_progress;
    expect(payload?.required).toEqual(
      expect.arrayContaining(['type', 'payload', 'sequence', 'epoch', 'offset']),
    );
    expect(Object.keys(payload?.properties ?? {}).sort()).toEqual(
      Object.keys(DeliveredDataMessageSchema.options[0].shape).sort(),
    );
  });

  it('is refused by the parser when a message points at a schema that does not exist', async () => {
    const broken = buildAsyncApiDocument() as {
      components: { messages: Record<string, { payload?: unknown }> };
    };
    const subscribe = broken.components.messages.subscribe;
    if (subscribe) subscribe.payload = { $ref: '#/components/schemas/nope' };
    const summary = await parse(JSON.stringify(broken));
    expect(summary.errors.length).toBeGreaterThan(0);
  });
});
