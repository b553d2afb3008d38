// Internal: builds the AsyncAPI 3 document shipped as
// `@atp/ws-protocol/asyncapi.json` (written by `pnpm --filter @atp/ws-protocol
// generate`, served by the hub at `GET /api/ws/asyncapi.json`). Generated from
// the same zod schemas as the JSON Schema, so it cannot drift from the code.
import { z } from 'zod';
import {
  ClientMessageSchema,
  DeliveredDataMessageSchema,
  PublishRequestSchema,
  ResourceSnapshotSchema,
  ServerControlMessageSchema,
} from './messages.js';
import { CLIENT_ID_PATTERN, PROTOCOL_VERSION, WS_PATH } from './version.js';

/** Path the hub serves this document at. */
export const ASYNCAPI_PATH = '/api/ws/asyncapi.json';

/** One line on each message; a message without one here is still listed, with a generic line. */
const summaries: Record<string, string> = {
  subscribe: 'Subscribe to a topic, optionally filtered and from a position.',
  unsubscribe: 'Remove subscriptions to a topic.',
  ping: 'Application-level heartbeat; answered with pong.',
  resume: 'After a reconnect: restore subscriptions from a stream position.',
  get_resource: 'Ask for a snapshot of a live resource.',
  connected: 'First message of every connection.',
  subscribed: 'Answer to subscribe.',
  unsubscribed: 'Answer to unsubscribe.',
  pong: 'Answer to ping.',
  resumed: 'Answer to resume: recovered, or the gap and its reason.',
  error: 'A request was refused; the connection stays usable.',
  resource: 'Answer to get_resource: a snapshot of the resource.',
};

/** The members of a discriminated union of messages, by their `type`. */
function byType(options: readonly z.ZodObject[], what: string): Record<string, z.ZodType> {
  const out: Record<string, z.ZodType> = {};
  for (const option of options) {
    const type = (option.shape.type as z.ZodLiteral<string>).value;
    out[type] = option;
    summaries[type] ??= `${what} \`${type}\`.`;
  }
  return out;
}

/** `test_progress` → `TestProgress`. */
function pascalCase(name: string): string {
  return name.replace(/(^|_)([a-z])/g, (_match, _sep: string, letter: string) => letter.toUpperCase());
}

/** A zod schema as an AsyncAPI Schema object (a superset of JSON Schema draft 07). */
function schemaOf(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { target: 'draft-7', io: 'input' });
  return rest;
}

/**
 * AsyncAPI 3.0 document of the WebSocket protocol: one channel (the
 * WebSocket endpoint), a `send` operation per client message and a `receive`
 * operation per server message, with every payload schema generated from zod.
 * Cross-field rules (e.g. `completed_tests <= total_tests`) are not
 * expressible there and are only checked by the server.
 */
export function buildAsyncApiDocument(): Record<string, unknown> {
  const clientMessages = byType(ClientMessageSchema.options, 'Client message');
  const controlMessages = byType(ServerControlMessageSchema.options, 'Server message');
  const data = byType(DeliveredDataMessageSchema.options, 'Data message, with sequence, epoch and offset:');
  const all = { ...clientMessages, ...controlMessages, ...data };
  const schemas: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const channelMessages: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(all)) {
    // A title names the model code generators make of it (else `AnonymousSchema<n>`).
    schemas[name] = { title: pascalCase(name), ...schemaOf(schema) };
    messages[name] = {
      name,
      title: name,
      summary: summaries[name],
      contentType: 'application/json',
      payload: { $ref: `#/components/schemas/${name}` },
    };
    channelMessages[name] = { $ref: `#/components/messages/${name}` };
  }
  // Bodies of the HTTP endpoints, for code generators: not messages of the channel.
  schemas.publish_request = { title: 'PublishRequest', ...schemaOf(PublishRequestSchema) };
  schemas.resource_snapshot = { title: 'ResourceSnapshot', ...schemaOf(ResourceSnapshotSchema) };

  const operation = (action: 'send' | 'receive', names: string[], summary: string) => ({
    action,
    summary,
    channel: { $ref: '#/channels/updates' },
    messages: names.map((name) => ({ $ref: `#/channels/updates/messages/${name}` })),
  });

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'ATP real-time updates',
      version: String(PROTOCOL_VERSION),
      description:
        'WebSocket protocol of the ATP Dashboard real-time updates, version ' +
        `${PROTOCOL_VERSION}. Every frame is one UTF-8 JSON text frame. Generated from @atp/ws-protocol; ` +
        'do not edit. docs/PROTOCOL.md describes the behaviour (resume, gaps, limits, HTTP endpoints) ' +
        'that a schema cannot express. Data messages are published over HTTP: `POST /api/ws/publish` ' +
        'with a body matching components.schemas.publish_request.',
      license: { name: 'MIT' },
    },
    defaultContentType: 'application/json',
    servers: {
      hub: {
        host: '{host}',
        protocol: 'ws',
        description: 'The hub; use wss behind TLS.',
        variables: { host: { default: 'localhost:8000', description: 'host:port of the ATP server' } },
      },
    },
    channels: {
      updates: {
        address: WS_PATH,
        title: 'Real-time updates',
        description:
          'The WebSocket endpoint. The server sends `connected` first; the client then subscribes, or resumes after a reconnect.',
        servers: [{ $ref: '#/servers/hub' }],
        messages: channelMessages,
        bindings: {
          ws: {
            bindingVersion: '0.1.0',
            method: 'GET',
            query: {
              type: 'object',
              properties: {
                client_id: {
                  type: 'string',
                  pattern: CLIENT_ID_PATTERN.source,
                  description: 'Names the session; reconnect with the same one to resume it.',
                },
                token: {
                  type: 'string',
                  description: 'Credentials when authentication is on (or `Authorization: Bearer`).',
                },
              },
            },
          },
        },
      },
    },
    // One operation per message, so that code generators make one model per message.
    operations: Object.fromEntries([
      ...Object.keys(clientMessages).map((name) => [
        `send_${name}`,
        operation('send', [name], `The client sends \`${name}\`.`),
      ]),
      ...Object.keys({ ...controlMessages, ...data }).map((name) => [
        `receive_${name}`,
        operation('receive', [name], `The server sends \`${name}\`.`),
      ]),
    ]),
    components: { schemas, messages },
  };
}
