/** Version of the wire protocol described by this package and `docs/PROTOCOL.md`. */
export const PROTOCOL_VERSION = 1;

/** Path of the WebSocket endpoint on the HTTP server. */
export const WS_PATH = '/api/ws/updates';

/** Allowed form of a `client_id` query parameter. */
export const CLIENT_ID_PATTERN: RegExp = /^[A-Za-z0-9_-]{1,64}$/;

/** Largest number of subscriptions one `resume` may carry. */
export const MAX_RESUME_SUBSCRIPTIONS = 1000;

/** Allowed form of a resource kind (`suite_execution`, …), as registered on the server. */
export const RESOURCE_KIND_PATTERN: RegExp = /^[A-Za-z0-9_.-]{1,64}$/;

/** Longest resource id, in characters (numeric ids are sent as their decimal text). */
export const MAX_RESOURCE_ID_LENGTH = 128;
