export {
  type Broker,
  BrokerUnavailableError,
  type HistoryRead,
  type ReadOptions,
  type StreamBatch,
  type StreamEntry,
} from './broker.js';
export { ATPWebSocketServer, createATPWebSocketServer, type Refusal, type WebSocketInfo } from './hub.js';
export { FallbackSocket, type Transport } from './fallback-socket.js';
export { MemoryBroker, type MemoryBrokerOptions } from './memory-broker.js';
export {
  type FollowOptions,
  type ResourceContext,
  type ResourceDefinition,
  ResourceError,
  type ResourceProvider,
  ResourceRegistry,
  type ResourceState,
  type StreamFollower,
} from './resources.js';
export { supersedeKeyOf } from './supersede.js';
export type {
  ATPWebSocketServerOptions,
  ClientInfo,
  Logger,
  Principal,
  RateLimitOptions,
} from './types.js';
export {
  CloseCode,
  type DataMessage,
  type DataMessageType,
  type DataPayload,
  ErrorCode,
  type Filter,
  ProtocolError,
  type ResourceSnapshot,
  type StreamPosition,
} from '@atp/ws-protocol';
