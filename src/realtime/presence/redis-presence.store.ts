import { Redis } from 'ioredis';
import type { ReconnectTogether } from '../bus/reconnect-together.js';
import { leaseKey } from '../bus/redis-bus-options.js';
import { failFastConnection, isErrorReply } from '../bus/redis-connections.js';
import { type PresenceAddResult, type PresenceEntry, PresenceStore } from './presence-store.js';
import { RealtimeSendError } from '../realtime-send.error.js';

// Keys, under the namespace: `presence:online` (set of users connected anywhere),
// `presence:user:<id>` (sorted set of `<connection>@<instance>` scored by connect time) and
// `presence:instance:<id>` (hash of its connections to their users, for reaping).
// Each script is atomic, so each transition is seen by exactly one caller.

const ADD = `
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
local added = redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1] .. '@' .. ARGV[4])
local size = redis.call('ZCARD', KEYS[2])
local online = 0
if added == 1 and size == 1 then
  redis.call('SADD', KEYS[1], ARGV[2])
  online = 1
end
local evict = {}
local excess = size - tonumber(ARGV[5])
if excess > 0 then evict = redis.call('ZRANGE', KEYS[2], 0, excess - 1, 'WITHSCORES') end
return { online, evict }`;

const REMOVE = `
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('ZREM', KEYS[2], ARGV[1] .. '@' .. ARGV[3]) == 1 and redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[2])
  return 1
end
return 0`;

// With KEYS[2] (the leases), an instance whose lease is there again is skipped: it renewed after
// it was found gone, and rewrites its part itself (a reap landing after that would undo it).
const REAP = `
local offline = {}
for i = 2, #ARGV do
  local instance = ARGV[i]
  if not KEYS[2] or not redis.call('ZSCORE', KEYS[2], instance) then
    local hash = ARGV[1] .. ':presence:instance:' .. instance
    local entries = redis.call('HGETALL', hash)
    for j = 1, #entries, 2 do
      local user = entries[j + 1]
      local zset = ARGV[1] .. ':presence:user:' .. user
      if redis.call('ZREM', zset, entries[j] .. '@' .. instance) == 1 and redis.call('ZCARD', zset) == 0 then
        redis.call('SREM', KEYS[1], user)
        table.insert(offline, user)
      end
    end
    redis.call('DEL', hash)
  end
end
return offline`;

/** Presence shared by every instance through Redis (one Redis, not Redis Cluster). */
export class RedisPresenceStore extends PresenceStore {
  private readonly redis: Redis;
  private readonly onlineKey: string;

  /** `connection`: a URL, or a connection to copy (its settings, with fail-fast commands). */
  constructor(
    connection: string | Redis,
    private readonly namespace: string,
    reconnects?: ReconnectTogether,
  ) {
    super();
    this.redis = failFastConnection(connection, reconnects);
    this.onlineKey = `${namespace}:presence:online`;
  }

  /**
   * This connection reconnects on its own backoff, not the bus's: after an outage it may be ready
   * seconds after the bus reported the reconnection, and a rewrite tried before then failed.
   */
  onReady(listener: () => void): void {
    this.redis.on('ready', listener);
  }

  override refused(error: unknown): boolean {
    return isErrorReply(error) && this.redis.status === 'ready';
  }

  async add(entry: PresenceEntry, perUserLimit: number): Promise<PresenceAddResult> {
    const [online, flat] = (await this.redis.eval(
      ADD,
      3,
      this.onlineKey,
      this.userKey(entry.userId),
      this.instanceKey(entry.instanceId),
      entry.connectionId,
      entry.userId,
      String(entry.connectedAt),
      entry.instanceId,
      String(perUserLimit),
    )) as [number, string[]];
    const evict: PresenceEntry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const member = flat[i]!;
      const at = member.lastIndexOf('@');
      evict.push({
        connectionId: member.slice(0, at),
        instanceId: member.slice(at + 1),
        userId: entry.userId,
        connectedAt: Number(flat[i + 1]),
      });
    }
    return { cameOnline: online === 1, evict };
  }

  async remove(entry: Omit<PresenceEntry, 'connectedAt'>): Promise<boolean> {
    const offline = await this.redis.eval(
      REMOVE,
      3,
      this.onlineKey,
      this.userKey(entry.userId),
      this.instanceKey(entry.instanceId),
      entry.connectionId,
      entry.userId,
      entry.instanceId,
    );
    return offline === 1;
  }

  async isOnline(userId: string): Promise<boolean> {
    return (await this.read(() => this.redis.sismember(this.onlineKey, userId))) === 1;
  }

  onlineUsers(): Promise<string[]> {
    return this.read(() => this.redis.smembers(this.onlineKey));
  }

  reap(instanceIds: readonly string[]): Promise<string[]> {
    return this.runReap([this.onlineKey], instanceIds);
  }

  override reapGone(instanceIds: readonly string[]): Promise<string[]> {
    return this.runReap([this.onlineKey, leaseKey(this.namespace)], instanceIds);
  }

  private async runReap(keys: string[], instanceIds: readonly string[]): Promise<string[]> {
    if (instanceIds.length === 0) return [];
    return (await this.redis.eval(
      REAP,
      keys.length,
      ...keys,
      this.namespace,
      ...instanceIds,
    )) as string[];
  }

  async forgetClosed(
    instanceId: string,
    isOpen: (connectionId: string) => boolean,
  ): Promise<string[]> {
    const entries = await this.redis.hgetall(this.instanceKey(instanceId));
    // Read now, after the answer: a connection closed meanwhile sent its own remove before this
    // one on the same Redis connection, so only one of them can report the user offline.
    const closed = Object.entries(entries).filter(([connectionId]) => !isOpen(connectionId));
    const offline = await Promise.all(
      closed.map(([connectionId, userId]) => this.remove({ connectionId, userId, instanceId })),
    );
    return closed.filter((_, index) => offline[index]).map(([, userId]) => userId);
  }

  close(): Promise<void> {
    this.redis.disconnect();
    return Promise.resolve();
  }

  /**
   * The cluster's presence is in Redis alone: while it is unreachable a read has no answer, and
   * the host gets the module's error, not ioredis's.
   */
  private async read<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      const cause = error instanceof Error ? error.message : String(error);
      throw new RealtimeSendError(
        'BUS_UNAVAILABLE',
        `Redis is unreachable (${cause}): the cluster's presence cannot be read now; retry later`,
      );
    }
  }

  private userKey(userId: string): string {
    return `${this.namespace}:presence:user:${userId}`;
  }

  private instanceKey(instanceId: string): string {
    return `${this.namespace}:presence:instance:${instanceId}`;
  }
}
