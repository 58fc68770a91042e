import { isJsonObject } from '../../protocol/index.js';
import {
  averagePerUser,
  type ConnectionSummary,
  type InstancePage,
  type InstanceStats,
} from './realtime-stats.service.js';

/** One instance's answer, named by the instance that gave it. */
export interface FromInstance<T> {
  instanceId: string;
  answer: T;
}

/** A row of `instances` in `GET /ws/stats`. */
export interface InstanceRow {
  instance_id: string;
  total_connections: number;
  unique_users: number;
  messages_in: number;
  messages_out: number;
}

export type ClusterSummary = ConnectionSummary & { instance_id: string };

/** Cluster-wide totals from every instance's own counts; `rows` in the order given. */
export function mergeStats(all: Array<FromInstance<InstanceStats>>) {
  const perUser = new Map<string, number>();
  const subscriptions = new Map<string, number>();
  const rooms = new Map<string, number>();
  let total = 0;
  let messagesIn = 0;
  let messagesOut = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  const instances: InstanceRow[] = [];
  for (const { instanceId, answer } of all) {
    total += answer.total_connections;
    messagesIn += answer.messages_in;
    messagesOut += answer.messages_out;
    bytesIn += answer.bytes_in;
    bytesOut += answer.bytes_out;
    addCounts(perUser, answer.connections_per_user);
    addCounts(subscriptions, answer.subscriptions);
    addCounts(rooms, answer.rooms);
    instances.push({
      instance_id: instanceId,
      total_connections: answer.total_connections,
      unique_users: Object.keys(answer.connections_per_user).length,
      messages_in: answer.messages_in,
      messages_out: answer.messages_out,
    });
  }
  return {
    total_connections: total,
    // A user connected to two instances is one user.
    unique_users: perUser.size,
    connections_per_user: Object.fromEntries(perUser),
    average_connections_per_user: averagePerUser(total, perUser.size),
    subscriptions: Object.fromEntries(subscriptions),
    rooms: Object.fromEntries(rooms),
    messages_in: messagesIn,
    messages_out: messagesOut,
    bytes_in: bytesIn,
    bytes_out: bytesOut,
    instances,
  };
}

/** The page `offset`..`offset + limit` of the union of every instance's first page. */
export function mergePages(
  all: Array<FromInstance<InstancePage>>,
  offset: number,
  limit: number,
): { total: number; connections: ClusterSummary[] } {
  let total = 0;
  const merged: ClusterSummary[] = [];
  for (const { instanceId, answer } of all) {
    total += answer.total;
    for (const summary of answer.connections) merged.push({ ...summary, instance_id: instanceId });
  }
  merged.sort(inClusterOrder);
  return { total, connections: merged.slice(offset, offset + limit) };
}

/** By connected_at, then connection_id: the order of the list and of per-user eviction. */
export function inClusterOrder(a: ConnectionSummary, b: ConnectionSummary): number {
  const byTime = Date.parse(a.connected_at) - Date.parse(b.connected_at);
  if (byTime !== 0) return byTime;
  return a.connection_id < b.connection_id ? -1 : a.connection_id > b.connection_id ? 1 : 0;
}

// Answers come over a Redis that other applications may share: check their shape before use.

export function isInstanceStats(value: unknown): value is InstanceStats {
  return (
    isJsonObject(value) &&
    isCount(value.total_connections) &&
    isCount(value.messages_in) &&
    isCount(value.messages_out) &&
    isCount(value.bytes_in) &&
    isCount(value.bytes_out) &&
    isCounts(value.connections_per_user) &&
    isCounts(value.subscriptions) &&
    isCounts(value.rooms)
  );
}

export function isInstancePage(value: unknown): value is InstancePage {
  return (
    isJsonObject(value) &&
    isCount(value.total) &&
    Array.isArray(value.connections) &&
    value.connections.every(
      (c) =>
        isJsonObject(c) &&
        typeof c.connection_id === 'string' &&
        typeof c.user_id === 'string' &&
        typeof c.connected_at === 'string' &&
        !Number.isNaN(Date.parse(c.connected_at)),
    )
  );
}

function addCounts(into: Map<string, number>, counts: Record<string, number>): void {
  for (const [name, count] of Object.entries(counts)) into.set(name, (into.get(name) ?? 0) + count);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function isCounts(value: unknown): value is Record<string, number> {
  return isJsonObject(value) && Object.values(value).every(isCount);
}
