/**
 * WebSocket close codes used by the ATP real-time protocol.
 *
 * Codes below 4000 are the standard ones of RFC 6455; 4000-4999 are this
 * protocol's own (`ws` refuses application codes outside that range).
 */
export const CloseCode = {
  /** The client or the server ended the connection on purpose. */
  Normal: 1000,
  /** The server is shutting down; reconnect (to another process behind the load balancer). */
  GoingAway: 1001,
  /** A text frame was not valid UTF-8 (closed by the WebSocket layer, before the server reads it). */
  InvalidPayload: 1007,
  /** The client kept breaking the limits (rate, malformed frames) after being warned. */
  PolicyViolation: 1008,
  /** An inbound message (all its fragments together) was larger than the server's `maxPayload`. */
  MessageTooBig: 1009,
  /** The server failed unexpectedly; reconnect with backoff. */
  InternalError: 1011,
  /** The client read too slowly and its outbound buffer overflowed; reconnect and resume. */
  TryAgainLater: 1013,
  /** Another connection took over this `client_id`; do not reconnect automatically. */
  SessionReplaced: 4000,
  /** The credentials were refused or expired; do not reconnect without new ones. */
  Unauthorized: 4001,
  /** The principal may not use this session; do not reconnect automatically. */
  Forbidden: 4003,
} as const;

/** One of the {@link CloseCode} values. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** One-line meaning of each close code, for logs and documentation. */
export const closeCodeDescriptions: Record<CloseCode, string> = {
  [CloseCode.Normal]: 'normal closure, on purpose',
  [CloseCode.GoingAway]: 'server shutting down; reconnect',
  [CloseCode.InvalidPayload]: 'a text frame was not valid UTF-8',
  [CloseCode.PolicyViolation]: 'limits broken repeatedly (rate, malformed frames)',
  [CloseCode.MessageTooBig]: 'inbound message (its fragments together) larger than the size limit',
  [CloseCode.InternalError]: 'unexpected server failure; reconnect with backoff',
  [CloseCode.TryAgainLater]: 'slow consumer: outbound buffer overflowed; reconnect and resume',
  [CloseCode.SessionReplaced]: 'another connection took over this client_id; not retried',
  [CloseCode.Unauthorized]: 'credentials refused or expired; not retried',
  [CloseCode.Forbidden]: 'principal may not use this session; not retried',
};

const fatalCloseCodes: ReadonlySet<number> = new Set([
  CloseCode.SessionReplaced,
  CloseCode.Unauthorized,
  CloseCode.Forbidden,
]);

/**
 * Whether a client must not reconnect automatically after this close code.
 *
 * @example
 * if (!isFatalCloseCode(event.code)) scheduleReconnect();
 */
export function isFatalCloseCode(code: number): boolean {
  return fatalCloseCodes.has(code);
}

/** Error codes carried by `error { code, message }` messages. */
export const ErrorCode = {
  /** The frame was not valid JSON. */
  InvalidJson: 'invalid_json',
  /** The frame was JSON but not a valid message (shape, field types, binary frame). */
  InvalidMessage: 'invalid_message',
  /** The message `type` is not one a client may send. */
  UnknownType: 'unknown_type',
  /** The topic does not exist. */
  UnknownTopic: 'unknown_topic',
  /** A filter key is not allowed on the topic, or a value has the wrong type. */
  InvalidFilter: 'invalid_filter',
  /** The authorization hook refused the subscription or the session. */
  Forbidden: 'forbidden',
  /** The connection sends messages faster than its rate limit. */
  RateLimited: 'rate_limited',
  /** The connection holds the maximum number of subscriptions. */
  TooManySubscriptions: 'too_many_subscriptions',
  /** The server failed while handling the message; the connection stays usable. */
  InternalError: 'internal_error',
  /** No snapshot provider is registered for this resource kind. */
  UnknownResource: 'unknown_resource',
  /** The resource kind exists, but the provider has no resource with this id. */
  ResourceNotFound: 'resource_not_found',
  /** The resource's snapshot provider failed; asking again later may succeed. */
  ResourceUnavailable: 'resource_unavailable',
} as const;

/** One of the {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** One-line meaning of each error code, for logs and documentation. */
export const errorCodeDescriptions: Record<ErrorCode, string> = {
  [ErrorCode.InvalidJson]: 'the frame was not valid JSON',
  [ErrorCode.InvalidMessage]: 'the message shape or a field type is wrong, or the frame was binary',
  [ErrorCode.UnknownType]: 'the message type is not one a client may send',
  [ErrorCode.UnknownTopic]: 'the topic does not exist',
  [ErrorCode.InvalidFilter]: 'a filter key is not allowed on the topic, or a value has the wrong type',
  [ErrorCode.Forbidden]: 'the authorization hook refused the subscription or session',
  [ErrorCode.RateLimited]: 'messages sent faster than the rate limit; this one was dropped',
  [ErrorCode.TooManySubscriptions]: 'the connection already holds the maximum number of subscriptions',
  [ErrorCode.InternalError]: 'the server failed handling this message; the connection stays usable',
  [ErrorCode.UnknownResource]: 'no snapshot provider is registered for this resource kind',
  [ErrorCode.ResourceNotFound]: 'the resource kind exists but has no resource with this id',
  [ErrorCode.ResourceUnavailable]:
    'no valid answer now (the provider failed, timed out or answered what cannot be sent); asking again later may succeed',
};

/** Why a resume or a replay could not deliver every missed message. */
export const GapReason = {
  /** The stream's history was lost (server restart, Redis flush): the epoch changed. */
  EpochChanged: 'epoch_changed',
  /** The position is older than the oldest message still kept. */
  HistoryTruncated: 'history_truncated',
  /** The position is ahead of the stream; it cannot come from this stream. */
  UnknownPosition: 'unknown_position',
  /** The broker could not be read (e.g. Redis unavailable). */
  BrokerUnavailable: 'broker_unavailable',
  /** The client saw a hole in `sequence` itself. */
  SequenceHole: 'sequence_hole',
} as const;

/** One of the {@link GapReason} values. */
export type GapReason = (typeof GapReason)[keyof typeof GapReason];
