import type { RealtimeModuleOptions } from '../../src/realtime/index.js';
import { type Cluster, startCluster } from './cluster.js';
import { startRedisServer, type RedisServer } from './redis-server.js';
import type { StartOptions } from './test-app.js';

/** A private redis-server and a cluster on it, to be closed together. */
export interface RedisCluster {
  /** To stop or restart Redis under the cluster, or to reach it directly. */
  redis: RedisServer;
  cluster: Cluster;
  /** Closes the cluster, then stops the redis-server, even when the close fails. */
  close(): Promise<void>;
}

/**
 * Starts a redis-server and `count` instances on it; undefined when redis-server is not
 * installed (see requireRedis). The options are startCluster's.
 */
export async function startRedisCluster(
  count: number,
  realtimeOptions: Partial<RealtimeModuleOptions> = {},
  startOptions: Omit<StartOptions, 'realtime'> = {},
): Promise<RedisCluster | undefined> {
  const redis = await startRedisServer();
  if (!redis) return undefined;
  try {
    const cluster = await startCluster(count, redis.url, realtimeOptions, startOptions);
    return {
      redis,
      cluster,
      close: async () => {
        try {
          await cluster.close();
        } finally {
          await redis.stop();
        }
      },
    };
  } catch (error) {
    await redis.stop();
    throw error;
  }
}
