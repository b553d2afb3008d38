export {
  RedisBroker,
  type RedisBrokerOptions,
  type RedisClusterOptions,
  type RedisSentinelOptions,
} from './redis-broker.js';
export { createRedisPublisher, type RedisPublisher } from './publisher.js';
