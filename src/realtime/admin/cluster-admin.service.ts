import { Injectable, type OnModuleInit } from '@nestjs/common';
import { CloseCode, CloseReason, isJsonObject } from '../../protocol/index.js';
import { answersIncomplete, type ClusterAnswers, RealtimeBus } from '../bus/realtime-bus.js';
import { ClusterControl } from '../control/cluster-control.js';
import {
  type ClusterSummary,
  type FromInstance,
  isInstancePage,
  isInstanceStats,
  mergePages,
  mergeStats,
} from './cluster-merge.js';
import {
  type ConnectionDetails,
  type InstancePage,
  type InstanceStats,
  RealtimeStatsService,
} from './realtime-stats.service.js';

/**
 * Topics of the admin questions instances ask each other over the bus. A kick is not one: it
 * goes through ClusterControl, as RealtimeService.disconnectConnection does.
 */
export const ADMIN_TOPICS = {
  stats: 'admin.stats',
  connections: 'admin.connections',
  connection: 'admin.connection',
} as const;

/** Which instances a cluster-wide answer is missing (PROTOCOL.md section 10). */
export interface ClusterReach {
  /** Instances believed alive that gave no usable answer in time. */
  unreachable_instances: string[];
  /** True while the bus is unreachable: the answer holds this instance's data only. */
  degraded: boolean;
}

export type ClusterDetails = ConnectionDetails & { instance_id: string };

/** A connection found on some instance, or why it was not. */
export type Lookup<T> = { found: true; value: T } | { found: false; degraded: boolean };

/**
 * The admin API over every instance: answers the others' questions from this instance's data,
 * and combines this instance's data with the others' answers. With the in-process bus nobody
 * else is asked, and the answers are this instance's.
 */
@Injectable()
export class ClusterAdminService implements OnModuleInit {
  constructor(
    private readonly bus: RealtimeBus,
    private readonly local: RealtimeStatsService,
    private readonly control: ClusterControl,
  ) {}

  onModuleInit(): void {
    this.bus.handle(ADMIN_TOPICS.stats, () => this.local.instanceStats());
    this.bus.handle(ADMIN_TOPICS.connections, (payload) => {
      if (!isJsonObject(payload) || !isTake(payload.take)) throw new Error('invalid page query');
      const userId = typeof payload.user_id === 'string' ? payload.user_id : undefined;
      return this.local.firstPage(userId, payload.take);
    });
    // Non-owners answer null (not an error), so that the asker need not wait for them.
    this.bus.handle(ADMIN_TOPICS.connection, (payload) => this.localDetails(idOf(payload)) ?? null);
  }

  async stats() {
    const { answers, reach } = await this.ask(ADMIN_TOPICS.stats, {}, isInstanceStats);
    const own: FromInstance<InstanceStats> = {
      instanceId: this.bus.instanceId,
      answer: this.local.instanceStats(),
    };
    const { instances, ...totals } = mergeStats([own, ...answers]);
    return {
      ...totals,
      server_info: { ...this.local.serverInfo(), instance_id: this.bus.instanceId },
      instances,
      ...reach,
    };
  }

  /** Summaries of every instance, in connected_at then connection_id order, one page of them. */
  async list(userId: string | undefined, limit: number, offset: number) {
    const take = offset + limit;
    const { answers, reach } = await this.ask(
      ADMIN_TOPICS.connections,
      { user_id: userId, take },
      isInstancePage,
    );
    if (answers.length === 0) {
      // Alone (or cut off): this instance's list in the order it admitted them, as before.
      const page = this.local.list(userId, limit, offset);
      const connections: ClusterSummary[] = page.connections.map((summary) => ({
        ...summary,
        instance_id: this.bus.instanceId,
      }));
      return { ...page, connections, ...reach };
    }
    const own: FromInstance<InstancePage> = {
      instanceId: this.bus.instanceId,
      answer: this.local.firstPage(userId, take),
    };
    const merged = mergePages([own, ...answers], offset, limit);
    return { total: merged.total, limit, offset, connections: merged.connections, ...reach };
  }

  /** This instance's live details of the connection, else its owner's. */
  async details(connectionId: string): Promise<Lookup<ClusterDetails>> {
    const local = this.localDetails(connectionId);
    if (local) return { found: true, value: local };
    const asked = await this.bus.request<unknown>(
      ADMIN_TOPICS.connection,
      { connection_id: connectionId },
      { until: (answer) => isJsonObject(answer) && answer.connection_id === connectionId },
    );
    for (const { instanceId, answer } of asked.answers) {
      if (isJsonObject(answer) && answer.connection_id === connectionId) {
        const details = answer as unknown as ConnectionDetails;
        return { found: true, value: { ...details, instance_id: instanceId } };
      }
    }
    // An instance that did not answer in time, or answered an error, may be the owner: not known,
    // so not a 404.
    return { found: false, degraded: answersIncomplete(asked) };
  }

  /**
   * Closes the connection with 4004 here, else has its owner start that close: the path of
   * RealtimeService.disconnectConnection.
   */
  async kick(connectionId: string): Promise<Lookup<{ instance_id: string }>> {
    const kicked = await this.control.disconnectConnection(
      connectionId,
      CloseCode.DISCONNECTED_BY_ADMIN,
      CloseReason.DISCONNECTED_BY_ADMIN,
    );
    if (kicked.disconnected) return { found: true, value: { instance_id: kicked.instanceId } };
    // An instance that did not answer in time, or answered an error, may be the owner: not known,
    // so not a 404.
    return { found: false, degraded: kicked.unanswered };
  }

  private localDetails(connectionId: string | undefined): ClusterDetails | undefined {
    const details = connectionId === undefined ? undefined : this.local.details(connectionId);
    return details && { ...details, instance_id: this.bus.instanceId };
  }

  /**
   * Asks every other live instance. An instance that was asked and is still alive, but gave no
   * answer of the right shape (timed out, failed, malformed), is unreachable.
   */
  private async ask<T>(
    topic: string,
    payload: unknown,
    valid: (answer: unknown) => answer is T,
  ): Promise<{ answers: Array<FromInstance<T>>; reach: ClusterReach }> {
    const asked = this.bus.liveInstances().filter((id) => id !== this.bus.instanceId);
    const result: ClusterAnswers<unknown> = await this.bus.request<unknown>(topic, payload);
    const answers = result.answers
      .filter((entry): entry is FromInstance<T> => valid(entry.answer))
      .sort((a, b) => compareIds(a.instanceId, b.instanceId));
    const answered = new Set(answers.map((entry) => entry.instanceId));
    const alive = new Set([...this.bus.liveInstances(), ...result.unreachable]);
    const unreachable = asked.filter((id) => !answered.has(id) && alive.has(id));
    return {
      answers,
      reach: { unreachable_instances: unreachable.sort(compareIds), degraded: result.degraded },
    };
  }
}

function idOf(payload: unknown): string | undefined {
  return isJsonObject(payload) && typeof payload.connection_id === 'string'
    ? payload.connection_id
    : undefined;
}

function isTake(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
