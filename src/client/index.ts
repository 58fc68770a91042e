export { RealtimeClient } from './realtime-client.js';
export { ClientErrorCode, RealtimeClientError } from './errors.js';
export type { ConnectionState, StateChange } from './connection-state.js';
export type {
  ClientEventHandler,
  CloseInfo,
  LifecycleEvents,
  ResyncInfo,
  ServerDataMap,
} from './events.js';
export {
  defaults,
  type RealtimeClientOptions,
  type TokenTransport,
  type WebSocketConstructor,
  type WebSocketLike,
  type WebSocketOptions,
} from './options.js';
export { reconnectDelayMs, type BackoffRange } from './backoff.js';
export { closeDecision, type CloseDecision } from './close-policy.js';
