import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { TrustProxy } from './types.js';

/** Whether the hop at `address`, `hopIndex` steps from the hub (0 = the peer), is a trusted proxy. */
export type TrustFunction = (address: string, hopIndex: number) => boolean;

const trustNone: TrustFunction = () => false;
const trustAll: TrustFunction = () => true;

/**
 * Turns the `trustProxy` option into a trust function, as Express does with its `trust proxy`
 * setting (addresses and ranges are matched by `proxy-addr`). Nonsense throws a TypeError.
 * A user predicate that throws counts as "not trusted"; `onError` hears about it.
 */
export function compileTrustProxy(
  value: TrustProxy | undefined,
  onError: (error: unknown) => void = () => {},
): TrustFunction {
  if (value === undefined || value === false) return trustNone;
  if (value === true) return trustAll;
  if (typeof value === 'function') {
    return (address, hopIndex) => {
      try {
        return value(address, hopIndex) === true;
      } catch (error) {
        onError(error);
        return false;
      }
    };
  }
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) {
      throw new TypeError(`option trustProxy: a number of hops must be an integer >= 0, got ${value}`);
    }
    return (_address, hopIndex) => hopIndex < value;
  }
  let list: string[];
  if (typeof value === 'string') list = value.split(',').map((entry) => entry.trim());
  else if (Array.isArray(value) && value.every((entry) => typeof entry === 'string')) list = [...value];
  else {
    throw new TypeError(
      'option trustProxy must be a boolean, a number of hops, addresses/CIDR ranges (an array or a ' +
        `comma-separated string) or a function, got ${describe(value)}`,
    );
  }
  try {
    return proxyAddr.compile(list);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TypeError(`option trustProxy: ${reason} (in ${JSON.stringify(value)})`);
  }
}

/**
 * The client's address: the peer's, or the one `X-Forwarded-For` gives through trusted hops only
 * (the first untrusted hop, walking from the hub outwards).
 */
export function clientAddress(request: IncomingMessage, trust: TrustFunction): string {
  const peer = request.socket.remoteAddress;
  if (peer === undefined) return 'unknown';
  if (request.headers['x-forwarded-for'] === undefined) return peer;
  return proxyAddr(request, trust) ?? peer;
}

/** The first value of an `X-Forwarded-*` header, only when the peer is a trusted proxy. */
export function trustedForwardedHeader(
  request: IncomingMessage | undefined,
  name: 'x-forwarded-proto' | 'x-forwarded-host',
  trust: TrustFunction,
): string | undefined {
  const peer = request?.socket.remoteAddress;
  if (request === undefined || peer === undefined || !trust(peer, 0)) return undefined;
  const first = String(request.headers[name] ?? '')
    .split(',')[0]
    ?.trim();
  return first || undefined;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array with entries that are not strings';
  return value === null ? 'null' : typeof value;
}
