import { z } from 'zod';
import {
  ConnectedMessageSchema,
  DeliveredDataMessageSchema,
  ErrorMessageSchema,
  GetResourceMessageSchema,
  PingMessageSchema,
  PongMessageSchema,
  PublishRequestSchema,
  ResourceMessageSchema,
  ResourceSnapshotSchema,
  ResumedMessageSchema,
  ResumeMessageSchema,
  SubscribedMessageSchema,
  SubscribeMessageSchema,
  UnsubscribedMessageSchema,
  UnsubscribeMessageSchema,
} from './messages.js';
import { PROTOCOL_VERSION } from './version.js';

const definitions = {
  // client → server
  subscribe: SubscribeMessageSchema,
  unsubscribe: UnsubscribeMessageSchema,
  ping: PingMessageSchema,
  resume: ResumeMessageSchema,
  get_resource: GetResourceMessageSchema,
  // server → client
  connected: ConnectedMessageSchema,
  subscribed: SubscribedMessageSchema,
  unsubscribed: UnsubscribedMessageSchema,
  pong: PongMessageSchema,
  resumed: ResumedMessageSchema,
  error: ErrorMessageSchema,
  resource: ResourceMessageSchema,
  data_message: DeliveredDataMessageSchema,
  // HTTP
  publish_request: PublishRequestSchema,
  resource_snapshot: ResourceSnapshotSchema,
} as const;

/**
 * JSON Schema (draft 2020-12) of every message of the protocol, generated from
 * the zod schemas. Cross-field rules (e.g. `completed_tests <= total_tests`)
 * are not expressible there and are only checked by the server.
 */
export function buildJsonSchema(): Record<string, unknown> {
  const defs: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(definitions)) {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' });
    defs[key] = rest;
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `https://atp.dev/schemas/ws-protocol/v${PROTOCOL_VERSION}.json`,
    title: `ATP real-time updates protocol v${PROTOCOL_VERSION}`,
    description: 'Every message of the ATP WebSocket protocol. Generated from @atp/ws-protocol; do not edit.',
    $defs: defs,
  };
}
