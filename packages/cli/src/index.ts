export { formatMessage, type Paint, paintFor } from './format.js';
export type { Io } from './io.js';
export { main, TOKEN_ENV, USAGE } from './main.js';
export { PUBLISH_TOKEN_ENV, type PublishOptions, parseMessages, publish } from './publish.js';
export { parseFilter, parseFrom, type TailOptions, tail } from './tail.js';
export { publishUrl, UsageError, webSocketUrl } from './urls.js';
