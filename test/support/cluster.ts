import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  RealtimeBus,
  type RealtimeModuleOptions,
  RealtimeService,
  RedisBus,
  type RedisBusOptions,
} from '../../src/realtime/index.js';
import { Redis } from 'ioredis';
import { FAIL_FAST, RESUBSCRIBING } from '../../src/realtime/bus/redis-connections.js';
import { startTestApp, type StartOptions, type TestApp } from './test-app.js';
import { eventually } from './test-client.js';

/** Bound on the wait for every instance to see every other one. */
const MEMBERSHIP_TIMEOUT_MS = 10_000;
/** Bound on closing one app. */
const CLOSE_TIMEOUT_MS = 10_000;

/** One app of a cluster, with its service and its bus at hand. */
export interface ClusterInstance extends TestApp {
  index: number;
  service: RealtimeService;
  bus: RedisBus;
}

export interface Cluster {
  /** Redis key and channel prefix of this cluster only. */
  namespace: string;
  instances: ClusterInstance[];
  /** Waits (bounded) until every open instance is connected and lists exactly the open ones. */
  waitForMembership(timeoutMs?: number): Promise<void>;
  /** Closes every instance (bounded each); safe to call twice. */
  close(): Promise<void>;
}

let clusters = 0;

/** A namespace no other test (or run) uses. */
export function uniqueNamespace(prefix = 'test'): string {
  return `${prefix}-${process.pid}-${++clusters}-${randomUUID().slice(0, 8)}`;
}

/** `app.close()`, failing instead of hanging past the bound. */
export async function closeWithin(app: TestApp, ms = CLOSE_TIMEOUT_MS): Promise<void> {
  const timeout = sleep(ms, 'timeout' as const, { ref: false });
  const result = await Promise.race([app.close().then(() => 'closed' as const), timeout]);
  assert.equal(result, 'closed', `app.close() did not resolve within ${ms} ms`);
}

/**
 * Where one instance's bus publishes and subscribes, when they differ (one behind a proxy): the
 * instance gets its own ioredis connections, made as the bus makes them from a `url`.
 */
export interface SplitRedisUrls {
  publisher: string;
  subscriber: string;
}

/**
 * Boots `count` apps (each on its own port) sharing one Redis namespace, unique to this cluster,
 * and waits until each one lists all of them as live. `redisUrl` may give one URL per instance
 * (for example one behind a proxy), or for an instance a URL each for publishing and
 * subscribing. A `redis` object in `realtimeOptions` adds bus options (leaseMs,
 * maxBufferedPublishes, ...); the connection and namespace are filled in.
 */
export async function startCluster(
  count: number,
  redisUrl: string | readonly (string | SplitRedisUrls)[],
  realtimeOptions: Partial<RealtimeModuleOptions> = {},
  startOptions: Omit<StartOptions, 'realtime'> = {},
): Promise<Cluster> {
  const { redis, ...rest } = realtimeOptions;
  const busOptions: RedisBusOptions = typeof redis === 'object' ? redis : {};
  const namespace = busOptions.namespace ?? uniqueNamespace('cluster');
  const instances: ClusterInstance[] = [];
  const closedApps = new Set<ClusterInstance>();

  const closeAll = async () => {
    const results = await Promise.allSettled(instances.map((instance) => closeWithin(instance)));
    const failed = results.filter((r) => r.status === 'rejected');
    assert.deepEqual(failed, [], 'every instance closes within the bound');
  };

  const waitForMembership = async (timeoutMs = MEMBERSHIP_TIMEOUT_MS) => {
    const open = instances.filter((instance) => !closedApps.has(instance));
    const ids = open.map((instance) => instance.bus.instanceId).sort();
    await eventually(
      () =>
        open.every(
          (instance) =>
            instance.bus.isConnected() &&
            JSON.stringify([...instance.bus.liveInstances()].sort()) === JSON.stringify(ids),
        ),
      timeoutMs,
      `every instance connected and listing the ${open.length} live instances`,
    );
  };

  try {
    for (let index = 0; index < count; index++) {
      const url = typeof redisUrl === 'string' ? redisUrl : redisUrl[index];
      assert.ok(url, `a Redis URL for instance ${index}`);
      // The bus does not close connections it was given: the instance's close does.
      const clients =
        typeof url === 'string'
          ? undefined
          : {
              publisher: new Redis(url.publisher, FAIL_FAST),
              subscriber: new Redis(url.subscriber, RESUBSCRIBING),
            };
      const quitClients = () => {
        clients?.publisher.disconnect();
        clients?.subscriber.disconnect();
      };
      const connection = clients ? { clients } : { url: url as string };
      let app: TestApp;
      try {
        app = await startTestApp({
          ...startOptions,
          realtime: { ...rest, redis: { ...busOptions, ...connection, namespace } },
        });
      } catch (error) {
        quitClients();
        throw error;
      }
      const bus = app.app.get(RealtimeBus);
      const instance: ClusterInstance = {
        ...app,
        index,
        service: app.app.get(RealtimeService),
        bus: bus as RedisBus,
        close: async () => {
          closedApps.add(instance);
          try {
            await app.close();
          } finally {
            quitClients();
          }
        },
      };
      instances.push(instance);
      assert.ok(bus instanceof RedisBus, `instance ${index} runs a RedisBus`);
    }
    await waitForMembership();
  } catch (error) {
    await closeAll().catch(() => undefined);
    throw error;
  }
  return { namespace, instances, waitForMembership, close: closeAll };
}
