import type { z } from 'zod';
import { ErrorCode } from './codes.js';
import { validateFilter } from './filters.js';
import {
  CLIENT_MESSAGE_TYPES,
  type ClientMessage,
  ClientMessageSchema,
  DATA_MESSAGE_TYPES,
  type DataMessage,
  DataMessageSchema,
  type MessageId,
  MessageIdSchema,
} from './messages.js';
import { ALL_EVENTS_TOPIC, describeTopic, EVENT_TOPIC_PREFIX, TOPICS } from './topics.js';

/** The topics an unknown-topic error lists: the fixed ones, with the open-ended event topics after `events:*`. */
const TOPIC_LIST = Object.keys(TOPICS)
  .flatMap((topic) => (topic === ALL_EVENTS_TOPIC ? [topic, `${EVENT_TOPIC_PREFIX}<event_type>`] : [topic]))
  .join(', ');

/** One schema issue, in a form that serialises to JSON. */
export interface ProtocolIssue {
  path: string;
  message: string;
}

/** What went wrong with a message: an error code, a message a person can act on, and detail. */
export interface ProtocolErrorInfo {
  code: ErrorCode;
  message: string;
  /** The `id` of the offending message, when it had a usable one. */
  id?: MessageId;
  issues?: ProtocolIssue[];
}

/** Result of a parse: the typed message, or the error to answer with. */
/** A subscription of a `resume` left out for being invalid: the rest of the resume goes on without it. */
export interface RefusedSubscription {
  topic: string;
  filter?: unknown;
  error: ProtocolErrorInfo;
}

export type ParseResult<T> =
  | {
      ok: true;
      message: T;
      /** Subscriptions of a `resume` that were invalid (unknown topic, bad filter), taken out of `message`. */
      refused?: RefusedSubscription[];
    }
  | { ok: false; error: ProtocolErrorInfo };

/** A protocol error thrown by the assert helpers (e.g. an invalid in-process publish). */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ErrorCode;
  readonly issues: ProtocolIssue[];

  constructor(info: ProtocolErrorInfo, options?: { cause?: unknown }) {
    super(info.message, options);
    this.code = info.code;
    this.issues = info.issues ?? [];
  }
}

/** Zod issues as `{ path, message }` pairs (`path` dotted, e.g. `payload.progress_percent`). */
export function formatIssues(error: z.ZodError, prefix = ''): ProtocolIssue[] {
  return error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join('.') || '(root)',
    message: issue.message,
  }));
}

function describeIssues(issues: ProtocolIssue[]): string {
  const shown = issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`);
  if (issues.length > 5) shown.push(`and ${issues.length - 5} more`);
  return shown.join('; ');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type Failure = { ok: false; error: ProtocolErrorInfo };

function failure(code: ErrorCode, message: string, id?: MessageId, issues?: ProtocolIssue[]): Failure {
  const error: ProtocolErrorInfo = { code, message };
  if (id !== undefined) error.id = id;
  if (issues) error.issues = issues;
  return { ok: false, error };
}

function checkTopicAndFilter(
  topic: string,
  filter: unknown,
  id: MessageId | undefined,
): Failure | { ok: true; filter: Record<string, unknown> } {
  if (!describeTopic(topic)) {
    return failure(ErrorCode.UnknownTopic, `unknown topic '${topic}'; topics: ${TOPIC_LIST}`, id);
  }
  const checked = validateFilter(topic, filter);
  if (!checked.ok) return failure(ErrorCode.InvalidFilter, checked.message, id);
  return { ok: true, filter: checked.filter as Record<string, unknown> };
}

/**
 * Parses one inbound frame from a client into a typed message, or into the
 * error to answer with (`invalid_json`, `invalid_message`, `unknown_type`,
 * `unknown_topic`, `invalid_filter`). Filters come back normalised.
 *
 * @example
 * const result = parseClientMessage(frame);
 * if (!result.ok) send({ type: 'error', id: result.error.id, payload: result.error });
 */
export function parseClientMessage(text: string): ParseResult<ClientMessage> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return failure(ErrorCode.InvalidJson, `frame is not valid JSON: ${(cause as Error).message}`);
  }
  if (!isRecord(value)) {
    return failure(
      ErrorCode.InvalidMessage,
      'a message must be a JSON object { "type": string, "payload": object }',
    );
  }
  const idResult = MessageIdSchema.safeParse(value.id);
  const id = idResult.success ? idResult.data : undefined;
  if (typeof value.type !== 'string') {
    return failure(ErrorCode.InvalidMessage, 'message has no string "type"', id);
  }
  if (!(CLIENT_MESSAGE_TYPES as readonly string[]).includes(value.type)) {
    return failure(
      ErrorCode.UnknownType,
      `unknown message type '${value.type.slice(0, 64)}'; a client may send: ${CLIENT_MESSAGE_TYPES.join(', ')}`,
      id,
    );
  }
  const parsed = ClientMessageSchema.safeParse(value);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error);
    return failure(
      ErrorCode.InvalidMessage,
      `invalid '${value.type}' message: ${describeIssues(issues)}`,
      id,
      issues,
    );
  }
  const message = parsed.data;
  // Filters are checked on the frame as received, not on zod's copy: zod drops a
  // `__proto__` key from records, which would silently widen the filter to "everything".
  const raw = value.payload as { filter?: unknown; subscriptions?: { filter?: unknown }[] };
  switch (message.type) {
    case 'subscribe':
    case 'unsubscribe': {
      const checked = checkTopicAndFilter(message.payload.topic, raw.filter, id);
      if (!checked.ok) return checked;
      if (message.payload.filter !== undefined || message.type === 'subscribe') {
        message.payload.filter = checked.filter;
      }
      break;
    }
    case 'resume': {
      // One invalid subscription does not spoil the others: it is refused on its own.
      const kept: typeof message.payload.subscriptions = [];
      const refused: RefusedSubscription[] = [];
      for (const [index, subscription] of message.payload.subscriptions.entries()) {
        const rawFilter = raw.subscriptions?.[index]?.filter;
        const checked = checkTopicAndFilter(subscription.topic, rawFilter, id);
        if (!checked.ok) {
          refused.push({
            topic: subscription.topic,
            ...(rawFilter === undefined ? {} : { filter: rawFilter }),
            error: checked.error,
          });
          continue;
        }
        subscription.filter = checked.filter;
        kept.push(subscription);
      }
      message.payload.subscriptions = kept;
      if (refused.length > 0) return { ok: true, message, refused };
      break;
    }
    case 'ping':
    case 'get_resource':
      break;
  }
  return { ok: true, message };
}

/**
 * Validates a data message `{ type, payload }` as a publisher sends it.
 * Unknown fields are refused, so a typo is an error rather than silently dropped.
 */
export function parseDataMessage(value: unknown): ParseResult<DataMessage> {
  if (!isRecord(value)) {
    return failure(ErrorCode.InvalidMessage, 'a data message must be an object { type, payload }');
  }
  if (typeof value.type !== 'string' || !(DATA_MESSAGE_TYPES as readonly string[]).includes(value.type)) {
    return failure(
      ErrorCode.UnknownType,
      `unknown data message type ${JSON.stringify(value.type)}; expected one of ${DATA_MESSAGE_TYPES.join(', ')}`,
    );
  }
  const parsed = DataMessageSchema.safeParse(value);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error);
    return failure(
      ErrorCode.InvalidMessage,
      `invalid '${value.type}' message: ${describeIssues(issues)}`,
      undefined,
      issues,
    );
  }
  return { ok: true, message: parsed.data };
}

/**
 * Like {@link parseDataMessage} but throws a {@link ProtocolError}; returns the
 * validated (and copied) message.
 */
export function assertDataMessage(value: unknown): DataMessage {
  const result = parseDataMessage(value);
  if (!result.ok) throw new ProtocolError(result.error);
  return result.message;
}
