export {
  CloseCode,
  closeCodeDescriptions,
  ErrorCode,
  errorCodeDescriptions,
  GapReason,
  isFatalCloseCode,
} from './codes.js';
export {
  assertDataMessage,
  formatIssues,
  type ParseResult,
  type RefusedSubscription,
  ProtocolError,
  type ProtocolErrorInfo,
  type ProtocolIssue,
  parseClientMessage,
  parseDataMessage,
} from './codec.js';
export {
  canonicalSubscriptionKey,
  type Filter,
  type FilterScalar,
  type FilterValidation,
  type FilterValue,
  MAX_FILTER_VALUES,
  matchesFilter,
  matchesSubscription,
  normalizeFilter,
  type Subscription,
  validateFilter,
} from './filters.js';
export * from './messages.js';
export {
  ALL_EVENTS_TOPIC,
  describeTopic,
  EVENT_TOPIC_PREFIX,
  FILTER_KEYS,
  type FilterKey,
  type FilterValueKind,
  type FixedTopic,
  isEventTypeName,
  LOG_LEVELS,
  type Topic,
  type TopicDefinition,
  TOPICS,
  topicsForMessage,
} from './topics.js';
export {
  CLIENT_ID_PATTERN,
  MAX_RESOURCE_ID_LENGTH,
  MAX_RESUME_SUBSCRIPTIONS,
  PROTOCOL_VERSION,
  RESOURCE_KIND_PATTERN,
  WS_PATH,
} from './version.js';
