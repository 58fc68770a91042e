import { Inject, Injectable, Logger } from '@nestjs/common';
import type { SubscriptionAcknowledgedData } from '../../protocol/index.js';
import { EVENT_NAME_PATTERN } from '../name-limits.js';
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

  async subscribe(
    connection: RealtimeConnection,
    names: readonly string[],
  ): Promise<SubscriptionAcknowledgedData> {
    const events: string[] = [];
    const invalid: string[] = [];
    for (const name of new Set(names)) {
      const fits =
        connection.subscriptions.has(name) ||
        connection.subscriptions.size < this.options.maxSubscriptionsPerConnection;
      // Printable names only: they become index keys, stats keys and log fields. Neither the
      // allow-list nor the authorizer is asked about anything else.
      if (fits && EVENT_NAME_PATTERN.test(name) && (await this.mayJoin(connection, name))) {
        if (connection.closing) break;
        this.registry.subscribe(connection, name);
        events.push(name);
      } else {
        // Refused now though held from before (the authorizer changed its answer): revocation
        // wins, so that the acknowledgement says what the connection will receive.
        this.registry.unsubscribe(connection, name);
        invalid.push(name);
      }
    }
    return { events, invalid_events: invalid };
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
