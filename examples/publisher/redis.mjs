// Publishes into every hub sharing a Redis (RedisBroker), without serving any WebSocket itself.
import { createRedisPublisher } from '@atp/ws-redis';

const publisher = createRedisPublisher({ url: process.env.ATP_WS_REDIS_URL ?? 'redis://127.0.0.1:6379' });
try {
  await publisher.publish([
    {
      type: 'log_entry',
      payload: { level: 'info', message: 'Suite started', timestamp: new Date().toISOString() },
    },
    {
      type: 'suite_progress',
      payload: {
        suite_execution_id: 123,
        suite_name: 'Auth Tests',
        agent_name: 'gpt-4',
        status: 'running',
        progress_percent: 40,
        completed_tests: 4,
        total_tests: 10,
        passed_tests: 3,
        failed_tests: 1,
      },
    },
  ]);
  console.log('Published 2 messages');
} finally {
  await publisher.close(); // without it the process never exits: the Redis connections stay open
}
