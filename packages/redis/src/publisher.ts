import { assertDataMessage, type DataMessage } from '@atp/ws-protocol';
import { RedisBroker, type RedisBrokerOptions } from './redis-broker.js';

/** Publishes into a cluster of hubs through Redis, without holding any sockets. */
export interface RedisPublisher {
  /**
   * Validates and appends messages, in order. Throws a `ProtocolError` for an
   * invalid message (nothing of the call is published) and rejects with
   * `BrokerUnavailableError` when Redis cannot be reached.
   */
  publish(messages: DataMessage | readonly DataMessage[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * A publisher-only client: for a backend (such as the ATP test runner) that
 * feeds the hubs without serving WebSocket clients itself.
 *
 * @example
 * const publisher = createRedisPublisher({ url: 'redis://127.0.0.1:6379' });
 * await publisher.publish({ type: 'log_entry', payload: { level: 'info', message: 'hi', timestamp: new Date().toISOString() } });
 */
export function createRedisPublisher(options: RedisBrokerOptions = {}): RedisPublisher {
  const broker = new RedisBroker(options);
  return {
    publish(messages) {
      const list = Array.isArray(messages) ? messages : [messages as DataMessage];
      return broker.publish(list.map((message) => assertDataMessage(message)));
    },
    close: () => broker.close(),
  };
}
