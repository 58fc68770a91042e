import { Module } from '@nestjs/common';
import { type ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import { ErrorCode } from '../protocol/index.js';
import { AdminAuthGuard } from './admin/admin-auth.guard.js';
import { ClusterAdminService } from './admin/cluster-admin.service.js';
import { RealtimeStatsService } from './admin/realtime-stats.service.js';
import { TokenVerifier } from './auth/token-verifier.js';
import { InProcessBus } from './bus/in-process.bus.js';
import { ReconnectTogether } from './bus/reconnect-together.js';
import { ClusterControl } from './control/cluster-control.js';
import { ControlRedelivery } from './control/control-redelivery.js';
import { RecentLeaves } from './control/recent-leaves.js';
import { LocalControl } from './control/local-control.js';
import { UserRoomCatchUp } from './control/user-room-catch-up.js';
import { InMemoryMessageHistory } from './recovery/in-memory-message-history.js';
import { MessageHistory } from './recovery/message-history.js';
import { RedisMessageHistory } from './recovery/redis-message-history.js';
import { ResumeService } from './recovery/resume.service.js';
import { StreamCatchUp } from './recovery/stream-catch-up.js';
import { StreamWatermark } from './recovery/stream-watermark.js';
import { LocalDelivery } from './bus/local-delivery.js';
import { RealtimeBus } from './bus/realtime-bus.js';
import { RedisBus } from './bus/redis-bus.js';
import { REDIS_BUS_DEFAULTS, type RedisBusOptions } from './bus/redis-bus-options.js';
import { RedisThrottlerStorage } from './bus/redis-throttler-storage.js';
import { PresenceStore } from './presence/presence-store.js';
import { PresenceService } from './presence/presence.service.js';
import { RedisPresenceStore } from './presence/redis-presence.store.js';
import { RegistryPresenceStore } from './presence/registry-presence.store.js';
import { ConnectionAdmission } from './gateway/connection-admission.js';
import { ConnectionCloser } from './gateway/connection-closer.js';
import { ConnectionSupervisor } from './gateway/connection-supervisor.js';
import { GracefulShutdown } from './gateway/graceful-shutdown.js';
import { MessageDispatcher } from './gateway/message-dispatcher.js';
import { MessageRateLimiter, REALTIME_THROTTLER_STORAGE } from './gateway/message-rate-limiter.js';
import { RealtimeProtocolGateway } from './gateway/realtime-protocol.gateway.js';
import { RealtimeSocketServer } from './gateway/realtime-socket-server.js';
import { SocketWriter } from './gateway/socket-writer.js';
import {
  RealtimeConfigurableModule,
  REALTIME_MODULE_OPTIONS,
} from './realtime.module-definition.js';
import {
  REALTIME_OPTIONS,
  type RealtimeModuleOptions,
  type ResolvedRealtimeOptions,
  resolveRealtimeOptions,
} from './realtime-options.js';
import { RealtimeEvents } from './realtime-events.js';
import { RealtimeMetrics } from './realtime-metrics.js';
import { RealtimeService } from './realtime.service.js';
import { ConnectionRegistry } from './registry/connection-registry.js';
import { TokenExpirySchedule } from './registry/token-expiry-schedule.js';
import { SubscriptionService } from './subscriptions/subscription.service.js';

/**
 * Authenticated WebSocket communication for a Nest app. Import with `RealtimeModule.forRoot()`
 * or `forRootAsync()`, and install the adapter: `app.useWebSocketAdapter(new RealtimeWsAdapter(app))`.
 */
@Module({
  providers: [
    {
      provide: REALTIME_OPTIONS,
      inject: [REALTIME_MODULE_OPTIONS],
      useFactory: (options: RealtimeModuleOptions) => resolveRealtimeOptions(options),
    },
    {
      provide: RealtimeBus,
      inject: [REALTIME_OPTIONS, ReconnectTogether],
      useFactory: createBus,
    },
    {
      provide: REALTIME_THROTTLER_STORAGE,
      inject: [REALTIME_OPTIONS, ReconnectTogether],
      useFactory: createThrottlerStorage,
    },
    {
      provide: MessageHistory,
      inject: [REALTIME_OPTIONS, RealtimeBus, ReconnectTogether],
      useFactory: createMessageHistory,
    },
    {
      provide: PresenceStore,
      inject: [REALTIME_OPTIONS, ConnectionRegistry, ReconnectTogether],
      useFactory: createPresenceStore,
    },
    ReconnectTogether,
    {
      provide: ClusterControl,
      inject: [
        REALTIME_OPTIONS,
        RealtimeBus,
        ConnectionRegistry,
        ConnectionCloser,
        RealtimeEvents,
        SocketWriter,
      ],
      useFactory: createClusterControl,
    },
    PresenceService,
    TokenVerifier,
    ConnectionRegistry,
    TokenExpirySchedule,
    RealtimeEvents,
    RealtimeMetrics,
    ConnectionCloser,
    SocketWriter,
    ConnectionAdmission,
    MessageRateLimiter,
    MessageDispatcher,
    ConnectionSupervisor,
    GracefulShutdown,
    RealtimeSocketServer,
    SubscriptionService,
    LocalDelivery,
    RealtimeService,
    RealtimeStatsService,
    ClusterAdminService,
    AdminAuthGuard,
    ResumeService,
    StreamWatermark,
    StreamCatchUp,
    RealtimeProtocolGateway,
  ],
  exports: [
    RealtimeService,
    ConnectionRegistry,
    RealtimeSocketServer,
    REALTIME_OPTIONS,
    TokenVerifier,
  ],
})
export class RealtimeModule extends RealtimeConfigurableModule {}

/** RealtimeService's and the admin API's one way to act on connections wherever they are. */
function createClusterControl(
  options: ResolvedRealtimeOptions,
  bus: RealtimeBus,
  registry: ConnectionRegistry,
  closer: ConnectionCloser,
  events: RealtimeEvents,
  writer: SocketWriter,
): ClusterControl {
  const { maxRoomSize, maxConnectionsPerUser } = options;
  const local = new LocalControl(registry, closer, maxRoomSize, (connection) =>
    writer.sendError(connection, {
      code: ErrorCode.CONNECTION_LIMIT_EXCEEDED,
      message: `A newer connection of this user replaced this one (limit ${maxConnectionsPerUser})`,
    }),
  );
  const leaves = new RecentLeaves();
  return new ClusterControl(
    bus,
    local,
    new UserRoomCatchUp(bus, registry, events, maxRoomSize, leaves),
    new ControlRedelivery(bus, local, leaves),
  );
}

function createThrottlerStorage(
  options: ResolvedRealtimeOptions,
  reconnects: ReconnectTogether,
): ThrottlerStorage {
  if (options.throttlerStorage) return options.throttlerStorage;
  const redis = redisOptions(options);
  const connection = redis?.url ?? redis?.clients?.publisher;
  if (!redis || !connection) return new ThrottlerStorageService();
  return new RedisThrottlerStorage(
    connection,
    redis.namespace ?? REDIS_BUS_DEFAULTS.namespace,
    reconnects,
  );
}

/** In Redis with the Redis bus; otherwise this instance's registry is its presence. */
function createPresenceStore(
  options: ResolvedRealtimeOptions,
  registry: ConnectionRegistry,
  reconnects: ReconnectTogether,
): PresenceStore {
  const redis = redisOptions(options);
  const connection = redis?.url ?? redis?.clients?.publisher;
  if (!redis || !connection) return new RegistryPresenceStore(registry);
  return new RedisPresenceStore(
    connection,
    redis.namespace ?? REDIS_BUS_DEFAULTS.namespace,
    reconnects,
  );
}

/**
 * In memory when this process is the whole cluster; in Redis Streams with the Redis bus, so that
 * a client resumes on any instance. A bus of the host's has no history the module could share:
 * none then (resume is answered as off).
 */
function createMessageHistory(
  options: ResolvedRealtimeOptions,
  bus: RealtimeBus,
  reconnects: ReconnectTogether,
): MessageHistory | null {
  if (options.history === false) return null;
  if (bus instanceof InProcessBus) return new InMemoryMessageHistory(options.history);
  const redis = redisOptions(options);
  const connection = redis?.url ?? redis?.clients?.publisher;
  if (!(bus instanceof RedisBus) || !redis || !connection) return null;
  return new RedisMessageHistory(
    connection,
    redis.namespace ?? REDIS_BUS_DEFAULTS.namespace,
    options.history,
    reconnects,
  );
}

function redisOptions(options: ResolvedRealtimeOptions): RedisBusOptions | undefined {
  return typeof options.redis === 'string' ? { url: options.redis } : options.redis;
}

function createBus(options: ResolvedRealtimeOptions, reconnects: ReconnectTogether): RealtimeBus {
  if (options.bus) return options.bus;
  const redis = redisOptions(options);
  return redis ? new RedisBus(redis, reconnects) : new InProcessBus();
}
