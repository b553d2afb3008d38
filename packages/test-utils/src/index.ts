export { chromiumExecutable } from './chromium.js';
export { type Deferred, deferred, withTimeout } from './deferred.js';
export { Disposer } from './disposer.js';
export { type RawClientOptions, RawTestClient, type WireMessage } from './raw-client.js';
export { fallbackStreamUrl, RawSseTestClient } from './raw-sse-client.js';
// The Redis launchers (redis-server, a Sentinel set, a Cluster): also built alone, for the bench.
export * from './redis.js';
export { testRedisUrl } from './test-redis.js';
export {
  completed,
  progress,
  type ResourceHub,
  type Run,
  type RunOptions,
  runMessages,
  runOptions,
  serveRuns,
} from './resource-runs.js';
