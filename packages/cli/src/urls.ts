import { WS_PATH } from '@atp/ws-protocol';

/** Path of the REST publish endpoint. */
export const PUBLISH_PATH = '/api/ws/publish';

function parse(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new UsageError(`not a URL: ${url} (e.g. http://localhost:8000 or ws://localhost:8000${WS_PATH})`);
  }
}

/**
 * The WebSocket endpoint for a URL given on the command line: `ws(s)://…` is taken as is (the
 * endpoint's path added when it has none); `http(s)://host` becomes `ws(s)://host/api/ws/updates`.
 */
export function webSocketUrl(url: string): string {
  const parsed = parse(url);
  const protocol = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' }[parsed.protocol];
  if (!protocol)
    throw new UsageError(`unsupported URL scheme ${parsed.protocol} (use http, https, ws or wss)`);
  parsed.protocol = protocol;
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = WS_PATH;
  return parsed.toString();
}

/** A URL as it may be printed: its user name and password (if any) replaced by `***`. */
export function printableUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.username) parsed.username = '***';
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/** The publish endpoint of the server a URL names (any path of it is replaced). */
export function publishUrl(url: string): string {
  const parsed = parse(url);
  const protocol = { 'http:': 'http:', 'https:': 'https:', 'ws:': 'http:', 'wss:': 'https:' }[
    parsed.protocol
  ];
  if (!protocol)
    throw new UsageError(`unsupported URL scheme ${parsed.protocol} (use http, https, ws or wss)`);
  parsed.protocol = protocol;
  parsed.pathname = PUBLISH_PATH;
  parsed.search = '';
  return parsed.toString();
}

/** A mistake on the command line: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
