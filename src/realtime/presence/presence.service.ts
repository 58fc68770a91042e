import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { CloseCode, CloseReason, ServerMessageType } from '../../protocol/index.js';
import { InProcessBus } from '../bus/in-process.bus.js';
import { RealtimeBus } from '../bus/realtime-bus.js';
import { ClusterControl } from '../control/cluster-control.js';
import { isThenable } from '../gateway/thenable.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import {
  type ConnectionClosedEvent,
  type ConnectionOpenedEvent,
  RealtimeEvents,
} from '../realtime-events.js';
import { RealtimeService } from '../realtime.service.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { RetryBackoff } from '../retry-backoff.js';
import { SerialRuns } from '../serial-runs.js';
import { type PresenceAddResult, type PresenceEntry, PresenceStore } from './presence-store.js';
import { RegistryPresenceStore } from './registry-presence.store.js';

const IGNORE = (): void => undefined;
/** Connections whose presence a rewrite sends to the store in one go. */
const REWRITE_BATCH = 500;
/** Gone instances kept for another reap at most (the oldest forgotten first). */
const MAX_UNREAPED = 1000;

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
  /**
   * One rewrite at a time (the bus and the store each report their reconnection); asked for
   * during one, what it wrote may be gone already: one more after it.
   */
  private readonly rewrites = new SerialRuns(async () => {
    const done = await this.guard('resync', async () => {
      await this.rewrite();
      return true;
    });
    if (done) this.rewriteRetries.reset();
    else this.rewriteRetries.schedule();
  });
  /**
   * A rewrite that failed with Redis reachable (an error reply: a script busy or denied, out of
   * memory) has no other occasion: it runs again after 1 s, doubling, 6 times at most; a
   * reconnection starts the count over.
   */
  private readonly rewriteRetries = new RetryBackoff(() => this.rewrites.request());
  /**
   * Connections whose add the store refused while reachable: the rewrite that repairs it
   * announces their user online, if that is when they come online. Open connections only.
   */
  private readonly unannounced = new Set<string>();
  /**
   * Instances reported gone whose reap failed (Redis unreachable or refusing at that moment).
   * Nobody reports them again, and their users would stay online for good: reaped again after
   * 1 s, doubling, 6 times at most, and at each reconnection.
   */
  private readonly unreaped = new Set<string>();
  private readonly reapRetries = new RetryBackoff(() => this.reapAgain());

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly store: PresenceStore,
    private readonly bus: RealtimeBus,
    private readonly registry: ConnectionRegistry,
    private readonly control: ClusterControl,
    private readonly events: RealtimeEvents,
    private readonly realtime: RealtimeService,
  ) {}

  onModuleInit(): void {
    const follow = () => this.followConnections();
    // Alone, with presence read from the registry, a connect or close changes nothing anyone can
    // see until a client subscribes to user.status_changed: the store keeps no state of its own and
    // the announcement would reach nobody. Until then connections are not followed at all (with no
    // other observer, admission then builds no connection.opened event either): 1.04× the server
    // CPU per connect and close when followed, toggled inside one process (median of 6 runs).
    if (this.bus instanceof InProcessBus && this.store instanceof RegistryPresenceStore) {
      this.registry.watchFirstSubscriber(ServerMessageType.USER_STATUS_CHANGED, follow);
    } else {
      this.registry.watchFirstSubscriber(ServerMessageType.USER_STATUS_CHANGED);
      follow();
    }
    this.bus.onClusterChange((change) => {
      if (change.kind === 'instances_gone') void this.reap(change.instanceIds);
      // Not after a subscription outage alone: every write went through meanwhile.
      else if (change.kind === 'reconnected') this.rewriteNow();
    });
    // The store may write through a connection of its own, which comes back on its own schedule:
    // a rewrite on the bus's reconnection alone fails (and is lost) when that one is later.
    this.store.onReady(() => this.rewriteNow());
  }

  async onApplicationShutdown(): Promise<void> {
    this.rewriteRetries.stop();
    this.reapRetries.stop();
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    // Connections were closed before this; whatever is left of this instance goes now.
    await this.guard('shutdown', () => this.store.reap([this.bus.instanceId]));
    await this.store.close();
  }

  /** On an occasion to rewrite (a reconnection): retries, if it fails, count afresh. */
  private rewriteNow(): void {
    this.rewriteRetries.reset();
    this.rewrites.request();
    this.reapRetries.reset();
    this.reapAgain();
  }

  private followConnections(): void {
    if (this.subscriptions.length > 0) return;
    this.subscriptions = [
      this.events.opened.subscribe((event) => this.opened(event)),
      this.events.closed.subscribe((event) => this.closed(event)),
    ];
    // Alone, following starts at the first status subscriber: the connections already open are
    // online all the same. The store learns of them now, silently (nobody could have seen their
    // online), so that their last close is announced. At startup there are none.
    const limit = this.options.maxConnectionsPerUser;
    for (const connection of [...this.registry.all()]) {
      this.withAnswer('add', () => this.store.add(this.entryOf(connection), limit), IGNORE);
    }
  }

  private opened(event: ConnectionOpenedEvent): void {
    const connection = this.registry.get(event.connectionId);
    if (!connection) return; // closed already
    const userId = event.userId;
    this.withAnswer(
      'add',
      () => this.store.add(this.entryOf(connection), this.options.maxConnectionsPerUser),
      (result) => this.added(userId, result),
      (error) => this.refused(error, connection.id),
    );
  }

  private added(userId: string, result: PresenceAddResult | undefined): void {
    if (!result) return;
    if (result.cameOnline) this.announce(userId, 'online');
    if (result.evict.length > 0) void this.evictAll(result.evict);
  }

  private async evictAll(entries: readonly PresenceEntry[]): Promise<void> {
    for (const entry of entries) await this.evict(entry);
  }

  private closed(event: ConnectionClosedEvent): void {
    this.unannounced.delete(event.connectionId);
    // A host's connectionOpened$ observer runs ahead of this service's: when it closes the user's
    // previous connection there, this close comes before the new connection's add. Forgotten at
    // once, the old one would leave the user without any connection in the store for a moment
    // (offline, then online again). While the user still has a connection here, the store forgets
    // this one once the current dispatch is over (a microtask): after that add.
    if (this.registry.ofUser(event.userId).size > 0) queueMicrotask(() => this.forget(event));
    else this.forget(event);
  }

  private forget(event: ConnectionClosedEvent): void {
    const userId = event.userId;
    this.withAnswer(
      'remove',
      () =>
        this.store.remove({
          connectionId: event.connectionId,
          userId,
          instanceId: this.bus.instanceId,
        }),
      (wentOffline) => {
        if (wentOffline) this.announce(userId, 'offline');
      },
      (error) => this.refused(error),
    );
  }

  /**
   * A connect or close that the store refused while reachable (an error reply: scripts denied,
   * out of memory) has no reconnection to repair it: a rewrite does, after 1 s, doubling, 6 times
   * at most. It announces a close's offline (forgetClosed) and, for `connectionId`, an online.
   */
  private refused(error: unknown, connectionId?: string): void {
    // Not a write lost to an outage: the rewrite at its end repairs it, silently.
    if (!this.store.refused(error)) return;
    if (connectionId !== undefined) this.unannounced.add(connectionId);
    this.rewriteRetries.scheduleAfresh();
  }

  private async reap(instanceIds: readonly string[]): Promise<void> {
    const offline = await this.guard('reap', () => this.store.reapGone(instanceIds));
    if (offline === undefined) {
      for (const instanceId of instanceIds) {
        this.unreaped.delete(instanceId);
        this.unreaped.add(instanceId);
        if (this.unreaped.size > MAX_UNREAPED)
          this.unreaped.delete(this.unreaped.values().next().value!);
      }
      this.reapRetries.schedule();
      return;
    }
    for (const instanceId of instanceIds) this.unreaped.delete(instanceId);
    this.logger.log({ event: 'presence.reaped_instances', instance_ids: instanceIds });
    for (const userId of offline) this.announce(userId, 'offline');
  }

  private reapAgain(): void {
    if (this.unreaped.size > 0) void this.reap([...this.unreaped]);
  }

  /**
   * After Redis came back (maybe empty, after a restart) this instance's part of presence is
   * written again. Users whose connections here all closed meanwhile are announced offline then
   * (their closes could not tell the store); connections opened meanwhile are written back
   * silently: after a restart that lost Redis's data every user here would come online again.
   */
  private async rewrite(): Promise<void> {
    // Not a reap of this instance first: until the adds were back, a user connected here and
    // elsewhere looked offline, and their close elsewhere announced them offline for good.
    const offline = await this.store.forgetClosed(
      this.bus.instanceId,
      (connectionId) => this.registry.get(connectionId) !== undefined,
    );
    for (const userId of offline) this.announce(userId, 'offline');
    const connections = [...this.registry.all()];
    // A batch of adds goes out at once (the store's connection keeps their order), not one round
    // trip each: presence is whole again sooner after a restart. Batches bound what is in flight.
    for (let start = 0; start < connections.length; start += REWRITE_BATCH) {
      // Closed while an earlier batch was awaited: its remove went out before, and an add now
      // would stay behind it. One still registered is removed after its add, on the same
      // connection.
      const batch = connections
        .slice(start, start + REWRITE_BATCH)
        .filter((connection) => this.registry.get(connection.id) === connection);
      const limit = this.options.maxConnectionsPerUser;
      const results = await Promise.all(
        batch.map((connection) => this.store.add(this.entryOf(connection), limit)),
      );
      for (const [index, result] of results.entries()) {
        const { id, userId } = batch[index]!;
        if (this.unannounced.delete(id) && result.cameOnline) this.announce(userId, 'online');
      }
      for (const result of results) for (const entry of result.evict) await this.evict(entry);
    }
  }

  /**
   * Ends the connection wherever it is, told why first (LocalControl). As a disconnect, so that an
   * owner that cannot be reached now (its subscription down, or busy past the request timeout)
   * still ends it once it can (ControlRedelivery): the store has forgotten the connection already,
   * and left open it would exceed the user's limit for as long as it lives.
   */
  private async evict(entry: PresenceEntry): Promise<void> {
    await this.control.disconnectConnection(
      entry.connectionId,
      CloseCode.CONNECTION_LIMIT_EXCEEDED,
      CloseReason.CONNECTION_LIMIT_EXCEEDED,
    );
  }

  private announce(userId: string, status: 'online' | 'offline'): void {
    if (!this.announcementCanBeSeen()) return;
    this.realtime.sendUserStatusChanged(userId, status).catch((error: unknown) => {
      this.logger.warn({
        event: 'presence.announce_failed',
        user_id: userId,
        status,
        error: String(error),
      });
    });
  }

  /**
   * Whether anyone can ever receive a status change announced now. On a bus with other
   * instances, always (their clients may watch). Alone (the in-process bus), only once a client
   * here has subscribed to `user.status_changed`: before that, no client holds a position in its
   * stream to resume from (positions come only with delivered messages, and the in-memory
   * history and its epoch end with this process), so the message would reach nobody, now or in
   * a replay. An application that never watches presence pays nothing for it on each connect
   * and close.
   */
  private announcementCanBeSeen(): boolean {
    return (
      !(this.bus instanceof InProcessBus) ||
      this.registry.hadSubscriber(ServerMessageType.USER_STATUS_CHANGED)
    );
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
  private guard<T>(operation: string, call: () => Promise<T>): Promise<T | undefined> {
    return new Promise((resolve) => this.withAnswer(operation, call, resolve));
  }

  /**
   * As {@link guard}, handing the answer to `next`: at once when the store answered at once, as
   * the in-process one does on every connect and close, so that those make no promise.
   */
  private withAnswer<T>(
    operation: string,
    call: () => T | Promise<T>,
    next: (answer: T | undefined) => void,
    failed?: (error: unknown) => void,
  ): void {
    let answer: T | Promise<T>;
    try {
      answer = call();
    } catch (error) {
      this.storeFailed(operation, error, failed);
      return next(undefined);
    }
    if (!isThenable(answer)) return next(answer as T);
    void (answer as Promise<T>).then(next, (error: unknown) => {
      this.storeFailed(operation, error, failed);
      next(undefined);
    });
  }

  private storeFailed(operation: string, error: unknown, failed?: (error: unknown) => void): void {
    this.logger.debug?.({ event: 'presence.store_failed', operation, error: String(error) });
    failed?.(error);
  }
}
