export {
  type Broker,
  BrokerUnavailableError,
  type HistoryRead,
  type ReadOptions,
  type StreamBatch,
  type StreamEntry,
} from './broker.js';
export { ATPWebSocketServer, createATPWebSocketServer, type WebSocketInfo } from './hub.js';
export { MemoryBroker, type MemoryBrokerOptions } from './memory-broker.js';
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
} from '@atp/ws-protocol';
