import { z } from 'zod';
import { ErrorCode, GapReason } from './codes.js';
import {
  CLIENT_ID_PATTERN,
  MAX_RESOURCE_ID_LENGTH,
  MAX_RESUME_SUBSCRIPTIONS,
  RESOURCE_KIND_PATTERN,
} from './version.js';

// ── building blocks ────────────────────────────────────────────────────────

const id = z.int().nonnegative();
const nonEmpty = z.string().min(1);
const percent = z.number().min(0).max(100);
const rate = z.number().min(0).max(1);
const seconds = z.number().nonnegative();
/**
 * Counters (offsets, sequences): far below `Number.MAX_SAFE_INTEGER`, so that
 * adding to one never loses precision (at 2^50, a million messages a second
 * last thirty-five years).
 */
export const MAX_COUNT = 2 ** 50;
const count = z.int().nonnegative().max(MAX_COUNT);
/** How deep free-form JSON (an event's `payload`, a delta's `changes`) may nest. */
export const MAX_JSON_DEPTH = 32;

/** Free-form JSON object nested at most {@link MAX_JSON_DEPTH} levels (checked without recursion). */
const freeForm = z
  .record(z.string(), z.unknown())
  .refine((value) => jsonDepth(value, MAX_JSON_DEPTH) <= MAX_JSON_DEPTH, {
    message: `nested deeper than ${MAX_JSON_DEPTH} levels`,
  });

/** Nesting depth of a JSON value (1 for an object of scalars), counted up to `limit + 1`. */
function jsonDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (current === null || typeof current !== 'object') continue;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) return deepest;
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  return deepest;
}
const timestamp = z.iso.datetime({ offset: true });
const name = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." or "-", 1 to 64 characters');

/** Status of one test execution. */
export const TestStatusSchema = z.enum([
  'pending',
  'queued',
  'running',
  'passed',
  'failed',
  'completed',
  'error',
  'timeout',
  'cancelled',
  'skipped',
]);
export type TestStatus = z.infer<typeof TestStatusSchema>;

/** Status of one suite execution. */
export const SuiteStatusSchema = z.enum([
  'pending',
  'queued',
  'running',
  'completed',
  'failed',
  'error',
  'cancelled',
]);
export type SuiteStatus = z.infer<typeof SuiteStatusSchema>;

/** Severity of a log line. */
export const LogLevelSchema = z.enum(['debug', 'info', 'warning', 'error', 'critical']);
export type LogLevel = z.infer<typeof LogLevelSchema>;

/** An ATP event type such as `tool_call` or `llm_request` (an open set). */
export const EventTypeSchema = name;

/** A position in the broker's stream: `epoch` names the stream's life, `offset` counts its messages. */
export const StreamPositionSchema = z.strictObject({
  epoch: z.string().min(1).max(64),
  offset: count,
});
export type StreamPosition = z.infer<typeof StreamPositionSchema>;

// ── data payloads (server → client) ────────────────────────────────────────

/** Payload of `test_progress`. */
export const TestProgressPayloadSchema = z
  .strictObject({
    suite_execution_id: id,
    test_execution_id: id,
    test_id: nonEmpty,
    test_name: z.string().optional(),
    status: TestStatusSchema,
    progress_percent: percent,
    current_run: count.optional(),
    total_runs: z.int().positive().optional(),
    message: z.string().optional(),
  })
  .refine((p) => p.current_run === undefined || p.total_runs === undefined || p.current_run <= p.total_runs, {
    message: 'current_run must not exceed total_runs',
    path: ['current_run'],
  });
export type TestProgressPayload = z.infer<typeof TestProgressPayloadSchema>;

/** Payload of `test_completed`. */
export const TestCompletedPayloadSchema = z.strictObject({
  suite_execution_id: id,
  test_execution_id: id,
  test_id: nonEmpty,
  test_name: z.string().optional(),
  success: z.boolean(),
  score: rate.nullable().optional(),
  duration_seconds: seconds.optional(),
  error: z.string().optional(),
});
export type TestCompletedPayload = z.infer<typeof TestCompletedPayloadSchema>;

/** Payload of `suite_progress`. */
export const SuiteProgressPayloadSchema = z
  .strictObject({
    suite_execution_id: id,
    suite_name: z.string().optional(),
    agent_name: z.string().optional(),
    status: SuiteStatusSchema,
    progress_percent: percent,
    completed_tests: count,
    total_tests: count,
    passed_tests: count.optional(),
    failed_tests: count.optional(),
  })
  .refine((p) => p.completed_tests <= p.total_tests, {
    message: 'completed_tests must not exceed total_tests',
    path: ['completed_tests'],
  })
  .refine((p) => (p.passed_tests ?? 0) + (p.failed_tests ?? 0) <= p.completed_tests, {
    message: 'passed_tests + failed_tests must not exceed completed_tests',
    path: ['passed_tests'],
  });
export type SuiteProgressPayload = z.infer<typeof SuiteProgressPayloadSchema>;

/** Payload of `suite_completed`. */
export const SuiteCompletedPayloadSchema = z
  .strictObject({
    suite_execution_id: id,
    suite_name: z.string().optional(),
    agent_name: z.string().optional(),
    status: SuiteStatusSchema.optional(),
    success_rate: rate,
    total_tests: count,
    passed_tests: count,
    failed_tests: count,
    duration_seconds: seconds.optional(),
  })
  .refine((p) => p.passed_tests + p.failed_tests <= p.total_tests, {
    message: 'passed_tests + failed_tests must not exceed total_tests',
    path: ['passed_tests'],
  });
export type SuiteCompletedPayload = z.infer<typeof SuiteCompletedPayloadSchema>;

/** Payload of `log_entry`. */
export const LogEntryPayloadSchema = z.strictObject({
  suite_execution_id: id.optional(),
  test_execution_id: id.optional(),
  level: LogLevelSchema,
  message: z.string(),
  timestamp,
  source: z.string().optional(),
});
export type LogEntryPayload = z.infer<typeof LogEntryPayloadSchema>;

/** Payload of `event`: one ATP event (tool call, LLM request, …). */
export const EventPayloadSchema = z.strictObject({
  suite_execution_id: id,
  test_execution_id: id.optional(),
  sequence: count.optional(),
  event_type: EventTypeSchema,
  timestamp,
  payload: freeForm,
  duration_ms: z.number().nonnegative().optional(),
});
export type EventPayload = z.infer<typeof EventPayloadSchema>;

/**
 * Payload of `delta_update`: changed fields of one resource. `sequence` is the
 * resource's version after the change; `base_sequence`, when present, the
 * version the change applies to (without it, `sequence - 1`).
 */
export const DeltaUpdatePayloadSchema = z
  .strictObject({
    resource_type: name,
    resource_id: z.union([id, nonEmpty]),
    sequence: count,
    base_sequence: count.optional(),
    changes: freeForm,
  })
  .refine((p) => p.base_sequence === undefined || p.base_sequence < p.sequence, {
    message: 'base_sequence must be below sequence',
    path: ['base_sequence'],
  });
export type DeltaUpdatePayload = z.infer<typeof DeltaUpdatePayloadSchema>;

// ── data messages ──────────────────────────────────────────────────────────

function dataMessage<T extends string, P extends z.ZodType>(type: T, payload: P) {
  return z.strictObject({ type: z.literal(type), payload });
}

export const TestProgressMessageSchema = dataMessage('test_progress', TestProgressPayloadSchema);
export const TestCompletedMessageSchema = dataMessage('test_completed', TestCompletedPayloadSchema);
export const SuiteProgressMessageSchema = dataMessage('suite_progress', SuiteProgressPayloadSchema);
export const SuiteCompletedMessageSchema = dataMessage('suite_completed', SuiteCompletedPayloadSchema);
export const LogEntryMessageSchema = dataMessage('log_entry', LogEntryPayloadSchema);
export const EventMessageSchema = dataMessage('event', EventPayloadSchema);
export const DeltaUpdateMessageSchema = dataMessage('delta_update', DeltaUpdatePayloadSchema);

/**
 * A data message as a publisher sends it: `{ type, payload }`. The server adds
 * `sequence`, `epoch` and `offset` when it delivers it.
 */
export const DataMessageSchema = z.discriminatedUnion('type', [
  TestProgressMessageSchema,
  TestCompletedMessageSchema,
  SuiteProgressMessageSchema,
  SuiteCompletedMessageSchema,
  LogEntryMessageSchema,
  EventMessageSchema,
  DeltaUpdateMessageSchema,
]);
export type DataMessage = z.infer<typeof DataMessageSchema>;

/** The `type` of a data message. */
export type DataMessageType = DataMessage['type'];

/** The payload type of the data message of type `T`. */
export type DataPayload<T extends DataMessageType> = Extract<DataMessage, { type: T }>['payload'];

/** Every data message type, in the order docs/PROTOCOL.md lists them. */
export const DATA_MESSAGE_TYPES = [
  'test_progress',
  'test_completed',
  'suite_progress',
  'suite_completed',
  'log_entry',
  'event',
  'delta_update',
] as const satisfies readonly DataMessageType[];

/** Body of `POST /api/ws/publish`: one data message or a non-empty array of them. */
export const PublishRequestSchema = z.union([DataMessageSchema, z.array(DataMessageSchema).min(1)]);
export type PublishRequest = z.infer<typeof PublishRequestSchema>;

/** Fields the server adds to every delivered data message. */
export const DeliveryFieldsSchema = z.strictObject({
  /** Per connection: 1 for the first data message, +1 for each next one, continued across resumes. */
  sequence: z.int().positive(),
  /** Epoch of the stream the message belongs to. */
  epoch: z.string().min(1),
  /** Offset of the message in that stream. */
  offset: count,
});

/** A data message as a client receives it. */
export const DeliveredDataMessageSchema = z.discriminatedUnion('type', [
  TestProgressMessageSchema.extend(DeliveryFieldsSchema.shape),
  TestCompletedMessageSchema.extend(DeliveryFieldsSchema.shape),
  SuiteProgressMessageSchema.extend(DeliveryFieldsSchema.shape),
  SuiteCompletedMessageSchema.extend(DeliveryFieldsSchema.shape),
  LogEntryMessageSchema.extend(DeliveryFieldsSchema.shape),
  EventMessageSchema.extend(DeliveryFieldsSchema.shape),
  DeltaUpdateMessageSchema.extend(DeliveryFieldsSchema.shape),
]);
export type DeliveredDataMessage = z.infer<typeof DeliveredDataMessageSchema>;

// ── client → server ────────────────────────────────────────────────────────

/** Correlation id a client may put on any message; the reply carries it back. */
export const MessageIdSchema = z.union([z.string().max(128), z.number()]);
export type MessageId = z.infer<typeof MessageIdSchema>;

/** A filter as sent on the wire; its keys and values are checked per topic (see `validateFilter`). */
export const WireFilterSchema = z.record(z.string(), z.unknown());

/** Where a subscription's replay starts: the first kept message of the stream, or after a position. */
export const ReplayFromSchema = z.union([z.literal('start'), StreamPositionSchema]);
export type ReplayFrom = z.infer<typeof ReplayFromSchema>;

const subscriptionFields = {
  topic: z.string().min(1).max(128),
  filter: WireFilterSchema.optional(),
};

// client → server
export const SubscribeMessageSchema = z.strictObject({
  type: z.literal('subscribe'),
  id: MessageIdSchema.optional(),
  payload: z.strictObject({
    ...subscriptionFields,
    /** Replay the matching history from here before live messages. */
    from: ReplayFromSchema.optional(),
  }),
});
export type SubscribeMessage = z.infer<typeof SubscribeMessageSchema>;

// client → server
export const UnsubscribeMessageSchema = z.strictObject({
  type: z.literal('unsubscribe'),
  id: MessageIdSchema.optional(),
  payload: z.strictObject(subscriptionFields),
});
export type UnsubscribeMessage = z.infer<typeof UnsubscribeMessageSchema>;

// client → server
export const PingMessageSchema = z.strictObject({
  type: z.literal('ping'),
  id: MessageIdSchema.optional(),
  payload: z.strictObject({}).optional(),
});
export type PingMessage = z.infer<typeof PingMessageSchema>;

// client → server
export const ResumeMessageSchema = z.strictObject({
  type: z.literal('resume'),
  id: MessageIdSchema.optional(),
  payload: z.strictObject({
    /** Epoch of the last position the client saw. */
    epoch: z.string().min(1).max(64),
    /** Offset of the last position the client saw (data message, `subscribed`, `pong` or `connected`). */
    offset: count,
    /** The last `sequence` the client received (0 if none); numbering continues after it. */
    sequence: count,
    /** Every subscription to restore, all at once, so the replay interleaves them in publish order. */
    subscriptions: z.array(z.strictObject(subscriptionFields)).max(MAX_RESUME_SUBSCRIPTIONS),
  }),
});
export type ResumeMessage = z.infer<typeof ResumeMessageSchema>;

/** A resource kind, as the application registered it on the server (e.g. `suite_execution`). */
export const ResourceKindSchema = z
  .string()
  .regex(RESOURCE_KIND_PATTERN, 'letters, digits, "_", "." or "-", 1 to 64 characters');

/** A resource id: a string of 1 to 128 characters (numeric ids are sent as their decimal text). */
export const ResourceIdSchema = z.string().min(1).max(MAX_RESOURCE_ID_LENGTH);

// client → server
export const GetResourceMessageSchema = z.strictObject({
  type: z.literal('get_resource'),
  id: MessageIdSchema.optional(),
  payload: z.strictObject({
    kind: ResourceKindSchema,
    resource_id: ResourceIdSchema,
  }),
});
export type GetResourceMessage = z.infer<typeof GetResourceMessageSchema>;

/** Any message a client may send. */
export const ClientMessageSchema = z.discriminatedUnion('type', [
  SubscribeMessageSchema,
  UnsubscribeMessageSchema,
  PingMessageSchema,
  ResumeMessageSchema,
  GetResourceMessageSchema,
]);
export type ClientMessage = z.infer<typeof ClientMessageSchema>;

/** Every `type` a client may send. */
export const CLIENT_MESSAGE_TYPES = [
  'subscribe',
  'unsubscribe',
  'ping',
  'resume',
  'get_resource',
] as const satisfies readonly ClientMessage['type'][];

// ── server → client: control ───────────────────────────────────────────────

const position = StreamPositionSchema.shape;

// server → client
export const ConnectedMessageSchema = z.strictObject({
  type: z.literal('connected'),
  payload: z.strictObject({
    client_id: z.string().regex(CLIENT_ID_PATTERN),
    /** Protocol version the server speaks. */
    protocol: z.int().positive(),
    /** Server heartbeat interval and timeout, seconds. */
    ping_interval: z.number().positive(),
    ping_timeout: z.number().positive(),
    ...position,
  }),
});
export type ConnectedMessage = z.infer<typeof ConnectedMessageSchema>;

/** Result of replaying history for a subscription or a resume. */
export const ReplayResultSchema = z.strictObject({
  /** How many data messages follow as replay, before live ones. */
  replayed: count,
  /** False when some history was no longer there; `reason` says why. */
  complete: z.boolean(),
  reason: z.enum(Object.values(GapReason) as [GapReason, ...GapReason[]]).optional(),
});
export type ReplayResult = z.infer<typeof ReplayResultSchema>;

// server → client
export const SubscribedMessageSchema = z.strictObject({
  type: z.literal('subscribed'),
  id: MessageIdSchema.optional(),
  payload: z.strictObject({
    topic: z.string(),
    /** The filter as the server normalised it (`{}` when none). */
    filter: WireFilterSchema,
    /** Only when the subscription asked for `from`. */
    history: ReplayResultSchema.optional(),
    ...position,
  }),
});
export type SubscribedMessage = z.infer<typeof SubscribedMessageSchema>;

// server → client
export const UnsubscribedMessageSchema = z.strictObject({
  type: z.literal('unsubscribed'),
  id: MessageIdSchema.optional(),
  payload: z.strictObject({
    topic: z.string(),
    filter: WireFilterSchema.optional(),
    /** How many subscriptions were removed. */
    removed: count,
  }),
});
export type UnsubscribedMessage = z.infer<typeof UnsubscribedMessageSchema>;

// server → client
export const PongMessageSchema = z.strictObject({
  type: z.literal('pong'),
  id: MessageIdSchema.optional(),
  payload: z.strictObject({ ...position }),
});
export type PongMessage = z.infer<typeof PongMessageSchema>;

// server → client
export const ResumedMessageSchema = z.strictObject({
  type: z.literal('resumed'),
  id: MessageIdSchema.optional(),
  payload: z.strictObject({
    /** True when every missed message follows; false means a gap the client must refetch around. */
    recovered: z.boolean(),
    /** The next data message's sequence (last + 1 when recovered, last + 2 after a gap). */
    next_sequence: z.int().positive(),
    ...ReplayResultSchema.shape,
    ...position,
  }),
});
export type ResumedMessage = z.infer<typeof ResumedMessageSchema>;

// server → client
export const ErrorMessageSchema = z.strictObject({
  type: z.literal('error'),
  id: MessageIdSchema.optional(),
  payload: z.strictObject({
    code: z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    /** Schema issues or other machine-readable detail. */
    details: z.unknown().optional(),
  }),
});
export type ErrorMessage = z.infer<typeof ErrorMessageSchema>;

/**
 * A resource's state and the stream position it reflects: every data message
 * up to `epoch`/`offset` is in `data`, none after it is.
 */
export const ResourceSnapshotSchema = z.strictObject({
  kind: ResourceKindSchema,
  resource_id: ResourceIdSchema,
  /** The resource's state, as the application's provider returned it. */
  data: z.unknown(),
  /** The resource's own version (the `sequence` of its last `delta_update`), when the provider gives one. */
  version: count.optional(),
  ...position,
});
export type ResourceSnapshot = z.infer<typeof ResourceSnapshotSchema>;

// server → client
export const ResourceMessageSchema = z.strictObject({
  type: z.literal('resource'),
  id: MessageIdSchema.optional(),
  payload: ResourceSnapshotSchema,
});
export type ResourceMessage = z.infer<typeof ResourceMessageSchema>;

/** Any control message the server sends. */
export const ServerControlMessageSchema = z.discriminatedUnion('type', [
  ResourceMessageSchema,
  ConnectedMessageSchema,
  SubscribedMessageSchema,
  UnsubscribedMessageSchema,
  PongMessageSchema,
  ResumedMessageSchema,
  ErrorMessageSchema,
]);
export type ServerControlMessage = z.infer<typeof ServerControlMessageSchema>;

/** Any message the server sends. */
export type ServerMessage = ServerControlMessage | DeliveredDataMessage;
