import { Inject, Injectable, Logger } from '@nestjs/common';
import type { SubscriptionAcknowledgedData } from '../../protocol/index.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';

/** Who may subscribe to what: the event allow-list, then the host's authorizer. */
@Injectable()
export class SubscriptionService {
  private readonly logger = new Logger('RealtimeSubscriptions');
  private readonly allowed: ReadonlySet<string>;

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly registry: ConnectionRegistry,
  ) {
    this.allowed = new Set(options.events);
  }

  /**
   * Subscribes to what the allow-list admits at once; only names left to the host's authorizer
   * make it asynchronous. Why: an `async` subscribe for every client was measured to make V8
   * pretenure objects that later pings allocate, tripling the scavenge time of every ping after
   * (bench/README.md, "W3 after the fan-out workloads").
   */
  subscribe(
    connection: RealtimeConnection,
    names: readonly string[],
  ): SubscriptionAcknowledgedData | Promise<SubscriptionAcknowledgedData> {
    const unique = [...new Set(names)];
    const events: string[] = [];
    const invalid: string[] = [];
    for (let i = 0; i < unique.length; i++) {
      const name = unique[i]!;
      if (!this.fits(connection, name) || (!this.allowed.has(name) && !this.authorizes())) {
        invalid.push(name);
      } else if (this.allowed.has(name)) {
        if (connection.closing) break;
        this.registry.subscribe(connection, name);
        events.push(name);
      } else {
        return this.subscribeAuthorized(connection, unique, i, events, invalid);
      }
    }
    return { events, invalid_events: invalid };
  }

  /** The rest of {@link subscribe} from `names[from]` on, asking the authorizer where needed. */
  private async subscribeAuthorized(
    connection: RealtimeConnection,
    names: readonly string[],
    from: number,
    events: string[],
    invalid: string[],
  ): Promise<SubscriptionAcknowledgedData> {
    for (let i = from; i < names.length; i++) {
      const name = names[i]!;
      if (this.fits(connection, name) && (await this.mayJoin(connection, name))) {
        if (connection.closing) break;
        this.registry.subscribe(connection, name);
        events.push(name);
      } else {
        invalid.push(name);
      }
    }
    return { events, invalid_events: invalid };
  }

  private fits(connection: RealtimeConnection, name: string): boolean {
    return (
      connection.subscriptions.has(name) ||
      connection.subscriptions.size < this.options.maxSubscriptionsPerConnection
    );
  }

  private authorizes(): boolean {
    return this.options.subscriptionAuthorizer !== undefined;
  }

  unsubscribe(connection: RealtimeConnection, names: readonly string[]): string[] {
    return [...new Set(names)].filter((name) => this.registry.unsubscribe(connection, name));
  }

  private async mayJoin(connection: RealtimeConnection, name: string): Promise<boolean> {
    if (this.allowed.has(name)) return true;
    const authorizer = this.options.subscriptionAuthorizer;
    if (!authorizer) return false;
    try {
      return (await authorizer(name, connection.principal)) === true;
    } catch (error) {
      this.logger.error({
        event: 'subscription.authorizer_failed',
        user_id: connection.userId,
        name,
        error: error instanceof Error ? error.message : String(error),
      });
      return false;
    }
  }
}
