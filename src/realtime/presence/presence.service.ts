import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { CloseCode, CloseReason, ErrorCode } from '../../protocol/index.js';
import { RealtimeBus } from '../bus/realtime-bus.js';
import { ConnectionCloser } from '../gateway/connection-closer.js';
import { SocketWriter } from '../gateway/socket-writer.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import {
  type ConnectionClosedEvent,
  type ConnectionOpenedEvent,
  RealtimeEvents,
} from '../realtime-events.js';
import { RealtimeService } from '../realtime.service.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { type PresenceEntry, PresenceStore } from './presence-store.js';

const EVICT_TOPIC = 'presence.evict';

/**
 * Keeps the cluster's presence in step with this instance's connections: announces
 * `user.status_changed` when a user's first connection opens anywhere and when the last one
 * closes, enforces the per-user limit across instances (the oldest anywhere gets 4008), and
 * forgets the connections of instances that died.
 */
@Injectable()
export class PresenceService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('RealtimePresence');
  private subscriptions: Subscription[] = [];

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly store: PresenceStore,
    private readonly bus: RealtimeBus,
    private readonly registry: ConnectionRegistry,
    private readonly closer: ConnectionCloser,
    private readonly writer: SocketWriter,
    private readonly events: RealtimeEvents,
    private readonly realtime: RealtimeService,
  ) {}

  onModuleInit(): void {
    this.subscriptions = [
      this.events.opened.subscribe((event) => void this.opened(event)),
      this.events.closed.subscribe((event) => void this.closed(event)),
    ];
    this.bus.handle(EVICT_TOPIC, (payload) => this.evictLocal(payload));
    this.bus.onClusterChange((change) => {
      if (change.kind === 'instances_gone') void this.reap(change.instanceIds);
      else void this.resync();
    });
  }

  async onApplicationShutdown(): Promise<void> {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    // Connections were closed before this; whatever is left of this instance goes now.
    await this.guard('shutdown', () => this.store.reap([this.bus.instanceId]));
    await this.store.close();
  }

  private async opened(event: ConnectionOpenedEvent): Promise<void> {
    const connection = this.registry.get(event.connectionId);
    if (!connection) return; // closed already
    const result = await this.guard('add', () =>
      this.store.add(this.entryOf(connection), this.options.maxConnectionsPerUser),
    );
    if (!result) return;
    if (result.cameOnline) this.announce(event.userId, 'online');
    for (const entry of result.evict) await this.evict(entry);
  }

  private async closed(event: ConnectionClosedEvent): Promise<void> {
    const wentOffline = await this.guard('remove', () =>
      this.store.remove({
        connectionId: event.connectionId,
        userId: event.userId,
        instanceId: this.bus.instanceId,
      }),
    );
    if (wentOffline) this.announce(event.userId, 'offline');
  }

  private async reap(instanceIds: string[]): Promise<void> {
    const offline = await this.guard('reap', () => this.store.reap(instanceIds));
    this.logger.log({ event: 'presence.reaped_instances', instance_ids: instanceIds });
    for (const userId of offline ?? []) this.announce(userId, 'offline');
  }

  /**
   * After Redis came back (maybe empty, after a restart) this instance's part of presence is
   * written again. Transitions during the outage are not announced: presence is rebuilt silently.
   */
  private async resync(): Promise<void> {
    await this.guard('resync', async () => {
      await this.store.reap([this.bus.instanceId]);
      for (const connection of [...this.registry.all()]) {
        const result = await this.store.add(
          this.entryOf(connection),
          this.options.maxConnectionsPerUser,
        );
        for (const entry of result.evict) await this.evict(entry);
      }
    });
  }

  private async evict(entry: PresenceEntry): Promise<void> {
    if (entry.instanceId === this.bus.instanceId) {
      this.evictLocal({ connectionId: entry.connectionId });
      return;
    }
    await this.bus.request(
      EVICT_TOPIC,
      { connectionId: entry.connectionId },
      { to: entry.instanceId },
    );
  }

  private evictLocal(payload: unknown): boolean {
    const connectionId = (payload as { connectionId?: unknown } | undefined)?.connectionId;
    const connection =
      typeof connectionId === 'string' ? this.registry.get(connectionId) : undefined;
    if (!connection) return false;
    this.writer.sendError(connection, {
      code: ErrorCode.CONNECTION_LIMIT_EXCEEDED,
      message: `A newer connection of this user replaced this one (limit ${this.options.maxConnectionsPerUser})`,
    });
    this.closer.close(
      connection,
      CloseCode.CONNECTION_LIMIT_EXCEEDED,
      CloseReason.CONNECTION_LIMIT_EXCEEDED,
    );
    return true;
  }

  private announce(userId: string, status: 'online' | 'offline'): void {
    this.realtime.sendUserStatusChanged(userId, status).catch((error: unknown) => {
      this.logger.warn({
        event: 'presence.announce_failed',
        user_id: userId,
        status,
        error: String(error),
      });
    });
  }

  private entryOf(connection: RealtimeConnection): PresenceEntry {
    return {
      connectionId: connection.id,
      userId: connection.userId,
      connectedAt: connection.connectedAt,
      instanceId: this.bus.instanceId,
    };
  }

  /** Runs a store call; a failure (Redis unreachable) is logged and repaired on reconnect. */
  private async guard<T>(operation: string, call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      this.logger.debug?.({ event: 'presence.store_failed', operation, error: String(error) });
      return undefined;
    }
  }
}
