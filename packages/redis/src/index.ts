export { RedisBroker, type RedisBrokerOptions } from './redis-broker.js';
export { createRedisPublisher, type RedisPublisher } from './publisher.js';
