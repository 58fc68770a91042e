import { Redis, type RedisOptions } from 'ioredis';
import type { ReconnectTogether } from './reconnect-together.js';

/** Full-jitter exponential backoff between reconnect attempts, 50 ms to about 5 s. */
export function reconnectDelay(attempt: number): number {
  return Math.round(Math.random() * Math.min(5000, 100 * 2 ** attempt)) + 50;
}

/**
 * For connections whose commands must fail at once while Redis is down (publishes, rate-limit
 * counts): the module has its own bounded fallbacks, where ioredis would queue without bound.
 */
export const FAIL_FAST: RedisOptions = {
  retryStrategy: reconnectDelay,
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
};

/** For the subscriber: SUBSCRIBE must wait for a connection and be sent again after each one. */
export const RESUBSCRIBING: RedisOptions = {
  retryStrategy: reconnectDelay,
  autoResubscribe: true,
  maxRetriesPerRequest: null,
};

/**
 * A fail-fast connection from a URL, or a copy of the host's connection (its settings, with
 * fail-fast commands). Errors are not thrown as events: the owner reports the outage its way.
 * `reconnects`: the module's group it joins (see ReconnectTogether).
 */
export function failFastConnection(
  connection: string | Redis,
  reconnects: ReconnectTogether | undefined,
): Redis {
  const redis =
    typeof connection === 'string'
      ? new Redis(connection, FAIL_FAST)
      : connection.duplicate(FAIL_FAST);
  redis.on('error', () => undefined);
  reconnects?.add(redis);
  return redis;
}

/**
 * True for Redis's own refusal of a command (an error reply: NOPERM, OOM, WRONGTYPE, BUSY),
 * which came over a working connection; false for a connection that failed or closed.
 */
export function isErrorReply(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'ReplyError';
}
