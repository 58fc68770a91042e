import type { Redis } from 'ioredis';
import { MAX_TIMER_MS } from '../timer-limits.js';

/** How a {@link RedisBus} reaches Redis and behaves when it cannot. */
export interface RedisBusOptions {
  /** `redis://host:port/db`. Give this or `clients`. */
  url?: string;
  /**
   * Your own ioredis connections; two are needed because a subscribed connection cannot publish.
   * The bus does not close them.
   */
  clients?: { publisher: Redis; subscriber: Redis };
  /** Prefix of every key and channel, so that several apps can share one Redis. @default 'realtime' */
  namespace?: string;
  /** This instance's id in the cluster. @default a random UUID */
  instanceId?: string;
  /** An instance that stops renewing its lease is gone after this long, ms. @default 10000 */
  leaseMs?: number;
  /** How long to wait for other instances to answer (counts, admin requests), ms. @default 5000 */
  requestTimeoutMs?: number;
  /** Publishes kept while Redis is unreachable; past it a send fails. @default 1000 */
  maxBufferedPublishes?: number;
}

export const REDIS_BUS_DEFAULTS = {
  namespace: 'realtime',
  leaseMs: 10_000,
  requestTimeoutMs: 5_000,
  maxBufferedPublishes: 1_000,
} as const;

/**
 * The sorted set of the instances' leases in `namespace` (member: instance id, score: when its
 * lease ends, on Redis's clock).
 */
export function leaseKey(namespace: string): string {
  return `${namespace}:instances`;
}

/**
 * Why the durations and sizes of `options` cannot work, naming the option (`redis.leaseMs` with
 * the default prefix), or undefined when they can. Unset ones take their defaults.
 */
export function redisBusOptionsProblem(
  options: RedisBusOptions,
  prefix = 'redis.',
): string | undefined {
  for (const key of ['leaseMs', 'requestTimeoutMs'] as const) {
    const value = options[key];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value <= 0) {
      return `${prefix}${key} must be a positive integer, got ${String(value)}`;
    }
    if (value > MAX_TIMER_MS) {
      return `${prefix}${key} must be at most ${MAX_TIMER_MS} ms (Node's timers)`;
    }
  }
  const buffered = options.maxBufferedPublishes;
  if (buffered !== undefined && (!Number.isSafeInteger(buffered) || buffered <= 0)) {
    return `${prefix}maxBufferedPublishes must be a positive safe integer, got ${String(buffered)}`;
  }
  return undefined;
}
