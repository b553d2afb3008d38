export {
  ATPWebSocketProvider,
  type ATPWebSocketProviderProps,
  getDefaultATPWebSocket,
  useATPWebSocketClient,
} from './provider.js';
export { type UseATPWebSocketResult, useATPWebSocket, useConnectionState } from './use-atp-websocket.js';
export { type UseResourceOptions, useResource } from './use-resource.js';
export {
  type SubscriptionState,
  type SubscriptionStateOptions,
  type SubscriptionStatus,
  useSubscriptionState,
} from './use-subscription-state.js';
export {
  type MessageListOptions,
  type SubscriptionHandler,
  type SubscriptionOptions,
  type TopicMessageType,
  type TopicPayload,
  useATPSubscription,
  useLatest,
  useMessageList,
} from './use-subscription.js';
// The client's public API as a whole, so that an app installs one package.
export * from '@atp/ws-client';
export { canonicalSubscriptionKey, matchesSubscription } from '@atp/ws-protocol';
