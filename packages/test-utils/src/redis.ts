// The Redis launchers alone (no vitest, no browser): built to dist/redis.js for `pnpm bench`,
// which starts its own redis-server, Sentinel set and Cluster with them.
export {
  CLUSTER_SLOTS,
  type ClusterNode,
  type RedisClusterSet,
  type SentinelSet,
  type SentinelSetOptions,
  startRedisCluster,
  startSentinelSet,
} from './redis-ha.js';
export {
  freePort,
  RedisError,
  type RedisReply,
  RedisServer,
  type RedisServerOptions,
  redisCommand,
} from './redis-server.js';
