import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ClusterChange,
  RealtimeBus,
  RealtimeService,
  RedisBus,
  type RedisBusOptions,
} from '../src/realtime/index.js';
import { type ClusterInstance, uniqueNamespace } from './support/cluster.js';
import {
  redisCommand,
  requireRedis,
  type RedisServer,
  startRedisServer,
} from './support/redis-server.js';
import { type ProxiedCluster, startProxiedCluster } from './support/proxied-cluster.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';

// Short leases keep an outage longer than a lease to a few seconds.
const LEASE_MS = 1500;
const BUS = { leaseMs: LEASE_MS, requestTimeoutMs: 1000 };
/** Bound on the peer reporting the cut-off instance gone (a lease, then its next renewal). */
const GONE_WAIT_MS = 3 * LEASE_MS + 2000;
/** Bound on presence being whole again once the cut-off instance can reach Redis. */
const WHOLE_WAIT_MS = 10_000;
/** How long presence must then stay whole: a reap landing late is seen within it. */
const STAY_MS = 2 * LEASE_MS;
const USERS = ['alice', 'bob'];

interface Node {
  name: string;
  service: RealtimeService;
  bus: RealtimeBus;
}

/** What an instance says about presence now: the sorted users, or why it could not say. */
async function viewOf(node: Node): Promise<string> {
  try {
    return JSON.stringify([...(await node.service.getConnectedUsers())].sort());
  } catch (error) {
    return `error: ${String(error)}`;
  }
}

/**
 * Every node lists exactly `USERS` within {@link WHOLE_WAIT_MS}, and keeps listing them for
 * {@link STAY_MS}; a failure says what each node said.
 */
async function presenceWholeAndStays(nodes: readonly Node[]): Promise<void> {
  const expected = JSON.stringify([...USERS].sort());
  let last: string[] = [];
  const whole = async () => {
    last = await Promise.all(nodes.map(viewOf));
    return last.every((view) => view === expected);
  };
  const seen = () => nodes.map((node, i) => `${node.name}: ${last[i]}`).join(' | ');
  await eventually(whole, WHOLE_WAIT_MS, 'presence whole again').catch(() =>
    assert.fail(`presence not whole within ${WHOLE_WAIT_MS} ms: ${seen()}`),
  );
  const until = Date.now() + STAY_MS;
  while (Date.now() < until) {
    if (!(await whole())) assert.fail(`presence lost again after it was whole: ${seen()}`);
    await sleep(50);
  }
}

/** Resolves once `bus` reports `instanceId` gone (bounded). */
function goneReported(bus: RealtimeBus, instanceId: string): Promise<void> {
  let reported = false;
  bus.onClusterChange((change: ClusterChange) => {
    if (change.kind === 'instances_gone' && change.instanceIds.includes(instanceId)) {
      reported = true;
    }
  });
  return eventually(() => reported, GONE_WAIT_MS, `the peer reporting ${instanceId} gone`);
}

/**
 * For a describe block: instance a reaches Redis through the proxy (as the Redis user `user`, if
 * given), b directly, both with `bus` options; alice is connected to a, bob to b.
 */
function aliceOnProxiedBobDirect(
  user?: string,
  bus: Partial<RedisBusOptions> = BUS,
): () => {
  setup: ProxiedCluster | undefined;
  a: ClusterInstance;
  b: ClusterInstance;
  nodes: Node[];
} {
  let setup: ProxiedCluster | undefined;
  let a: ClusterInstance, b: ClusterInstance;
  const clients: TestClient[] = [];
  before(async () => {
    setup = await startProxiedCluster(2, 0, { redis: bus }, { user });
    if (!setup) return;
    [a, b] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
    clients.push(await TestClient.open(a.wsUrl, a.token('alice')));
    clients.push(await TestClient.open(b.wsUrl, b.token('bob')));
  });
  after(async () => {
    for (const client of clients) client.close();
    await setup?.close();
  });
  return () => ({
    setup,
    a,
    b,
    nodes: setup
      ? [
          { name: 'a', service: a.service, bus: a.bus },
          { name: 'b', service: b.service, bus: b.bus },
        ]
      : [],
  });
}

describe('presence after an instance is cut off from Redis for longer than its lease', () => {
  const started = aliceOnProxiedBobDirect();

  it('comes back whole once it reconnects, after the other reaped it, and stays whole', async (t) => {
    const { setup, a, b, nodes } = started();
    if (!requireRedis(t, setup?.redis)) return;
    await presenceWholeAndStays(nodes);
    const gone = goneReported(b.bus, a.bus.instanceId);
    await setup!.proxy.cut();
    try {
      await gone;
    } finally {
      await setup!.restore();
    }
    await presenceWholeAndStays(nodes);
  });
});

describe('presence when the first renewal after the reconnection is refused', () => {
  const USER = 'proxied';
  const started = aliceOnProxiedBobDirect(USER);

  it('comes back whole once a renewal goes through, though the reconnection’s resync failed', async (t) => {
    const { setup, a, b, nodes } = started();
    if (!requireRedis(t, setup?.redis)) return;
    await presenceWholeAndStays(nodes);
    const gone = goneReported(b.bus, a.bus.instanceId);
    const { proxy, redis } = setup!;
    await proxy.cut();
    await gone;
    // Redis answers a again, but refuses it every script: its renewal, and the resync that its
    // reconnection runs, fail with an error reply.
    assert.match(
      (await redisCommand(redis.port, `ACL SETUSER ${USER} -@scripting`)) ?? '',
      /^\+OK/,
    );
    await proxy.restore();
    await eventually(() => a.bus.isConnected(), WHOLE_WAIT_MS, 'a reconnected');
    await eventually(
      async () => (await viewOf(nodes[1]!)) === JSON.stringify(['bob']),
      WHOLE_WAIT_MS,
      'alice missing from presence while a is refused',
    );
    await sleep(LEASE_MS);
    assert.equal(
      await viewOf(nodes[1]!),
      JSON.stringify(['bob']),
      'still missing: nothing went through',
    );
    assert.match((await redisCommand(redis.port, `ACL SETUSER ${USER} +@all`)) ?? '', /^\+OK/);
    await presenceWholeAndStays(nodes);
  });
});

describe('presence when the rewrite after a reconnection is refused, the lease intact', () => {
  const USER = 'refused';
  // A lease longer than the test: nothing lapses, so no renewal gives another occasion.
  const started = aliceOnProxiedBobDirect(USER, { ...BUS, leaseMs: 60_000 });

  it('is rewritten again once Redis takes it: a user who connected during the cut appears', async (t) => {
    const { setup, a, nodes } = started();
    if (!requireRedis(t, setup?.redis)) return;
    await presenceWholeAndStays(nodes);
    const { redis } = setup!;
    await setup!.cutOff();
    // Connected while a cannot tell Redis: only a's rewrite after the cut can.
    const carol = await TestClient.open(a.wsUrl, a.token('carol'));
    try {
      assert.match(
        (await redisCommand(redis.port, `ACL SETUSER ${USER} -@scripting`)) ?? '',
        /^\+OK/,
      );
      await setup!.proxy.restore();
      await eventually(() => a.bus.isConnected(), WHOLE_WAIT_MS, 'a reconnected');
      await sleep(500);
      const bob = nodes[1]!;
      assert.equal(await viewOf(bob), JSON.stringify(['alice', 'bob']), 'the rewrite was refused');
      assert.match((await redisCommand(redis.port, `ACL SETUSER ${USER} +@all`)) ?? '', /^\+OK/);
      const all = JSON.stringify(['alice', 'bob', 'carol']);
      await eventually(async () => (await viewOf(bob)) === all, WHOLE_WAIT_MS, 'carol in presence');
    } finally {
      carol.close();
    }
  });
});

describe('presence when Redis refuses a connect and a close, the lease intact', () => {
  const USER = 'refused-writes';
  const started = aliceOnProxiedBobDirect(USER, { ...BUS, leaseMs: 60_000 });

  it('is repaired once Redis takes writes again, and both changes are announced', async (t) => {
    const { setup, a, b, nodes } = started();
    if (!requireRedis(t, setup?.redis)) return;
    await presenceWholeAndStays(nodes);
    const { redis } = setup!;
    const watcher = await TestClient.open(b.wsUrl, b.token('watcher'));
    await watcher.request({ type: 'subscribe', data: { events: ['user.status_changed'] } });
    const carol = await TestClient.open(a.wsUrl, a.token('carol'));
    let dave: TestClient | undefined;
    try {
      const bob = nodes[1]!;
      const before = JSON.stringify(['alice', 'bob', 'carol', 'watcher']);
      await eventually(async () => (await viewOf(bob)) === before, WHOLE_WAIT_MS, 'carol seen');
      // Redis stays reachable but refuses a's scripts: carol's close and dave's connect fail (and
      // so may carol's online, a stream send).
      assert.match(
        (await redisCommand(redis.port, `ACL SETUSER ${USER} -@scripting`)) ?? '',
        /^\+OK/,
      );
      carol.close();
      dave = await TestClient.open(a.wsUrl, a.token('dave'));
      await sleep(300);
      assert.equal(await viewOf(bob), before, 'the close and the connect were refused');
      assert.match((await redisCommand(redis.port, `ACL SETUSER ${USER} +@all`)) ?? '', /^\+OK/);
      const after = JSON.stringify(['alice', 'bob', 'dave', 'watcher']);
      await eventually(
        async () => (await viewOf(bob)) === after,
        WHOLE_WAIT_MS,
        'presence repaired',
      );
      const statuses = (user: string) =>
        watcher
          .ofType('user.status_changed')
          .filter((m) => m.data.user_id === user)
          .map((m) => m.data.status);
      await eventually(
        () => statuses('carol').length === 2 && statuses('dave').length === 1,
        WHOLE_WAIT_MS,
        'announced',
      );
      await watcher.request({ type: 'ping' });
      assert.deepEqual(statuses('dave'), ['online']);
      assert.deepEqual(statuses('carol'), ['online', 'offline']);
    } finally {
      dave?.close();
      watcher.close();
    }
  });
});

/**
 * The race above, made certain: the peer's reap of the cut-off instance (a call of its own, made
 * when its renewal found the lease ended) is held on its way to Redis until the instance is back
 * and has rewritten its part, as a peer stalled between the two calls would send it.
 */
describe('presence when the reap of an instance lands after it came back', () => {
  let redis: RedisServer | undefined;
  let proxyA: TcpProxy | undefined;
  let proxyB: TcpProxy | undefined;
  const apps: TestApp[] = [];
  const clients: TestClient[] = [];
  let a: Node, b: Node;

  before(async () => {
    redis = await startRedisServer();
    if (!redis) return;
    proxyA = await startTcpProxy(redis.port);
    proxyB = await startTcpProxy(redis.port);
    const namespace = uniqueNamespace('lease-lapse');
    const options = (port: number): RedisBusOptions => ({
      ...BUS,
      namespace,
      url: `redis://127.0.0.1:${port}`,
    });
    // a: everything through proxyA. b: its bus straight to Redis, its presence (and the other
    // module connections) through proxyB, which can hold them while its bus runs on.
    const appA = await startTestApp({ realtime: { redis: options(proxyA.port) } });
    apps.push(appA);
    const appB = await startTestApp({
      realtime: { bus: new RedisBus(options(redis.port)), redis: options(proxyB.port) },
    });
    apps.push(appB);
    [a, b] = [appA, appB].map((app, i) => ({
      name: i === 0 ? 'a' : 'b',
      service: app.app.get(RealtimeService),
      bus: app.app.get(RealtimeBus),
    })) as [Node, Node];
    const ids = JSON.stringify([a.bus.instanceId, b.bus.instanceId].sort());
    await eventually(
      () => [a, b].every((node) => JSON.stringify([...node.bus.liveInstances()].sort()) === ids),
      10_000,
      'both instances listing each other',
    );
    clients.push(await TestClient.open(appA.wsUrl, appA.token('alice')));
    clients.push(await TestClient.open(appB.wsUrl, appB.token('bob')));
  });
  after(async () => {
    for (const client of clients) client.close();
    try {
      await proxyB?.restore();
      await Promise.all(apps.map((app) => app.close()));
    } finally {
      await proxyA?.close();
      await proxyB?.close();
      await redis?.kill();
    }
  });

  it('leaves the part the instance rewrote in place', async (t) => {
    if (!requireRedis(t, redis)) return;
    await presenceWholeAndStays([a, b]);
    const gone = goneReported(b.bus, a.bus.instanceId);
    proxyB!.hold();
    await proxyA!.cut();
    try {
      // b's reap went out with the report, at once, and waits in proxyB.
      await gone;
    } finally {
      await proxyA!.restore();
    }
    // a renews its lease and rewrites its part once its bus and presence connections are back.
    await eventually(
      async () => a.bus.isConnected() && (await viewOf(a)).includes('alice'),
      WHOLE_WAIT_MS,
      'a reconnected, its presence readable',
    );
    await sleep(300);
    await proxyB!.restore();
    await presenceWholeAndStays([a, b]);
  });
});
