import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { RealtimeSendError } from '../src/realtime/index.js';
import type { ClusterInstance } from './support/cluster.js';
import { type ClusterClient, CROSS_WAIT_MS, openOn, settleVia } from './support/cluster-clients.js';
import { type ProxiedCluster, startProxiedCluster } from './support/proxied-cluster.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import { requireRedis } from './support/redis-server.js';
import { type DemoProcess, spawnDemoProcess } from './support/demo-process.js';
import { eventually, type ReceivedMessage, TestClient } from './support/test-client.js';
import { sleep } from './support/wire.js';

/** Bound on losing Redis (the bus notices the closed connections). */
const DOWN_WAIT_MS = 5_000;
/** Bound on getting Redis back: ioredis retries with a backoff of at most about 5 s. */
const RECONNECT_WAIT_MS = 15_000;
const SEQ = 'fault.seq';

/** Numbers of the `fault.seq` messages in `messages`, in arrival order. */
function numbers(messages: readonly ReceivedMessage[]): number[] {
  return messages.filter((m) => m.type === SEQ).map((m) => m.data.n as number);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/**
 * Both of the bus's connections noticed that Redis is gone. `isConnected()` turns false with the
 * subscriber alone; a send made while the publisher has not noticed yet goes out as one publish
 * per stream and, failing, falls back into the queue per stream (two slots for a send to two
 * users), which left a test that fills the queue exactly one slot short (1 run in ~12).
 */
function publisherDown(instance: ClusterInstance): boolean {
  return !(instance.bus as unknown as { up: boolean }).up;
}

function isBusUnavailable(error: unknown): boolean {
  return error instanceof RealtimeSendError && error.code === 'BUS_UNAVAILABLE';
}

/**
 * Sends from `from` to the user of `to` until one arrives (bounded): shows that the instance of
 * `to` is subscribed again. Probes are of their own type, so they do not disturb the checks.
 */
async function probeUntilReached(from: ClusterInstance, to: ClusterClient): Promise<void> {
  for (let attempt = 0; attempt < 30; attempt++) {
    const type = `fault.probe.${from.index}.${attempt}`;
    try {
      // Right after Redis is back, the backlog may still fill the bounded queue: refused, retry.
      await from.service.sendToUser(to.userId, type, {});
    } catch (error) {
      if (!isBusUnavailable(error)) throw error;
      await sleep(100);
      continue;
    }
    try {
      await eventually(() => to.client.received.some((m) => m.type === type), 500, type);
      return;
    } catch {
      // not subscribed again yet: try once more
    }
  }
  assert.fail(`no send from instance ${from.index} reached ${to.label} after Redis came back`);
}

/** Asserts the n of `messages` strictly increase: in order and no duplicates. */
function assertStrictlyIncreasing(ns: number[], who: string): void {
  for (let i = 1; i < ns.length; i++) {
    assert.ok(
      ns[i]! > ns[i - 1]!,
      `${who}: message ${ns[i]} arrived after ${ns[i - 1]} (out of order or twice): ${ns.join(',')}`,
    );
  }
}

/** Asserts that each n that two clients both saw carries one id. */
function assertSharedIds(a: readonly ReceivedMessage[], b: readonly ReceivedMessage[]): void {
  const ids = new Map(a.filter((m) => m.type === SEQ).map((m) => [m.data.n, m.id]));
  for (const m of b.filter((m) => m.type === SEQ)) {
    if (ids.has(m.data.n)) assert.equal(m.id, ids.get(m.data.n), `one id for message ${m.data.n}`);
  }
}

describe('cluster faults: Redis stopped, then started again', () => {
  const MAX_BUFFERED = 20;
  let setup: RedisCluster | undefined;
  let a: ClusterInstance, b: ClusterInstance;
  let atA: ClusterClient, atB: ClusterClient;
  const clients: ClusterClient[] = [];

  before(async () => {
    setup = await startRedisCluster(2, {
      redis: { maxBufferedPublishes: MAX_BUFFERED, requestTimeoutMs: 1500, leaseMs: 3000 },
    });
    if (!setup) return;
    [a, b] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
    atA = await openOn(a, 'user-a');
    atB = await openOn(b, 'user-b');
    clients.push(atA, atB);
  });
  after(async () => {
    for (const c of clients) c.client.close();
    await setup?.close();
  });

  const send = (n: number) => a.service.sendToUsers(['user-a', 'user-b'], SEQ, { n });

  it('with Redis up, sends reach the other instance and resolve the cluster-wide count', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    for (const n of range(0, 10)) assert.equal(await send(n), 2, `send ${n}`);
  });

  it('with Redis stopped, local sends still reach local clients and resolve the local count', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    await setup.redis.stop();
    await eventually(
      () => [a, b].every((instance) => !instance.bus.isConnected() && publisherDown(instance)),
      DOWN_WAIT_MS,
      'both buses noticing that Redis is gone',
    );
    for (const n of range(10, 10 + MAX_BUFFERED)) {
      assert.equal(await send(n), 1, `send ${n} while Redis is down resolves the local count`);
      await eventually(
        () => numbers(atA.client.received).includes(n),
        CROSS_WAIT_MS,
        `local delivery of ${n} while Redis is down`,
      );
    }
    assert.equal(await b.service.sendToUser('user-b', 'fault.local-b', {}), 1);
    await atB.client.next('fault.local-b', CROSS_WAIT_MS);
  });

  it(`past maxBufferedPublishes (${MAX_BUFFERED}) a send rejects with BUS_UNAVAILABLE and is not delivered`, async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    assert.equal(a.bus.isConnected(), false, 'Redis is still down');
    await assert.rejects(send(-1), isBusUnavailable, 'a targeted send past the bound');
    await assert.rejects(a.service.broadcast('fault.rejected', {}), isBusUnavailable);
    await assert.rejects(
      a.service.sendToConnection(atA.connectionId, 'fault.rejected', {}),
      isBusUnavailable,
    );
    await assert.rejects(
      a.service.publishMessage('fault.rejected', {}, { kind: 'users', userIds: ['user-a'] }),
      isBusUnavailable,
    );
    // Still refused on the next try: the queue does not grow past the bound.
    await assert.rejects(a.service.sendToUser('user-a', 'fault.rejected', {}), isBusUnavailable);
  });

  it('after start(), the instances work again without restart; the queued sends are flushed in order', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    await setup.redis.start();
    await eventually(
      () => a.bus.isConnected() && b.bus.isConnected(),
      RECONNECT_WAIT_MS,
      'both buses connected again',
    );
    await setup.cluster.waitForMembership(RECONNECT_WAIT_MS);
    // Cross-instance sends reach again, both ways.
    await probeUntilReached(a, atB);
    await probeUntilReached(b, atA);
    const first = 10 + MAX_BUFFERED;
    for (const n of range(first, first + 10)) assert.equal(await send(n), 2, `send ${n}`);

    const seen = await settleVia(a, clients);
    const [gotA, gotB] = [seen.get(atA)!, seen.get(atB)!];
    assert.deepEqual(
      numbers(gotA),
      range(0, first + 10),
      'the local client got every send exactly once, in order (none of the refused ones)',
    );
    assert.deepEqual(
      gotA.filter((m) => m.type === 'fault.rejected'),
      [],
      'refused sends were not delivered locally either',
    );

    // What the other instance's client must have. Redis pub/sub keeps nothing for a subscriber
    // that is not there, and b's subscriber was down from stop() until it subscribed again (as
    // shown by the probe): the queued sends, flushed when a's connection came back, reach b only
    // from the moment b was subscribed again. So b must have:
    // - everything sent while b was subscribed: 0..9 and the sends after the probe;
    // - no duplicate and nothing out of order;
    // - of the sends made during the outage, a contiguous tail (flushed after b resubscribed).
    const ns = numbers(gotB);
    assertStrictlyIncreasing(ns, atB.label);
    for (const n of [...range(0, 10), ...range(first, first + 10)]) {
      assert.ok(ns.includes(n), `${atB.label} got ${n}, sent while it was subscribed: ${ns}`);
    }
    const duringOutage = ns.filter((n) => n >= 10 && n < first);
    if (duringOutage.length > 0) {
      assert.deepEqual(
        duringOutage,
        range(first - duringOutage.length, first),
        'the queued sends that reached the other instance are a contiguous, in-order tail',
      );
    }
    t.diagnostic(
      `${duringOutage.length} of the ${MAX_BUFFERED} queued sends reached the other instance`,
    );
    assertSharedIds(gotA, gotB);
    assert.ok(!gotB.some((m) => m.type === 'fault.rejected'), 'refused sends never reached b');
  });
});

describe('cluster faults: one instance loses Redis while the other keeps it', () => {
  let setup: ProxiedCluster | undefined;
  const clients: ClusterClient[] = [];

  before(async () => {
    // Instance 0 reaches Redis through the proxy, instance 1 directly.
    setup = await startProxiedCluster(2, 0, {
      redis: { requestTimeoutMs: 1500, leaseMs: 30_000 },
    });
    if (!setup) return;
    for (const instance of setup.cluster.instances) {
      clients.push(await openOn(instance, `user-${instance.index}`));
    }
  });
  after(async () => {
    for (const c of clients) c.client.close();
    await setup?.close();
  });

  it('the sends it made while cut off are flushed on reconnect: the other client gets every message once, in order', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
    const [atA, atB] = clients as [ClusterClient, ClusterClient];
    const send = (n: number) => a.service.sendToUsers([atA.userId, atB.userId], SEQ, { n });

    for (const n of range(0, 10)) assert.equal(await send(n), 2, `send ${n} before the cut`);
    await setup.proxy.cut();
    await eventually(() => !a.bus.isConnected(), DOWN_WAIT_MS, 'instance 0 losing Redis');
    assert.equal(b.bus.isConnected(), true, 'instance 1 keeps Redis');
    for (const n of range(10, 40)) {
      assert.equal(await send(n), 1, `send ${n} while cut off resolves the local count`);
    }
    await eventually(
      () => numbers(atA.client.received).length === 40,
      CROSS_WAIT_MS,
      'local delivery while cut off',
    );
    await setup.proxy.restore();
    await eventually(() => a.bus.isConnected(), RECONNECT_WAIT_MS, 'instance 0 reconnecting');
    await setup.cluster.waitForMembership(RECONNECT_WAIT_MS);
    for (const n of range(40, 50)) assert.equal(await send(n), 2, `send ${n} after reconnecting`);

    // b's subscriber was up throughout, so every send of a, including the 30 queued while a was
    // cut off, must reach b: exactly once each, in the order a made them.
    const seen = await settleVia(a, clients);
    assert.deepEqual(numbers(seen.get(atA)!), range(0, 50), `${atA.label}: all, in order`);
    assert.deepEqual(numbers(seen.get(atB)!), range(0, 50), `${atB.label}: all, in order`);
    assertSharedIds(seen.get(atA)!, seen.get(atB)!);
  });
});

describe('cluster faults: an instance cut off for seconds gets all its connections back at once', () => {
  // Long enough that each connection's backoff between attempts grew to seconds (up to ~5 s).
  const CUT_MS = 6_000;
  /** Between the first of the instance's connections accepted again and the last. */
  const TOGETHER_MS = 1_000;
  let setup: ProxiedCluster | undefined;
  let client: ClusterClient | undefined;

  before(async () => {
    setup = await startProxiedCluster(2, 1, {
      redis: { requestTimeoutMs: 1500, leaseMs: 30_000 },
    });
    if (setup) client = await openOn(setup.proxied, 'returning');
  });
  after(async () => {
    client?.client.close();
    await setup?.close();
  });

  it('once Redis answers one of them, the others reconnect without waiting out their backoff; messages flow', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const { proxy, proxied, cluster } = setup;
    const [a] = cluster.instances as [ClusterInstance];
    // Bus publisher and subscriber, presence, rate limits, history.
    const connections = proxy.openConnections();
    assert.ok(
      connections >= 5,
      `the instance's connections all go through the proxy (${connections})`,
    );

    await proxy.cut();
    await eventually(() => !proxied.bus.isConnected(), DOWN_WAIT_MS, 'losing Redis');
    await sleep(CUT_MS);
    const acceptedBefore = proxy.acceptedAt.length;
    await proxy.restore();
    await eventually(
      () => proxy.acceptedAt.length - acceptedBefore >= connections,
      RECONNECT_WAIT_MS,
      `${connections} connections accepted again`,
    );
    const accepted = proxy.acceptedAt.slice(acceptedBefore, acceptedBefore + connections);
    const spreadMs = Math.round(accepted.at(-1)! - accepted[0]!);
    t.diagnostic(`the ${connections} connections came back within ${spreadMs} ms of each other`);
    assert.ok(spreadMs < TOGETHER_MS, `back together: within ${spreadMs} ms, not ${TOGETHER_MS}`);

    await cluster.waitForMembership(RECONNECT_WAIT_MS);
    // No inbound messages held for a history connection still waiting to reconnect.
    await settleVia(a, [client!]);
  });
});

// With the history on (the default) a send is appended and published in one script and this
// instance's clients get it as it comes back from Redis; with it off, local clients get it first.
for (const history of ['on', 'off'] as const) {
  describe(`cluster faults: the connection drops while publishes are in flight (history ${history})`, () => {
    let setup: ProxiedCluster | undefined;
    const clients: ClusterClient[] = [];

    before(async () => {
      setup = await startProxiedCluster(2, 0, {
        redis: { requestTimeoutMs: 1500, leaseMs: 30_000 },
        ...(history === 'off' ? { history: false } : {}),
      });
      if (!setup) return;
      for (const instance of setup.cluster.instances) {
        clients.push(await openOn(instance, `inflight-${instance.index}`));
      }
    });
    after(async () => {
      for (const c of clients) c.client.close();
      await setup?.close();
    });

    it('flushes the sends that failed in flight and the ones made as it dropped in the order they were made', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const [a, b] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
      const [atA, atB] = clients as [ClusterClient, ClusterClient];
      const sends: Array<Promise<number>> = [];
      let next = 0;
      const send = () => {
        const n = next++;
        const sending = a.service.sendToUsers([atA.userId, atB.userId], SEQ, { n });
        sends.push(sending);
        return sending;
      };

      for (let i = 0; i < 10; i++) assert.equal(await send(), 2, 'send before the fault');
      // The network to Redis stalls: these five are written and stay in flight, unanswered.
      setup.proxy.hold();
      for (let i = 0; i < 5; i++) void send();
      if (history === 'off') {
        await eventually(
          () => numbers(atA.client.received).length === 15,
          CROSS_WAIT_MS,
          'local delivery of the sends in flight',
        );
      } else {
        // They wait for Redis, like everyone else's copies: none arrives while it stalls.
        await sleep(200);
        assert.equal(numbers(atA.client.received).length, 10, 'nothing arrives ahead of Redis');
      }
      // Then the connection ends (as when Redis goes away) while the service keeps sending, one
      // send per turn of the event loop, until the bus has noticed.
      const cutting = setup.proxy.cut();
      for (let turn = 0; turn < 500 && a.bus.isConnected(); turn++) {
        void send();
        await new Promise((resolve) => setImmediate(resolve));
      }
      await cutting;
      assert.equal(a.bus.isConnected(), false, 'instance 0 noticed the lost connection');
      assert.equal(b.bus.isConnected(), true, 'instance 1 keeps Redis');
      for (let i = 0; i < 5; i++) void send(); // while it is down
      const down = next;

      await setup.proxy.restore();
      await eventually(() => a.bus.isConnected(), RECONNECT_WAIT_MS, 'instance 0 reconnecting');
      await setup.cluster.waitForMembership(RECONNECT_WAIT_MS);
      for (let i = 0; i < 5; i++) void send(); // after it is back

      const counts = await Promise.all(sends);
      assert.ok(
        counts.every((count) => count === 1 || count === 2),
        `every send resolved to 1 or 2: ${counts.join(',')}`,
      );
      const seen = await settleVia(a, clients);
      assert.deepEqual(numbers(seen.get(atA)!), range(0, next), `${atA.label}: all, in order`);
      // b stayed subscribed throughout: every send of a must reach it once, in a's order, those
      // that failed in flight (kept for the flush) included.
      t.diagnostic(`${next} sends, ${down} made before Redis was reachable again`);
      assert.deepEqual(
        numbers(seen.get(atB)!),
        range(0, next),
        `${atB.label}: every send exactly once, in the order instance 0 made them`,
      );
    });
  });
}

describe('cluster faults: Redis stopped in the middle of a stream of sends', () => {
  let setup: RedisCluster | undefined;
  const clients: ClusterClient[] = [];

  before(async () => {
    setup = await startRedisCluster(2, {
      redis: { requestTimeoutMs: 1500, leaseMs: 3000 },
    });
    if (!setup) return;
    for (const instance of setup.cluster.instances) {
      clients.push(await openOn(instance, `stream-${instance.index}`));
    }
  });
  after(async () => {
    for (const c of clients) c.client.close();
    await setup?.close();
  });

  it('keeps one sender’s order on both instances and loses nothing sent while both were subscribed', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
    const [atA, atB] = clients as [ClusterClient, ClusterClient];
    const results: Array<Promise<number>> = [];
    let next = 0;
    // Sends fired every 2 ms without waiting for each other, like a busy service.
    const stream = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const n = next++;
        results.push(a.service.sendToUsers([atA.userId, atB.userId], SEQ, { n }));
        await sleep(2);
      }
    };

    await stream(50);
    const beforeStop = next;
    const stopping = setup.redis.stop();
    await stream(50); // while Redis goes away
    await stopping;
    await eventually(() => !a.bus.isConnected(), DOWN_WAIT_MS, 'instance 0 losing Redis');
    await stream(50); // while it is gone
    const starting = setup.redis.start();
    await stream(50); // while it comes back
    await starting;
    await eventually(
      () => a.bus.isConnected() && b.bus.isConnected(),
      RECONNECT_WAIT_MS,
      'both buses connected again',
    );
    await setup.cluster.waitForMembership(RECONNECT_WAIT_MS);
    await probeUntilReached(a, atB);
    const afterProbe = next;
    await stream(50);

    const settled = await Promise.allSettled(results);
    const rejected = settled.filter((r) => r.status === 'rejected');
    assert.deepEqual(rejected, [], 'no send failed (the queue never filled)');
    const reached = settled.map((r) => (r.status === 'fulfilled' ? r.value : -1));
    assert.ok(
      reached.every((count) => count === 1 || count === 2),
      `every send resolved to 1 (local) or 2 (both): ${reached.join(',')}`,
    );

    const seen = await settleVia(a, clients);
    const [gotA, gotB] = [seen.get(atA)!, seen.get(atB)!];
    assert.deepEqual(numbers(gotA), range(0, next), 'the local client got all, once, in order');
    const ns = numbers(gotB);
    assertStrictlyIncreasing(ns, atB.label);
    // Sent while b was surely subscribed: before stop() was called, and after the probe.
    for (const n of [...range(0, beforeStop), ...range(afterProbe, next)]) {
      assert.ok(ns.includes(n), `${atB.label} got ${n}, sent while it was subscribed`);
    }
    // A send that counted b's connection was delivered there.
    reached.forEach((count, n) => {
      if (count === 2) assert.ok(ns.includes(n), `${atB.label} got ${n}, which counted it`);
    });
    assertSharedIds(gotA, gotB);
    t.diagnostic(`the other instance got ${ns.length} of ${next} messages`);
  });
});

const DEMO_LEASE_MS = 1500;

describe('cluster faults: an instance killed with SIGKILL', () => {
  let setup: RedisCluster | undefined;
  let demo: DemoProcess | undefined;
  const sockets: TestClient[] = [];

  before(async () => {
    // The demo uses the default namespace; this Redis is ours alone.
    setup = await startRedisCluster(1, {
      redis: { namespace: 'realtime', leaseMs: DEMO_LEASE_MS, requestTimeoutMs: 1500 },
    });
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    demo?.kill();
    await setup?.close();
  });

  const demoExited = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const child = demo?.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve(true);
      const timer = setTimeout(() => resolve(false), ms);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  it('vanishes from the liveInstances() of the others within a lease', async (t: TestContext) => {
    if (!requireRedis(t, setup?.redis)) return;
    const observer = setup.cluster.instances[0]!;
    demo = await spawnDemoProcess({
      REDIS_URL: setup.redis.url,
      REALTIME_LEASE_MS: String(DEMO_LEASE_MS),
    });
    const { port } = demo;

    try {
      await eventually(
        () => observer.bus.liveInstances().length === 2,
        20_000,
        'the demo process joining the cluster',
      );
    } catch (error) {
      assert.fail(`${String(error)}; demo output:\n${demo.output()}`);
    }
    const demoId = observer.bus.liveInstances().find((id) => id !== observer.bus.instanceId)!;
    // It joins the cluster while booting, before it listens.
    await demo.serving();

    // It really serves as part of the cluster: a send from here reaches its client.
    const onDemo = await TestClient.open(`ws://127.0.0.1:${port}/ws`, observer.token('on-demo'));
    sockets.push(onDemo);
    assert.equal(await observer.service.sendToUser('on-demo', 'fault.hello', {}), 1);
    await onDemo.next('fault.hello', CROSS_WAIT_MS);

    demo.child.kill('SIGKILL');
    assert.ok(await demoExited(5000), 'the demo process exited after SIGKILL');
    assert.equal(demo.child.signalCode, 'SIGKILL');
    const killedAt = Date.now();
    // Its last lease renewal was at most a third of a lease before the kill, and the observer
    // reads the live set every third of its lease: gone within 4/3 of a lease, plus slack.
    const bound = Math.ceil((DEMO_LEASE_MS * 4) / 3) + 1000;
    await eventually(
      () => !observer.bus.liveInstances().includes(demoId),
      bound,
      `the killed instance vanishing within ${bound} ms`,
    );
    t.diagnostic(`gone from liveInstances() ${Date.now() - killedAt} ms after SIGKILL`);
    assert.deepEqual(observer.bus.liveInstances(), [observer.bus.instanceId]);
  });
});
