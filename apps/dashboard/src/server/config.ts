/** The example server's settings, read from its environment (the table in the README). */
export interface DashboardConfig {
  /** `PORT`. @default 8000 */
  port: number;
  /** `HOST`. @default '0.0.0.0' */
  host: string;
  /** `ATP_WS_ADMIN_TOKEN`: enables `GET /api/ws/clients` and `/api/ws/metrics`. */
  adminToken: string | undefined;
  /** `ATP_WS_PUBLISH_TOKEN`: enables `POST /api/ws/publish`. */
  publishToken: string | undefined;
  /** `ATP_WS_REDIS_URL`: switches to the Redis broker. */
  redisUrl: string | undefined;
  /**
   * `ATP_WS_REDIS_SENTINELS` (`host:port,host:port`) with `ATP_WS_REDIS_SENTINEL_NAME`: the Redis broker
   * on a Sentinel-managed primary, followed through failovers.
   */
  redisSentinel: { sentinels: Array<{ host: string; port: number }>; name: string } | undefined;
  /** `ATP_WS_REDIS_CLUSTER` (`host:port,host:port`): the Redis broker on a Redis Cluster. */
  redisCluster: { nodes: Array<{ host: string; port: number }> } | undefined;
  /** `ATP_WS_REDIS_PASSWORD`: password of the Redis nodes with Sentinel or Cluster (a URL carries its own). */
  redisPassword: string | undefined;
  /** `ATP_WS_REDIS_PREFIX`: key prefix in Redis, so several deployments can share one. @default 'atp:ws' */
  redisPrefix: string;
  /** `ATP_DEMO` (`0` turns the simulated runner off). @default true */
  demo: boolean;
  /** `ATP_DEMO_SPEED`: how much faster than real time the simulated runner goes. @default 1 */
  demoSpeed: number;
  /** `ATP_LOG_LEVEL`. @default 'info' */
  logLevel: LogLevelName;
}

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LOG_LEVELS: readonly LogLevelName[] = ['debug', 'info', 'warn', 'error', 'silent'];

/** A setting that cannot be used; the message says which and why. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'invalid_config';
}

type Env = Readonly<Record<string, string | undefined>>;

const optional = (value: string | undefined) =>
  value === undefined || value.trim() === '' ? undefined : value;

/**
 * Reads the configuration from an environment (`process.env` by default).
 * An unset or empty token leaves its endpoints disabled (404).
 *
 * @example
 * const config = loadConfig({ PORT: '9000', ATP_DEMO: '0' });
 */
export function loadConfig(env: Env = process.env): DashboardConfig {
  const portText = optional(env.PORT) ?? '8000';
  const port = Number(portText);
  if (!/^\d+$/.test(portText.trim()) || port > 65_535) {
    throw new ConfigError(`PORT must be an integer from 0 to 65535, got '${portText}'`);
  }
  const speedText = optional(env.ATP_DEMO_SPEED) ?? '1';
  const demoSpeed = Number(speedText);
  if (!Number.isFinite(demoSpeed) || demoSpeed <= 0) {
    throw new ConfigError(`ATP_DEMO_SPEED must be a number > 0, got '${speedText}'`);
  }
  const logLevel = (optional(env.ATP_LOG_LEVEL) ?? 'info').toLowerCase() as LogLevelName;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      `ATP_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got '${env.ATP_LOG_LEVEL}'`,
    );
  }
  const demo = (optional(env.ATP_DEMO) ?? '1').trim().toLowerCase();
  const redisUrl = optional(env.ATP_WS_REDIS_URL);
  if (redisUrl !== undefined && !/^rediss?:\/\/./.test(redisUrl)) {
    throw new ConfigError(`ATP_WS_REDIS_URL must be a redis:// or rediss:// URL, got '${redact(redisUrl)}'`);
  }
  const sentinelList = optional(env.ATP_WS_REDIS_SENTINELS);
  const clusterList = optional(env.ATP_WS_REDIS_CLUSTER);
  const modes = [redisUrl, sentinelList, clusterList].filter((value) => value !== undefined).length;
  if (modes > 1) {
    throw new ConfigError(
      'set one of ATP_WS_REDIS_URL, ATP_WS_REDIS_SENTINELS and ATP_WS_REDIS_CLUSTER, not several',
    );
  }
  const sentinelName = optional(env.ATP_WS_REDIS_SENTINEL_NAME);
  if (sentinelList !== undefined && sentinelName === undefined) {
    throw new ConfigError(
      'ATP_WS_REDIS_SENTINELS needs ATP_WS_REDIS_SENTINEL_NAME (the monitored master name)',
    );
  }
  return {
    port,
    host: optional(env.HOST) ?? '0.0.0.0',
    adminToken: optional(env.ATP_WS_ADMIN_TOKEN),
    publishToken: optional(env.ATP_WS_PUBLISH_TOKEN),
    redisUrl,
    redisSentinel:
      sentinelList === undefined
        ? undefined
        : { sentinels: hostPorts('ATP_WS_REDIS_SENTINELS', sentinelList), name: sentinelName ?? '' },
    redisCluster:
      clusterList === undefined ? undefined : { nodes: hostPorts('ATP_WS_REDIS_CLUSTER', clusterList) },
    redisPassword: optional(env.ATP_WS_REDIS_PASSWORD),
    redisPrefix: optional(env.ATP_WS_REDIS_PREFIX) ?? 'atp:ws',
    demo: !['0', 'false', 'off', 'no'].includes(demo),
    demoSpeed,
    logLevel,
  };
}

/** `host:port,host:port` as a list, or a {@link ConfigError} naming `variable`. */
function hostPorts(variable: string, list: string): Array<{ host: string; port: number }> {
  return list.split(',').map((item) => {
    const match = /^\s*(\[[^\]]+\]|[^:\s]+):(\d{1,5})\s*$/.exec(item);
    const port = Number(match?.[2]);
    if (!match?.[1] || port < 1 || port > 65_535) {
      throw new ConfigError(`${variable} must be host:port[,host:port…], got '${item.trim()}'`);
    }
    return { host: match[1].replace(/^\[|\]$/g, ''), port };
  });
}

/** What ATP_WS_REDIS_URL / _SENTINELS / _CLUSTER select, as a person reads it. */
function describeRedis(config: DashboardConfig): string {
  const list = (nodes: ReadonlyArray<{ host: string; port: number }>) =>
    nodes.map(({ host, port }) => `${host}:${port}`).join(',');
  if (config.redisSentinel) {
    return `ATP_WS_REDIS_SENTINELS ${list(config.redisSentinel.sentinels)} (Redis broker on Sentinel master '${config.redisSentinel.name}', prefix ${config.redisPrefix})`;
  }
  if (config.redisCluster) {
    return `ATP_WS_REDIS_CLUSTER  ${list(config.redisCluster.nodes)} (Redis broker on a Redis Cluster, prefix ${config.redisPrefix})`;
  }
  return `ATP_WS_REDIS_URL      ${config.redisUrl === undefined ? 'unset (embedded in-memory broker)' : `${redact(config.redisUrl)} (Redis broker, prefix ${config.redisPrefix})`}`;
}

/** The configuration in effect as lines a person reads at start (tokens are never printed). */
export function describeConfig(config: DashboardConfig): string[] {
  const token = (value: string | undefined, endpoints: string) =>
    value === undefined ? `unset: ${endpoints} disabled (404)` : `set: ${endpoints} enabled`;
  return [
    `PORT=${config.port}  HOST=${config.host}`,
    `ATP_WS_ADMIN_TOKEN    ${token(config.adminToken, 'GET /api/ws/clients and /api/ws/metrics')}`,
    `ATP_WS_PUBLISH_TOKEN  ${token(config.publishToken, 'POST /api/ws/publish')}`,
    describeRedis(config),
    `ATP_DEMO              ${config.demo ? `on (simulated ATP runner, speed ${config.demoSpeed}x)` : 'off (no simulated runner)'}`,
    `ATP_LOG_LEVEL         ${config.logLevel}`,
  ];
}

/** A URL with its password hidden. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a valid URL)';
  }
}
