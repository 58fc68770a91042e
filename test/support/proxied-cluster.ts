import type { RealtimeModuleOptions } from '../../src/realtime/index.js';
import {
  type Cluster,
  type ClusterInstance,
  type SplitRedisUrls,
  startCluster,
} from './cluster.js';
import { redisCommand, startRedisServer, type RedisServer } from './redis-server.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
import { eventually } from './test-client.js';

/** Bound on the proxied instance noticing a cut, and on its reconnection after a restore. */
const CUT_OFF_WAIT_MS = 10_000;

/**
 * A private redis-server and a cluster on it in which one instance reaches Redis through a TCP
 * proxy, so that a test can cut that instance off from Redis (and from the others) and restore
 * it while the others keep their direct connections.
 */
export interface ProxiedCluster {
  redis: RedisServer;
  proxy: TcpProxy;
  cluster: Cluster;
  /** The instance behind the proxy. */
  proxied: ClusterInstance;
  /** Cuts the proxied instance off; resolves once its bus says it cannot reach the others. */
  cutOff(): Promise<void>;
  /**
   * Restores the path; resolves once the proxied instance reported its reconnection, or its
   * resubscription when only its subscriber is proxied (after its own listeners ran), and every
   * instance lists every other one again.
   */
  restore(): Promise<void>;
  /** Closes the cluster, then the proxy and the redis-server. */
  close(): Promise<void>;
}

/**
 * Starts `count` instances, the one at `proxiedIndex` behind the proxy; undefined when
 * redis-server is not installed (see requireRedis). A `redis` object in `realtimeOptions` adds
 * bus options, as for startCluster. `proxied: 'subscriber'` sends only that instance's
 * subscription through the proxy: a cut then costs it what the others publish, not its own
 * publishing. `user`: the proxied instance logs in as a Redis ACL user of that name (and
 * password), allowed everything, on both its connections, so that a test can take commands away
 * from it alone.
 */
export async function startProxiedCluster(
  count: number,
  proxiedIndex: number,
  realtimeOptions: Partial<RealtimeModuleOptions> = {},
  { proxied: proxiedPath = 'all', user }: { proxied?: 'all' | 'subscriber'; user?: string } = {},
): Promise<ProxiedCluster | undefined> {
  const redis = await startRedisServer();
  if (!redis) return undefined;
  let proxy: TcpProxy | undefined;
  try {
    proxy = await startTcpProxy(redis.port);
    let login = '';
    if (user) {
      const reply = await redisCommand(redis.port, `ACL SETUSER ${user} on >${user} ~* &* +@all`);
      if (!reply?.startsWith('+OK')) throw new Error(`ACL SETUSER ${user} answered ${reply}`);
      login = `${user}:${user}@`;
    }
    const proxyUrl = `redis://${login}127.0.0.1:${proxy.port}`;
    const directUrl = `redis://${login}127.0.0.1:${redis.port}`;
    const urls = Array.from({ length: count }, (_, index): string | SplitRedisUrls => {
      if (index !== proxiedIndex) return redis.url;
      return proxiedPath === 'all' ? proxyUrl : { publisher: directUrl, subscriber: proxyUrl };
    });
    const restored = proxiedPath === 'all' ? 'reconnected' : 'resubscribed';
    const cluster = await startCluster(count, urls, realtimeOptions);
    const proxied = cluster.instances[proxiedIndex]!;
    const path = proxy;
    return {
      redis,
      proxy,
      cluster,
      proxied,
      cutOff: async () => {
        await path.cut();
        await eventually(() => !proxied.bus.isConnected(), CUT_OFF_WAIT_MS, 'losing Redis');
      },
      restore: async () => {
        let reconnected = false;
        proxied.bus.onClusterChange((change) => {
          if (change.kind === restored) reconnected = true;
        });
        await path.restore();
        await eventually(() => reconnected, CUT_OFF_WAIT_MS, 'the reconnection after a cut');
        await cluster.waitForMembership(CUT_OFF_WAIT_MS);
      },
      close: async () => {
        try {
          await cluster.close();
        } finally {
          await path.close();
          await redis.stop();
        }
      },
    };
  } catch (error) {
    await proxy?.close();
    await redis.stop();
    throw error;
  }
}
