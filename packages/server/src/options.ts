import { WS_PATH } from '@atp/ws-protocol';
import { compileTrustProxy, type TrustFunction } from './proxy.js';
import type { ATPWebSocketServerOptions, Logger, RateLimitOptions } from './types.js';

/** Options with every default filled in. */
export interface ResolvedOptions
  extends Required<
    Pick<
      ATPWebSocketServerOptions,
      | 'path'
      | 'host'
      | 'pingInterval'
      | 'pingTimeout'
      | 'maxPayload'
      | 'maxSubscriptions'
      | 'maxQueuedRequests'
      | 'maxSubscriptionBytes'
      | 'maxConnections'
      | 'maxConnectionsPerIp'
      | 'softBufferedBytes'
      | 'maxBufferedBytes'
      | 'sessionTtlMs'
    >
  > {
  rateLimit: Required<RateLimitOptions>;
  /** `trustProxy` compiled: whether a hop is a trusted proxy. */
  trustProxy: TrustFunction;
  /** Whether an upgrade without `Origin` passes the origin check; `undefined`: a predicate decides. */
  allowMissingOrigin: boolean | undefined;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function positive(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`option ${name} must be a number >= ${min}, got ${String(value)}`);
  }
  return value;
}

/** Fills in defaults and refuses nonsense early, with the option's name in the message. */
export function resolveOptions(options: ATPWebSocketServerOptions): {
  resolved: ResolvedOptions;
  logger: Logger;
} {
  const path = options.path ?? WS_PATH;
  if (!path.startsWith('/'))
    throw new TypeError(`option path must start with "/", got ${JSON.stringify(path)}`);
  const softBufferedBytes = positive('softBufferedBytes', options.softBufferedBytes, 1024 * 1024);
  const maxBufferedBytes = positive('maxBufferedBytes', options.maxBufferedBytes, 4 * 1024 * 1024);
  if (softBufferedBytes > maxBufferedBytes) {
    throw new TypeError('option softBufferedBytes must not exceed maxBufferedBytes');
  }
  const rate = options.rateLimit ?? {};
  const logger = options.logger ?? silent;
  const trustProxy = compileTrustProxy(options.trustProxy, (error) =>
    logger.warn({ err: error }, 'the trustProxy function threw; the address is not trusted'),
  );
  return {
    logger,
    resolved: {
      path,
      host: options.host ?? '127.0.0.1',
      pingInterval: positive('pingInterval', options.pingInterval, 30_000),
      pingTimeout: positive('pingTimeout', options.pingTimeout, 10_000),
      maxPayload: positive('maxPayload', options.maxPayload, 64 * 1024),
      maxSubscriptions: positive('maxSubscriptions', options.maxSubscriptions, 100),
      maxQueuedRequests: positive('maxQueuedRequests', options.maxQueuedRequests, 256),
      maxSubscriptionBytes: positive('maxSubscriptionBytes', options.maxSubscriptionBytes, 16 * 1024),
      maxConnections: positive('maxConnections', options.maxConnections, 10_000),
      maxConnectionsPerIp: positive('maxConnectionsPerIp', options.maxConnectionsPerIp, 1_000),
      softBufferedBytes,
      maxBufferedBytes,
      sessionTtlMs: positive('sessionTtlMs', options.sessionTtlMs, 10 * 60_000),
      rateLimit: {
        messagesPerSecond: positive('rateLimit.messagesPerSecond', rate.messagesPerSecond, 50),
        burst: positive('rateLimit.burst', rate.burst, 100),
        closeAfterRefused: positive('rateLimit.closeAfterRefused', rate.closeAfterRefused, 200),
        replayMessagesPerSecond: positive(
          'rateLimit.replayMessagesPerSecond',
          rate.replayMessagesPerSecond,
          200_000,
          1000,
        ),
      },
      trustProxy,
      allowMissingOrigin: resolveAllowMissingOrigin(options),
    },
  };
}

function resolveAllowMissingOrigin(options: ATPWebSocketServerOptions): boolean | undefined {
  const { allowMissingOrigin, allowedOrigins } = options;
  if (allowMissingOrigin !== undefined && typeof allowMissingOrigin !== 'boolean') {
    throw new TypeError(`option allowMissingOrigin must be a boolean, got ${typeof allowMissingOrigin}`);
  }
  if (allowMissingOrigin === false && allowedOrigins === undefined) {
    throw new TypeError(
      'option allowMissingOrigin: false needs allowedOrigins (without it every origin is accepted)',
    );
  }
  // A list cannot say anything about a missing Origin: accepted unless refused explicitly.
  return allowMissingOrigin ?? (typeof allowedOrigins === 'function' ? undefined : true);
}
