import { Inject, Injectable } from '@nestjs/common';
import {
  announcedLimits,
  REALTIME_OPTIONS,
  type ResolvedRealtimeOptions,
} from '../realtime-options.js';
import { RealtimeMetrics } from '../realtime-metrics.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';

export interface ConnectionSummary {
  connection_id: string;
  user_id: string;
  connected_at: string;
  last_activity: string;
  subscriptions: number;
  rooms: number;
  remote_address: string;
}

/** One instance's own numbers, as it answers other instances (merged by {@link mergeStats}). */
export interface InstanceStats {
  total_connections: number;
  connections_per_user: Record<string, number>;
  subscriptions: Record<string, number>;
  rooms: Record<string, number>;
  messages_in: number;
  messages_out: number;
  bytes_in: number;
  bytes_out: number;
}

/** A first part of this instance's connections, in cluster order, and how many match in all. */
export interface InstancePage {
  total: number;
  connections: ConnectionSummary[];
}

export interface ConnectionDetails {
  connection_id: string;
  user_id: string;
  is_admin: boolean;
  connected_at: string;
  last_activity: string;
  last_heartbeat: string;
  subscriptions: string[];
  rooms: string[];
  message_count: number;
  messages_in: number;
  messages_out: number;
  error_count: number;
  bytes_in: number;
  bytes_out: number;
  remote_address: string;
}

/** The numbers and views of the admin API (PROTOCOL.md section 8). */
@Injectable()
export class RealtimeStatsService {
  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly registry: ConnectionRegistry,
    private readonly metrics: RealtimeMetrics,
  ) {}

  stats() {
    const total = this.registry.size;
    const users = this.registry.userCount;
    return {
      total_connections: total,
      unique_users: users,
      connections_per_user: this.registry.connectionsPerUser(),
      average_connections_per_user: averagePerUser(total, users),
      subscriptions: this.registry.subscriptionCounts(),
      rooms: this.registry.roomCounts(),
      messages_in: this.metrics.messagesIn,
      messages_out: this.metrics.messagesOut,
      bytes_in: this.metrics.bytesIn,
      bytes_out: this.metrics.bytesOut,
      server_info: this.serverInfo(),
    };
  }

  /** This instance's limits and uptime (the same on every instance but for uptime). */
  serverInfo() {
    return {
      ...announcedLimits(this.options),
      max_total_connections: this.options.maxTotalConnections,
      uptime_seconds: Math.round(process.uptime()),
    };
  }

  /** This instance's counts, for merging with the other instances'. */
  instanceStats(): InstanceStats {
    return {
      total_connections: this.registry.size,
      connections_per_user: this.registry.connectionsPerUser(),
      subscriptions: this.registry.subscriptionCounts(),
      rooms: this.registry.roomCounts(),
      messages_in: this.metrics.messagesIn,
      messages_out: this.metrics.messagesOut,
      bytes_in: this.metrics.bytesIn,
      bytes_out: this.metrics.bytesOut,
    };
  }

  /**
   * The first `take` connections (of `userId`, when given) in cluster order: by connected_at,
   * then connection_id. Any page of the merged list lies within every instance's first
   * offset + limit, so that is all an instance sends.
   */
  firstPage(userId: string | undefined, take: number): InstancePage {
    const source =
      userId === undefined ? [...this.registry.all()] : [...this.registry.ofUser(userId)];
    source.sort(
      (a, b) => a.connectedAt - b.connectedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    return { total: source.length, connections: source.slice(0, take).map(summarize) };
  }

  /** Summaries in connection order, filtered by user through the user index. */
  list(userId: string | undefined, limit: number, offset: number) {
    const source =
      userId === undefined ? this.registry.all() : this.registry.ofUser(userId).values();
    const total = userId === undefined ? this.registry.size : this.registry.ofUser(userId).size;
    const page: ConnectionSummary[] = [];
    let index = 0;
    for (const connection of source) {
      if (index++ < offset) continue;
      if (page.length >= limit) break;
      page.push(summarize(connection));
    }
    return { total, limit, offset, connections: page };
  }

  details(connectionId: string): ConnectionDetails | undefined {
    const c = this.registry.get(connectionId);
    if (!c) return undefined;
    return {
      connection_id: c.id,
      user_id: c.userId,
      is_admin: c.principal.isAdmin,
      connected_at: iso(c.connectedAt),
      last_activity: iso(c.lastActivity),
      last_heartbeat: iso(c.lastHeartbeat),
      subscriptions: [...c.subscriptions],
      rooms: [...c.rooms],
      message_count: c.messagesIn + c.messagesOut,
      messages_in: c.messagesIn,
      messages_out: c.messagesOut,
      error_count: c.errorCount,
      bytes_in: c.bytesIn,
      bytes_out: c.bytesOut,
      remote_address: c.remoteAddress,
    };
  }
}

function summarize(c: RealtimeConnection): ConnectionSummary {
  return {
    connection_id: c.id,
    user_id: c.userId,
    connected_at: iso(c.connectedAt),
    last_activity: iso(c.lastActivity),
    subscriptions: c.subscriptions.size,
    rooms: c.rooms.size,
    remote_address: c.remoteAddress,
  };
}

/** Connections per user, rounded to two decimals; 0 without users. */
export function averagePerUser(total: number, users: number): number {
  return users === 0 ? 0 : Math.round((total / users) * 100) / 100;
}

function iso(timestamp: number): string {
  return new Date(timestamp).toISOString();
}
