export { type Deferred, deferred, withTimeout } from './deferred.js';
export { Disposer } from './disposer.js';
export { type RawClientOptions, RawTestClient, type WireMessage } from './raw-client.js';
