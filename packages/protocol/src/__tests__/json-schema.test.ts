import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// buildJsonSchema is internal (the package ships its output as `@atp/ws-protocol/schema.json`).
import { buildJsonSchema } from '../json-schema.js';

const schemaFile = new URL('../../schema/atp-ws-protocol.schema.json', import.meta.url);

describe('schema/atp-ws-protocol.schema.json', () => {
  it('is what buildJsonSchema() generates from the zod schemas', () => {
    const committed: unknown = JSON.parse(readFileSync(schemaFile, 'utf8'));
    const generated: unknown = JSON.parse(JSON.stringify(buildJsonSchema()));
    expect(
      committed,
      'schema/atp-ws-protocol.schema.json is stale: run `pnpm --filter @atp/ws-protocol generate` and commit the result',
    ).toEqual(generated);
  });

  it('defines every client and server message', () => {
    const { $defs } = buildJsonSchema() as { $defs: Record<string, unknown> };
    expect(Object.keys($defs).sort()).toEqual(
      [
        'connected',
        'data_message',
        'error',
        'get_resource',
        'ping',
        'pong',
        'publish_request',
        'resource',
        'resource_snapshot',
        'resume',
        'resumed',
        'subscribe',
        'subscribed',
        'unsubscribe',
        'unsubscribed',
      ].sort(),
    );
  });
});
