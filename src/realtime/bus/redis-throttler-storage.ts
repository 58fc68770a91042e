import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { type ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { ReconnectTogether } from './reconnect-together.js';
import { failFastConnection } from './redis-connections.js';

type StorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

// A sliding-window log per key, on Redis's clock: drop hits older than the window, count the
// rest, add this one unless the limit is reached. Same answers as the in-memory storage.
// Replies [hits, ms until the oldest hit leaves the window, 1 when blocked else 0].
const INCREMENT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
local count = redis.call('ZCARD', KEYS[1])
local blocked = 0
if count >= limit then blocked = 1 else
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
end
redis.call('PEXPIRE', KEYS[1], ttl)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local left = ttl
if oldest[2] then left = tonumber(oldest[2]) + ttl - now end
return { count + blocked, left, blocked }`;

/** Name of {@link INCREMENT} as a command on the storage's own connection. */
const INCREMENT_COMMAND = 'realtimeRateLimitIncrement';

/** The connection with {@link INCREMENT} defined on it (see {@link withIncrement}). */
type IncrementingRedis = Redis & {
  [INCREMENT_COMMAND](
    key: string,
    ttl: string,
    limit: string,
    member: string,
  ): Promise<[hits: number, leftMs: number, blocked: number]>;
};

/**
 * Defines {@link INCREMENT} on `redis`: each hit then sends EVALSHA (the script's 40-character
 * hash, not its body), and the body with EVAL only on a connection's first call and after
 * NOSCRIPT (a Redis restart, a SCRIPT FLUSH). Hits are independent, so a hit that is sent again
 * after NOSCRIPT may run after a later one without changing any answer.
 */
function withIncrement(redis: Redis): IncrementingRedis {
  redis.defineCommand(INCREMENT_COMMAND, { numberOfKeys: 1, lua: INCREMENT });
  return redis as IncrementingRedis;
}

/**
 * The per-user message limit shared by every instance, kept in Redis. While Redis is
 * unreachable each instance counts on its own (in memory), so that its clients keep working.
 */
export class RedisThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly logger = new Logger('RealtimeRateLimit');
  private readonly redis: IncrementingRedis;
  private readonly local = new ThrottlerStorageService();
  private sequence = 0;
  private readonly instance = randomUUID().slice(0, 8);
  private degraded = false;

  /**
   * `connection`: a URL, or a connection to copy (its settings, with fail-fast commands).
   * `reconnects`: given by the module (see ReconnectTogether); a storage made by the host has none.
   */
  constructor(
    connection: string | Redis,
    private readonly namespace: string,
    reconnects?: ReconnectTogether,
  ) {
    this.redis = withIncrement(failFastConnection(connection, reconnects));
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<StorageRecord> {
    try {
      // Members must be unique per hit: instance, then a counter.
      const member = `${this.instance}:${this.sequence++}`;
      const [hits, leftMs, blocked] = await this.redis[INCREMENT_COMMAND](
        `${this.namespace}:rate:${throttlerName}:${key}`,
        String(ttl),
        String(limit),
        member,
      );
      this.setDegraded(false);
      const seconds = Math.max(0, Math.ceil(leftMs / 1000));
      return {
        totalHits: hits,
        timeToExpire: seconds,
        isBlocked: blocked === 1,
        timeToBlockExpire: blocked === 1 ? seconds : 0,
      };
    } catch {
      this.setDegraded(true);
      return this.local.increment(key, ttl, limit, blockDuration, throttlerName);
    }
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
    this.local.onApplicationShutdown();
  }

  private setDegraded(degraded: boolean): void {
    if (degraded === this.degraded) return;
    this.degraded = degraded;
    if (degraded) {
      this.logger.warn({
        event: 'rate_limit.local_only',
        detail: 'Redis unreachable: each instance counts on its own',
      });
    } else {
      this.logger.log({
        event: 'rate_limit.shared',
        detail: 'Redis reachable again: the limit is cluster-wide',
      });
    }
  }
}
