export { type BackoffOptions, reconnectDelay } from './backoff.js';
export { ATPWebSocket } from './client.js';
export {
  type DeltaApplyResult,
  type DeltaGap,
  type DeltaResource,
  DeltaStore,
  type DeltaStoreOptions,
} from './delta.js';
export { ATPWebSocketError, type ClientErrorCode } from './errors.js';
export {
  openResource,
  requestResource,
  type ResourceEvents,
  type ResourceFetcher,
  ResourceHandle,
  type ResourceOptions,
  type ResourceReducer,
  type ResourceStatus,
  ResourceSync,
  type ResourceView,
  type ResyncReason,
  type SyncStep,
} from './resource.js';
export type {
  ATPWebSocketEventName,
  ATPWebSocketEvents,
  DataEvents,
  MessageMeta,
  RuntimeTopic,
  SequenceGapEvent,
  SubscribeOptions,
  Subscription,
  SubscriptionEvents,
  TopicFilter,
  TopicFilterKey,
  TopicName,
} from './events.js';
export type { ATPWebSocketOptions, Logger, PerConnect } from './options.js';
export type { SequenceGap } from './resume.js';
export { type ConnectionState, canTransition, type StateChange } from './state.js';
export type { WebSocketConstructor, WebSocketLike } from './websocket.js';
export { CloseCode, ErrorCode, GapReason, isFatalCloseCode } from '@atp/ws-protocol';
export type {
  DataMessageType,
  DataPayload,
  Filter,
  ReplayFrom,
  ResourceSnapshot,
  StreamPosition,
  Topic,
} from '@atp/ws-protocol';
