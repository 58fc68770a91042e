import type { Redis } from 'ioredis';

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
