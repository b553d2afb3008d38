import { WS_PATH } from '@atp/ws-protocol';
import { ATPWebSocketError } from './errors.js';
import { FULL } from './features.js';

/**
 * The endpoint URL: the option as given (a path is resolved against `location`),
 * else `ws(s)://<location.host>/api/ws/updates`.
 *
 * @example
 * resolveUrl(undefined, { protocol: 'https:', host: 'atp.example.com', href: 'https://atp.example.com/' });
 * // 'wss://atp.example.com/api/ws/updates'
 */
export function resolveUrl(
  url: string | undefined,
  location: { protocol: string; host: string; href: string } | undefined = (
    globalThis as { location?: { protocol: string; host: string; href: string } }
  ).location,
): string {
  if (url !== undefined && /^wss?:\/\//i.test(url)) return url;
  if (!location) {
    throw new ATPWebSocketError('invalid_url', FULL ? 'no url option and no location' : '');
  }
  const resolved = new URL(url ?? WS_PATH, location.href);
  resolved.protocol = resolved.protocol === 'https:' || resolved.protocol === 'wss:' ? 'wss:' : 'ws:';
  return resolved.href;
}

/** The URL of one connect: the extra `query`, then `client_id` and `token`, set as query parameters. */
export function connectUrl(
  base: string,
  clientId: string | undefined,
  token: string | undefined,
  query: Record<string, string> = {},
): string {
  const url = new URL(base);
  if (FULL) for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  if (clientId !== undefined) url.searchParams.set('client_id', clientId);
  if (FULL && token) url.searchParams.set('token', token);
  return url.href;
}

type Listenable = {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
};

/**
 * Calls `wake` when the browser goes online or offline, or the page becomes visible;
 * returns a function that stops watching. Does nothing outside browsers.
 */
export function watchEnvironment(wake: () => void): () => void {
  const target = globalThis as Partial<Listenable>;
  const doc = (globalThis as { document?: Listenable & { visibilityState?: string } }).document;
  if (typeof target.addEventListener !== 'function') return () => {};
  const listener = (): void => {
    if (doc?.visibilityState !== 'hidden') wake();
  };
  target.addEventListener('online', listener);
  target.addEventListener('offline', listener);
  doc?.addEventListener('visibilitychange', listener);
  return () => {
    target.removeEventListener?.('online', listener);
    target.removeEventListener?.('offline', listener);
    doc?.removeEventListener('visibilitychange', listener);
  };
}
