import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { RealtimeSendError, RealtimeService } from '../src/realtime/index.js';
import {
  type ClusterInstance,
  startCluster,
  type Cluster,
  uniqueNamespace,
} from './support/cluster.js';
import { ConnectionRegistry } from '../src/realtime/registry/connection-registry.js';
import { PresenceStore } from '../src/realtime/presence/presence-store.js';
import { freePort } from './support/free-port.js';
import { type ProxiedCluster, startProxiedCluster } from './support/proxied-cluster.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import {
  redisCommand,
  requireRedis,
  startRedisServer,
  type RedisServer,
} from './support/redis-server.js';
import { TEST_SECRET } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';

const LEASE_MS = 1500;

function statusesOf(client: TestClient, userId: string): string[] {
  return client
    .ofType('user.status_changed')
    .filter((m) => m.data.user_id === userId)
    .map((m) => m.data.status);
}

describe('presence across instances', () => {
  let setup: RedisCluster | undefined;
  const watchers: TestClient[] = [];

  before(async () => {
    setup = await startRedisCluster(3, {
      maxConnectionsPerUser: 2,
      redis: { leaseMs: LEASE_MS },
    });
    if (!setup) return;
    for (const instance of setup.cluster.instances) {
      const watcher = await TestClient.open(
        instance.wsUrl,
        instance.token(`watcher-${instance.index}`),
      );
      await watcher.request({ type: 'subscribe', data: { events: ['user.status_changed'] } });
      watchers.push(watcher);
    }
  });
  after(async () => {
    for (const watcher of watchers) watcher.close();
    await setup?.close();
  });

  it('announces online and offline once each, to watchers on every instance', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup.cluster.instances;
    const first = await TestClient.open(a!.wsUrl, a!.token('erin'));
    const second = await TestClient.open(b!.wsUrl, b!.token('erin'));
    await eventually(
      () => watchers.every((w) => statusesOf(w, 'erin').length >= 1),
      3000,
      'online seen',
    );
    first.close();
    second.close();
    await eventually(
      () => watchers.every((w) => statusesOf(w, 'erin').length >= 2),
      3000,
      'offline seen',
    );
    for (const watcher of watchers) await watcher.request({ type: 'ping' });
    for (const watcher of watchers)
      assert.deepEqual(statusesOf(watcher, 'erin'), ['online', 'offline']);
  });

  it('tells on every instance who is connected anywhere', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, , c] = setup.cluster.instances;
    const client = await TestClient.open(a!.wsUrl, a!.token('frank'));
    assert.equal(await c!.service.isUserConnected('frank'), true);
    assert.ok((await c!.service.getConnectedUsers()).includes('frank'));
    client.close();
    await eventually(async () => !(await c!.service.isUserConnected('frank')), 3000, 'frank gone');
  });

  it('evicts the oldest connection of the user, on whichever instance it is (4008)', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b, c] = setup.cluster.instances;
    const oldest = await TestClient.open(a!.wsUrl, a!.token('gina'));
    const middle = await TestClient.open(b!.wsUrl, b!.token('gina'));
    const newest = await TestClient.open(c!.wsUrl, c!.token('gina'));
    const closed = await oldest.waitClose(5000);
    assert.equal(closed.code, 4008);
    assert.equal(oldest.ofType('error').at(-1)?.data.code, 'CONNECTION_LIMIT_EXCEEDED');
    assert.equal((await middle.request({ type: 'ping' })).type, 'pong');
    assert.equal((await newest.request({ type: 'ping' })).type, 'pong');
    middle.close();
    newest.close();
  });

  it('lists room members of every instance', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b, c] = setup.cluster.instances;
    const onA = await TestClient.open(a!.wsUrl, a!.token('hal'));
    const onC = await TestClient.open(c!.wsUrl, c!.token('ivy'));
    a!.service.joinRoom('team', { userId: 'hal' });
    c!.service.joinRoom('team', { userId: 'ivy' });
    const members = await b!.service.getRoomMembers('team');
    assert.deepEqual([...members.userIds].sort(), ['hal', 'ivy']);
    assert.equal(await b!.service.getRoomSize('team'), 2);
    assert.equal(await b!.service.sendToRoom('team', 'team.note', { n: 1 }), 2);
    assert.equal((await onA.next('team.note')).data.n, 1);
    assert.equal((await onC.next('team.note')).data.n, 1);
    onA.close();
    onC.close();
  });
});

/**
 * A demo app in its own process, in `namespace` on `redisUrl`, with `ghost` connected to it and
 * seen online by `survivor`'s presence and `watcher`.
 */
async function ghostInstance(
  redisUrl: string,
  namespace: string,
  survivor: ClusterInstance,
  watcher: TestClient,
): Promise<{ child: ChildProcess; ghost: TestClient }> {
  const port = await freePort();
  const main = fileURLToPath(new URL('../src/demo/main.js', import.meta.url));
  const child = spawn(process.execPath, [main], {
    env: {
      ...process.env,
      PORT: String(port),
      JWT_SECRET: TEST_SECRET,
      REDIS_URL: redisUrl,
      REALTIME_REDIS_NAMESPACE: namespace,
      REALTIME_LEASE_MS: String(LEASE_MS),
    },
    stdio: 'ignore',
  });
  const doomedUrl = `ws://127.0.0.1:${port}/ws`;
  let ghost: TestClient | undefined;
  try {
    await eventually(
      async () => {
        const client = TestClient.connect(doomedUrl, survivor.token('ghost'));
        try {
          await client.next('connection.established', 500);
          ghost = client;
          return true;
        } catch {
          client.close();
          return false;
        }
      },
      10_000,
      'the child instance accepts a connection',
    );
    await eventually(async () => survivor.service.isUserConnected('ghost'), 3000, 'ghost seen');
    await eventually(() => statusesOf(watcher, 'ghost').length === 1, 3000, 'online announced');
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return { child, ghost: ghost! };
}

/** Kills `child` at once, as a crash would: no close, no cleanup of its presence. */
async function crash(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  await once(child, 'exit');
}

describe('an instance that dies without cleanup', () => {
  let redis: RedisServer | undefined;
  const clusters: Cluster[] = [];
  const children: ChildProcess[] = [];

  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    for (const cluster of clusters) await cluster.close();
    await redis?.stop();
  });

  /** One instance in `namespace` reached by `survivorUrl`, a watcher on it, and a ghost elsewhere. */
  async function survivorAndGhost(survivorUrl: string, namespace: string) {
    const cluster = await startCluster(1, survivorUrl, { redis: { leaseMs: LEASE_MS, namespace } });
    clusters.push(cluster);
    const survivor = cluster.instances[0]!;
    const watcher = await TestClient.open(survivor.wsUrl, survivor.token('watcher'));
    await watcher.request({ type: 'subscribe', data: { events: ['user.status_changed'] } });
    const started = await ghostInstance(redis!.url, namespace, survivor, watcher);
    children.push(started.child);
    return { survivor, watcher, ...started };
  }

  it('vanishes from presence within two leases, and its users are announced offline once', async (t) => {
    if (!requireRedis(t, redis)) return;
    const { survivor, watcher, child, ghost } = await survivorAndGhost(
      redis.url,
      uniqueNamespace('ghosts'),
    );
    await crash(child);
    await eventually(
      async () => !(await survivor.service.isUserConnected('ghost')),
      2 * LEASE_MS + 1000,
      'the ghost to vanish',
    );
    await eventually(() => statusesOf(watcher, 'ghost').length === 2, 3000, 'offline announced');
    await watcher.request({ type: 'ping' });
    assert.deepEqual(statusesOf(watcher, 'ghost'), ['online', 'offline']);
    assert.deepEqual(survivor.bus.liveInstances(), [survivor.bus.instanceId]);
    ghost.close();
    watcher.close();
  });

  it('is reaped once Redis takes the reap it refused: its users do not stay online for good', async (t) => {
    if (!requireRedis(t, redis)) return;
    const USER = 'survivor';
    const namespace = uniqueNamespace('unreaped');
    const acl = (rules: string) => redisCommand(redis!.port, `ACL SETUSER ${USER} ${rules}`);
    assert.match((await acl(`on >${USER} ~* &* +@all`)) ?? '', /^\+OK/);
    const url = redis.url.replace('redis://', `redis://${USER}:${USER}@`);
    const { survivor, watcher, child, ghost } = await survivorAndGhost(url, namespace);

    // The survivor keeps its lease, its history and its rate limits, but presence is denied to
    // it: the reap that follows the lapse of the dead instance's lease is refused.
    const allowed = ['instances', 'rate:*', 'history:*'].map((key) => `~${namespace}:${key}`);
    assert.match((await acl(`resetkeys ${allowed.join(' ')}`)) ?? '', /^\+OK/);
    await crash(child);
    await eventually(
      () => survivor.bus.liveInstances().length === 1,
      2 * LEASE_MS + 1000,
      'the dead instance reported gone',
    );
    await sleep(300);
    const online = `SISMEMBER ${namespace}:presence:online ghost`;
    assert.equal((await redisCommand(redis.port, online))?.trim(), ':1', 'the reap was refused');
    assert.match((await acl('allkeys')) ?? '', /^\+OK/);
    await eventually(
      async () => !(await survivor.service.isUserConnected('ghost')),
      10_000,
      'the ghost to vanish',
    );
    await eventually(() => statusesOf(watcher, 'ghost').length === 2, 3000, 'offline announced');
    await watcher.request({ type: 'ping' });
    assert.deepEqual(statusesOf(watcher, 'ghost'), ['online', 'offline']);
    ghost.close();
    watcher.close();
  });
});

/** A host that ends connections inside its own `connectionOpened$` observer. */
@Injectable()
class CloseAtOpen implements OnModuleDestroy {
  /** Users whose new connections are closed at once. */
  readonly refuse = new Set<string>();
  /** Users whose previous connection here is closed when a new one opens here. */
  readonly replace = new Set<string>();
  /** Also run inside the observer, for every connection that opens here. */
  onOpen: ((userId: string) => void) | undefined;
  private readonly last = new Map<string, string>();
  private readonly subscription: Subscription;

  constructor(service: RealtimeService) {
    // In the constructor, before any onModuleInit: this observer runs ahead of presence's own.
    this.subscription = service.connectionOpened$.subscribe(({ userId, connectionId }) => {
      const previous = this.last.get(userId);
      this.last.set(userId, connectionId);
      if (this.refuse.has(userId)) service.disconnectConnection(connectionId);
      else if (this.replace.has(userId) && previous) service.disconnectConnection(previous);
      this.onOpen?.(userId);
    });
  }

  onModuleDestroy(): void {
    this.subscription.unsubscribe();
  }
}

describe('presence of connections a host closes as they open (Redis)', () => {
  let setup: RedisCluster | undefined;
  const watchers: TestClient[] = [];

  before(async () => {
    setup = await startRedisCluster(2, {}, { providers: [CloseAtOpen] });
    if (!setup) return;
    for (const instance of setup.cluster.instances) {
      const watcher = await TestClient.open(
        instance.wsUrl,
        instance.token(`watcher-${instance.index}`),
      );
      await watcher.request({ type: 'subscribe', data: { events: ['user.status_changed'] } });
      watchers.push(watcher);
    }
  });
  after(async () => {
    for (const watcher of watchers) watcher.close();
    await setup?.close();
  });

  /**
   * A user coming and going on each instance after the case. Presence calls of one instance
   * reach Redis in order, and announcements of one instance go out in order: once every watcher
   * saw the markers, whatever the case announced is in.
   */
  async function markers(name: string): Promise<void> {
    for (const instance of setup!.cluster.instances) {
      const userId = `${name}-${instance.index}`;
      const client = await TestClient.open(instance.wsUrl, instance.token(userId));
      await eventually(
        () => watchers.every((w) => statusesOf(w, userId).length === 1),
        3000,
        `${userId} online`,
      );
      client.close();
      await eventually(
        () => watchers.every((w) => statusesOf(w, userId).length === 2),
        3000,
        `${userId} offline`,
      );
    }
  }

  /** What every watcher saw of `userId`, after a ping round trip each. */
  async function seen(userId: string): Promise<string[][]> {
    for (const watcher of watchers) await watcher.request({ type: 'ping' });
    return watchers.map((w) => statusesOf(w, userId));
  }

  async function offlineSeen(userId: string): Promise<void> {
    await eventually(
      () => watchers.every((w) => statusesOf(w, userId).includes('offline')),
      3000,
      `${userId} offline`,
    );
  }

  const everywhere = (statuses: string[]) => watchers.map(() => statuses);

  /**
   * After the case (`marker` users come and go), every watcher saw `userId` online once and
   * never offline; then `last`, the user's remaining connection, closes: offline once.
   */
  async function assertOnlineOnceThenOffline(userId: string, marker: string, last: TestClient) {
    await markers(marker);
    assert.deepEqual(await seen(userId), everywhere(['online']), 'never offline while connected');
    last.close();
    await offlineSeen(userId);
    assert.deepEqual(await seen(userId), everywhere(['online', 'offline']));
  }

  // The reference for the in-process store (presence.e2e): no offline without an online.
  it('announces nothing for a user whose only connection closed in the observer', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const instance = setup.cluster.instances[0]!;
    instance.app.get(CloseAtOpen).refuse.add('ghost');
    const ghost = TestClient.connect(instance.wsUrl, instance.token('ghost'));
    assert.equal((await ghost.waitClose()).code, 4004);
    await markers('marker-1');
    assert.deepEqual(await seen('ghost'), everywhere([]));
  });

  it('announces a user once while a new connection replaces the old one in the observer', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const instance = setup.cluster.instances[0]!;
    instance.app.get(CloseAtOpen).replace.add('swap');
    const first = await TestClient.open(instance.wsUrl, instance.token('swap'));
    const second = await TestClient.open(instance.wsUrl, instance.token('swap'));
    assert.equal((await first.waitClose()).code, 4004);
    await assertOnlineOnceThenOffline('swap', 'marker-2', second);
  });

  it('announces a user once while a new connection on one instance replaces the old one on another', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup.cluster.instances;
    const first = await TestClient.open(a!.wsUrl, a!.token('roam'));
    const firstId = first.received[0]!.data.connection_id as string;
    // B's observer closes the user's connection on A: disconnectConnection asks A over the bus.
    b!.app.get(CloseAtOpen).onOpen = (userId) => {
      if (userId === 'roam') void b!.service.disconnectConnection(firstId);
    };
    const second = await TestClient.open(b!.wsUrl, b!.token('roam'));
    assert.equal((await first.waitClose()).code, 4004);
    await assertOnlineOnceThenOffline('roam', 'marker-3', second);
  });

  it('announces a user once whose old connection on one instance closes right after a new one opened on another', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup.cluster.instances;
    const first = await TestClient.open(a!.wsUrl, a!.token('hop'));
    const second = await TestClient.open(b!.wsUrl, b!.token('hop'));
    first.close();
    await first.waitClose();
    await assertOnlineOnceThenOffline('hop', 'marker-4', second);
  });
});

describe('presence reads while Redis is unreachable', () => {
  let setup: RedisCluster | undefined;
  const clients: TestClient[] = [];

  before(async () => {
    setup = await startRedisCluster(2, { redis: { leaseMs: LEASE_MS } });
  });
  after(async () => {
    for (const client of clients) client.close();
    await setup?.close();
  });

  it('answers for local users, rejects with BUS_UNAVAILABLE for the rest, readable again after', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
    clients.push(await TestClient.open(a.wsUrl, a.token('reader-here')));
    clients.push(await TestClient.open(b.wsUrl, b.token('reader-there')));
    await eventually(
      async () => await a.service.isUserConnected('reader-there'),
      3000,
      'the user on B seen from A',
    );
    await setup.redis.stop();
    const unavailable = (error: unknown) => {
      assert.ok(error instanceof RealtimeSendError, String(error));
      assert.equal(error.code, 'BUS_UNAVAILABLE');
      assert.match(error.message, /presence cannot be read/);
      return true;
    };
    // A local connection needs no Redis; anyone else's presence is in Redis alone.
    assert.equal(await a.service.isUserConnected('reader-here'), true);
    await assert.rejects(a.service.isUserConnected('reader-there'), unavailable);
    await assert.rejects(a.service.getConnectedUsers(), unavailable);
    // Readable again once Redis answers (what it then holds is the rewrite's business).
    await setup.redis.start();
    await eventually(
      () => a.service.getConnectedUsers().then(Array.isArray, () => false),
      10_000,
      'presence readable again',
    );
  });
});

describe('presence rewritten after an instance reconnects (Redis kept its data)', () => {
  let setup: ProxiedCluster | undefined;
  let watcher: TestClient | undefined;
  const clients: TestClient[] = [];

  before(async () => {
    // Instance 0 behind the proxy; long leases: the cut is an outage, not a death.
    setup = await startProxiedCluster(2, 0, { redis: { leaseMs: 30_000, requestTimeoutMs: 1000 } });
    if (!setup) return;
    const b = setup.cluster.instances[1]!;
    watcher = await TestClient.open(b.wsUrl, b.token('watcher'));
    await watcher.request({ type: 'subscribe', data: { events: ['user.status_changed'] } });
  });
  after(async () => {
    for (const client of clients) client.close();
    watcher?.close();
    await setup?.close();
  });

  const open = async (instance: ClusterInstance, userId: string) => {
    const client = await TestClient.open(instance.wsUrl, instance.token(userId));
    clients.push(client);
    return client;
  };

  it('keeps a user connected there online while the rewrite runs, whatever closes elsewhere', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const { proxied: p, cluster, cutOff, restore } = setup;
    const b = cluster.instances[1]!;
    await open(p, 'steady');
    const elsewhere = await open(b, 'steady');
    await eventually(() => statusesOf(watcher!, 'steady').length === 1, 3000, 'online seen');

    // The rewrite's adds wait at a gate: whatever it did before them is done by then.
    const store = p.app.get(PresenceStore);
    const add = store.add.bind(store);
    let entered = false;
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    store.add = async (...args: Parameters<PresenceStore['add']>) => {
      entered = true;
      await gate;
      return add(...args);
    };
    try {
      await cutOff();
      await restore();
      await eventually(() => entered, 10_000, 'the rewrite reaching its adds');
      const registry = b.app.get(ConnectionRegistry);
      const before = registry.size;
      elsewhere.close();
      await eventually(() => registry.size === before - 1, 3000, 'B forgetting the connection');
      // On B's presence connection, after B's remove.
      assert.equal(await b.service.isUserConnected('steady'), true, 'still connected on P');
    } finally {
      store.add = add;
      release();
    }
    await eventually(() => p.bus.isConnected(), 10_000, 'P connected');
    await watcher!.request({ type: 'ping' });
    assert.deepEqual(statusesOf(watcher!, 'steady'), ['online']);
  });

  it('announces offline a user whose last connection there closed during the outage', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const { proxied: p, cutOff, restore } = setup;
    const leaving = await open(p, 'leaver');
    await eventually(() => statusesOf(watcher!, 'leaver').length === 1, 3000, 'online seen');
    await cutOff();
    const registry = p.app.get(ConnectionRegistry);
    const before = registry.size;
    leaving.close();
    await eventually(() => registry.size === before - 1, 3000, 'P forgetting the connection');
    await restore();
    await eventually(
      () => statusesOf(watcher!, 'leaver').length === 2,
      10_000,
      'offline seen after the rewrite',
    );
    assert.deepEqual(statusesOf(watcher!, 'leaver'), ['online', 'offline']);
    assert.equal(await p.service.isUserConnected('leaver'), false);
  });
});
