export { RealtimeModule } from './realtime.module.js';
export {
  REALTIME_OPTIONS,
  REALTIME_DEFAULTS,
  type RealtimeModuleOptions,
  type RealtimeJwtOptions,
  type ResolvedRealtimeOptions,
  type SubscriptionAuthorizer,
} from './realtime-options.js';
export type { RealtimeModuleExtras } from './realtime.module-definition.js';
export {
  RealtimeService,
  type BroadcastOptions,
  type MessageData,
  type PublishResult,
  type RoomMember,
} from './realtime.service.js';
export { RealtimeSendError } from './realtime-send.error.js';
export {
  EVENT_NAME_PATTERN,
  MAX_EVENT_NAME_LENGTH,
  MAX_ROOM_NAME_LENGTH,
  MAX_USER_ID_LENGTH,
} from './name-limits.js';
export type {
  ConnectionClosedEvent,
  ConnectionOpenedEvent,
  InboundMessageEvent,
  UploadCancelRequest,
} from './realtime-events.js';
export { ConnectionRegistry, RoomFullError } from './registry/connection-registry.js';
export { RealtimeConnection } from './registry/realtime-connection.js';
export type { RealtimePrincipal } from './auth/realtime-principal.js';
export { RealtimeAuthGuard } from './auth/realtime-auth.guard.js';
export { RealtimeWsAdapter } from './gateway/realtime-ws.adapter.js';
export { RealtimeGateway } from './gateway/realtime-gateway.decorator.js';
export { CurrentConnection } from './gateway/current-connection.decorator.js';
export { RealtimeException } from './gateway/realtime.exception.js';
export { REQUEST_REJECTED } from './gateway/realtime-exception.filter.js';
export type { RealtimeReply } from './gateway/message-dispatcher.js';
export {
  RealtimeBus,
  type ClusterAnswers,
  type ClusterChange,
  type LocalDeliver,
  type RequestHandler,
  type RequestOptions,
} from './bus/realtime-bus.js';
export { InProcessBus } from './bus/in-process.bus.js';
export { RedisBus } from './bus/redis-bus.js';
export { type RedisBusOptions, REDIS_BUS_DEFAULTS } from './bus/redis-bus-options.js';
export { RedisThrottlerStorage } from './bus/redis-throttler-storage.js';
export type { DeliveryTarget, OutboundMessage } from './bus/delivery-target.js';
export * from '../protocol/index.js';
