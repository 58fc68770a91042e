import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import type { Logger } from '@nestjs/common';
import { MAX_IN_FLIGHT } from '../src/realtime/bus/publish-queue.js';
import { MAX_ENVELOPE_CHARS } from '../src/realtime/bus/redis-bus.js';
import { type OutboundMessage, RealtimeSendError, RedisBus } from '../src/realtime/index.js';
import { RedisMessageHistory } from '../src/realtime/recovery/redis-message-history.js';
import { type ClusterInstance, uniqueNamespace } from './support/cluster.js';
import { type ClusterClient, openOn, settleVia } from './support/cluster-clients.js';
import {
  redisCommand,
  requireRedis,
  type RedisServer,
  startRedisServer,
} from './support/redis-server.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import { type ProxiedCluster, startProxiedCluster } from './support/proxied-cluster.js';
import { type DemoProcess, spawnDemoProcess } from './support/demo-process.js';
import { eventually, TestClient } from './support/test-client.js';
import { sleep } from './support/wire.js';

/** Bound on a bus connecting to Redis. */
const CONNECT_WAIT_MS = 5_000;

/** Records uncaught exceptions while `run` runs: a throw in an ioredis event ends up there. */
async function collectUncaught(run: () => Promise<void>): Promise<string[]> {
  const errors: string[] = [];
  const record = (error: unknown) => errors.push(String(error));
  process.on('uncaughtException', record);
  try {
    await run();
  } finally {
    process.off('uncaughtException', record);
  }
  return errors;
}

/**
 * Both instances still connected, and a send from `a` after the bad envelope reaches `atB` (on
 * `b`) once: the only message it got besides connection.established.
 */
async function assertStillServing(
  a: ClusterInstance,
  b: ClusterInstance,
  atB: ClusterClient,
  type: string,
): Promise<void> {
  for (const instance of [a, b]) assert.ok(instance.bus.isConnected(), 'still connected');
  assert.equal(await a.service.sendToUser(atB.userId, type, { ok: 1 }), 1);
  const seen = await settleVia(a, [atB]);
  assert.deepEqual(
    seen
      .get(atB)!
      .map((m) => m.type)
      .filter((received) => received !== 'connection.established'),
    [type],
    'the later send arrived once, and nothing else',
  );
  atB.client.close();
}

function message(id: string, type: string): OutboundMessage {
  return { id, type, frame: JSON.stringify({ type }), target: { kind: 'all' } };
}

/** What the private state of a bus holds, read by the tests of its bookkeeping. */
function internals(bus: RedisBus): {
  silent: Set<string>;
  peers: string[];
  logger: Logger;
  publisher: { commandQueue: { length: number } };
} {
  return bus as unknown as ReturnType<typeof internals>;
}

describe('cluster bus faults: an envelope that fails while being handled', () => {
  let setup: RedisCluster | undefined;
  let raw: Redis | undefined;
  const buses: RedisBus[] = [];

  before(async () => {
    setup = await startRedisCluster(2, {
      redis: { requestTimeoutMs: 1500, leaseMs: 3000 },
    });
    if (!setup) return;
    raw = new Redis(setup.redis.url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    raw?.disconnect();
    for (const bus of buses) await bus.close();
    await setup?.close();
  });

  it('is dropped; both instances stay up and a later send arrives once', async (t: TestContext) => {
    if (!requireRedis(t, setup?.redis)) return;
    const a = setup.cluster.instances[0]!;
    const b = setup.cluster.instances[1]!;
    const atB = await openOn(b, 'bad-envelope-user');
    const errors = await collectUncaught(async () => {
      // Shapes a foreign publisher may send on a shared Redis: unknown and incomplete targets.
      const targets = [{ kind: 'bogus' }, { kind: 'users' }, { kind: 'room' }];
      for (const [i, target] of targets.entries()) {
        const envelope = {
          kind: 'deliver',
          origin: 'foreign-publisher',
          message: { id: `bad-${i}`, type: 'bad', frame: '{"type":"bad"}', target },
        };
        await raw!.publish(`${setup!.cluster.namespace}:bus`, JSON.stringify(envelope));
      }
      // Every instance handled them (or dropped them) before its own later publish comes back.
      for (const instance of [a, b]) assert.equal(await instance.bus.barrier(), true);
      await sleep(100);
    });
    assert.deepEqual(errors, [], 'no exception escaped the message handler');
    await assertStillServing(a, b, atB, 'after.bad');
  });

  // Reaches the guard whatever shapes the envelope parser accepts: the local delivery throws.
  it('drops only the message whose local delivery throws', async (t: TestContext) => {
    if (!requireRedis(t, setup?.redis)) return;
    const namespace = uniqueNamespace('throwing');
    const received: string[] = [];
    const receiver = new RedisBus({ url: setup.redis.url, namespace, requestTimeoutMs: 1000 });
    const sender = new RedisBus({ url: setup.redis.url, namespace, requestTimeoutMs: 1000 });
    buses.push(receiver, sender);
    receiver.subscribe((m) => {
      if (m.type === 'boom') throw new Error('delivery failed');
      received.push(m.type);
      return 1;
    });
    sender.subscribe(() => 0);
    await eventually(
      () => receiver.liveInstances().length === 2 && sender.liveInstances().length === 2,
      CONNECT_WAIT_MS,
      'both buses connected and seeing each other',
    );
    const errors = await collectUncaught(async () => {
      // Both go out before the first one's count times out (its receiver could not answer).
      const counts = await Promise.all([
        sender.publish(message('m-boom', 'boom')),
        sender.publish(message('m-ok', 'ok')),
      ]);
      assert.deepEqual(counts, [0, 1], 'the later send counted');
      await sleep(100);
    });
    assert.deepEqual(errors, [], 'no exception escaped the message handler');
    assert.deepEqual(received, ['ok']);
    assert.ok(receiver.isConnected());
  });

  it(`is not parsed past ${MAX_ENVELOPE_CHARS} characters: logged, and a later send arrives`, async (t: TestContext) => {
    if (!requireRedis(t, setup?.redis)) return;
    const a = setup.cluster.instances[0]!;
    const b = setup.cluster.instances[1]!;
    const atB = await openOn(b, 'huge-envelope-user');
    const warned = [a, b].map((instance) => t.mock.method(internals(instance.bus).logger, 'warn'));
    // A well-formed envelope from another publisher: only its size keeps it from being delivered.
    const frame = JSON.stringify({ type: 'huge', data: { pad: 'x'.repeat(MAX_ENVELOPE_CHARS) } });
    const target = { kind: 'users', userIds: [atB.userId] };
    const huge = {
      kind: 'deliver',
      origin: 'foreign-publisher',
      message: { id: 'huge-1', type: 'huge', frame, target },
    };
    const errors = await collectUncaught(async () => {
      await raw!.publish(`${setup!.cluster.namespace}:bus`, JSON.stringify(huge));
      for (const instance of [a, b]) assert.equal(await instance.bus.barrier(), true);
    });
    assert.deepEqual(errors, []);
    for (const [index, warn] of warned.entries()) {
      const events = warn.mock.calls.map(({ arguments: [entry] }) => entry as { event?: string });
      const tooLarge = events.filter((entry) => entry.event === 'bus.message_too_large');
      assert.equal(tooLarge.length, 1, `instance ${index} logged the dropped message once`);
    }
    await assertStillServing(a, b, atB, 'after.huge');
  });
});

const PAUSE_LEASE_MS = 1500;

describe('cluster bus faults: an instance paused longer than its lease', () => {
  let setup: RedisCluster | undefined;
  let demo: DemoProcess | undefined;
  const sockets: TestClient[] = [];
  const namespace = uniqueNamespace('paused');

  before(async () => {
    setup = await startRedisCluster(1, {
      redis: { namespace, leaseMs: PAUSE_LEASE_MS, requestTimeoutMs: 1000 },
    });
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    demo?.kill();
    await setup?.close();
  });

  it('writes its presence again once it runs again', async (t: TestContext) => {
    if (!requireRedis(t, setup?.redis)) return;
    const observer = setup.cluster.instances[0]!;
    demo = await spawnDemoProcess({
      REDIS_URL: setup.redis.url,
      REALTIME_REDIS_NAMESPACE: namespace,
      REALTIME_LEASE_MS: String(PAUSE_LEASE_MS),
    });
    const { port } = demo;
    await demo.serving();
    const onDemo = await TestClient.open(`ws://127.0.0.1:${port}/ws`, observer.token('paused'));
    sockets.push(onDemo);
    await eventually(
      () => observer.service.isUserConnected('paused'),
      3000,
      'the user on the demo seen as connected',
    );

    demo.child.kill('SIGSTOP');
    await sleep(4 * PAUSE_LEASE_MS);
    assert.equal(observer.bus.liveInstances().length, 1, 'the paused instance was reaped');
    assert.equal(await observer.service.isUserConnected('paused'), false, 'and its presence');
    demo.child.kill('SIGCONT');

    // It renews its lease within a third of one after waking, then writes its presence again.
    const bound = 2 * PAUSE_LEASE_MS + 2000;
    await eventually(
      () => observer.service.isUserConnected('paused'),
      bound,
      `the user on the woken instance seen as connected within ${bound} ms`,
    );
    // And stays so: the second resync (after the reaper's own cleanup) keeps it.
    await sleep(PAUSE_LEASE_MS);
    assert.equal(await observer.service.isUserConnected('paused'), true);
    assert.equal(onDemo.closeInfo, undefined, 'the connection stayed open');
    assert.equal(await observer.service.sendToUser('paused', 'after.pause', {}), 1);
    await onDemo.next('after.pause', 3000);
  });
});

describe('cluster bus faults: peers that never answer', () => {
  const LEASE_MS = 1200;
  const TIMEOUT_MS = 1000;
  let redis: RedisServer | undefined;
  let raw: Redis | undefined;
  let bus: RedisBus | undefined;
  let namespace = '';

  before(async () => {
    redis = await startRedisServer();
    if (redis) raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    raw?.disconnect();
    await redis?.kill();
  });
  beforeEach(async () => {
    if (!redis) return;
    namespace = uniqueNamespace('silent');
    bus = new RedisBus({
      url: redis.url,
      namespace,
      leaseMs: LEASE_MS,
      requestTimeoutMs: TIMEOUT_MS,
    });
    bus.subscribe(() => 0);
    await eventually(() => bus!.isConnected(), CONNECT_WAIT_MS, 'the bus connected');
  });
  afterEach(async () => {
    await bus?.close();
  });

  it('are not taken from a flood of foreign origins', async (t: TestContext) => {
    if (!requireRedis(t, redis)) return;
    const flood = raw!.pipeline();
    for (let i = 0; i < 5000; i++) {
      const ack = { kind: 'ack', origin: `ghost-${i}`, ack: 'none', reached: 0 };
      flood.publish(`${namespace}:bus`, JSON.stringify(ack));
    }
    await flood.exec();
    // Published after the flood, so it comes back after the bus has handled all of it.
    assert.equal(await bus!.barrier(), true);
    assert.deepEqual(bus!.liveInstances(), [bus!.instanceId], 'no foreign origin became a peer');

    const started = Date.now();
    await bus!.publish(message('after-flood', 'after.flood'));
    const took = Date.now() - started;
    assert.ok(took < TIMEOUT_MS / 2, `the publish waited for nobody (took ${took} ms)`);
    await sleep(LEASE_MS);
    assert.equal(internals(bus!).silent.size, 0);
  });

  it('are forgotten once their lease is gone', async (t: TestContext) => {
    if (!requireRedis(t, redis)) return;
    // A peer with a lease that never answers: counted in, then left out after one timeout.
    const [seconds] = await raw!.time();
    const lease = Number(seconds) * 1000 + 60_000;
    await raw!.zadd(`${namespace}:instances`, lease, 'mute-peer');
    await eventually(
      () => bus!.liveInstances().includes('mute-peer'),
      LEASE_MS + 1000,
      'the mute peer listed',
    );
    await bus!.publish(message('to-mute', 'to.mute'));
    assert.deepEqual([...internals(bus!).silent], ['mute-peer'], 'left out after its timeout');

    await raw!.zrem(`${namespace}:instances`, 'mute-peer');
    await eventually(
      () => internals(bus!).silent.size === 0,
      LEASE_MS + 1000,
      'the ended peer no longer kept as silent',
    );
    assert.deepEqual(bus!.liveInstances(), [bus!.instanceId]);
  });
});

describe('cluster bus faults: a Redis that is slow to answer', () => {
  /** Commands of the bus's own (lease renewals) that may wait with the sends while Redis is paused. */
  const OWN_COMMANDS = 3;
  const LIMIT = 50;
  const PAUSE_MS = 2000;
  const ECHO_WAIT_MS = 60_000;
  let redis: RedisServer | undefined;

  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    await redis?.kill();
  });

  it(`keeps at most ${MAX_IN_FLIGHT} publishes in flight and ${LIMIT} waiting; past that a send rejects with BUS_UNAVAILABLE`, async (t: TestContext) => {
    if (!requireRedis(t, redis)) return;
    const namespace = uniqueNamespace('slow');
    const bus = new RedisBus({ url: redis!.url, namespace, maxBufferedPublishes: LIMIT });
    const watcher = new Redis(redis!.url, { maxRetriesPerRequest: 1 });
    const seen: string[] = [];
    watcher.on('message', (_channel: string, raw: string) => {
      const envelope = JSON.parse(raw) as { kind: string; message?: { id: string } };
      if (envelope.kind === 'deliver' && envelope.message) seen.push(envelope.message.id);
    });
    try {
      await watcher.subscribe(`${namespace}:bus`);
      let delivered = 0;
      bus.subscribe(() => ++delivered);
      await eventually(() => bus.isConnected(), CONNECT_WAIT_MS, 'the bus connected');
      assert.match(
        (await redisCommand(redis!.port, `CLIENT PAUSE ${PAUSE_MS} ALL`)) ?? '',
        /^\+OK/,
      );

      const total = MAX_IN_FLIGHT + LIMIT + 500;
      const accepted: string[] = [];
      const settled: Array<Promise<unknown>> = [];
      let refused = 0;
      for (let i = 0; i < total; i++) {
        const id = `slow-${i}`;
        const sent = bus.publish(message(id, 'slow'));
        settled.push(
          sent.then(
            () => accepted.push(id),
            (error: unknown) => {
              assert.ok(error instanceof RealtimeSendError && error.code === 'BUS_UNAVAILABLE');
              refused++;
            },
          ),
        );
      }
      await sleep(100);
      assert.equal(refused, total - MAX_IN_FLIGHT - LIMIT, 'past both bounds, refused');
      assert.equal(delivered, MAX_IN_FLIGHT + LIMIT, 'a refused send is delivered nowhere');
      const { publisher } = internals(bus);
      // The bus's own lease renewals, one per leaseMs / 3, also wait while Redis is paused: a
      // few; what must not be there is the LIMIT waiting sends or the refused ones.
      assert.ok(
        publisher.commandQueue.length <= MAX_IN_FLIGHT + OWN_COMMANDS,
        `ioredis holds no more (${publisher.commandQueue.length})`,
      );

      // Once Redis answers, what waited goes out in order without a reconnect.
      await Promise.all(settled);
      await eventually(
        () => seen.length >= MAX_IN_FLIGHT + LIMIT,
        PAUSE_MS + 5000,
        'every accepted publish reached Redis',
      );
      assert.equal(bus.isConnected(), true);
      assert.deepEqual(
        seen,
        Array.from({ length: MAX_IN_FLIGHT + LIMIT }, (_, i) => `slow-${i}`),
        'in the order they were made, each once',
      );
      await bus.publish(message('after-slow', 'slow'));
      await eventually(() => seen.at(-1) === 'after-slow', 2000, 'a later send went out');
    } finally {
      watcher.disconnect();
      await bus.close();
    }
  });

  it(`counts stream sends in the same window: past ${MAX_IN_FLIGHT} scripts in flight and ${LIMIT} waiting, a send rejects with BUS_UNAVAILABLE`, async (t: TestContext) => {
    if (!requireRedis(t, redis)) return;
    const namespace = uniqueNamespace('slow-streams');
    // 10,000 scripts take seconds on a loaded machine: their echoes come late, not never.
    const bus = new RedisBus({
      url: redis!.url,
      namespace,
      maxBufferedPublishes: LIMIT,
      requestTimeoutMs: ECHO_WAIT_MS,
    });
    const history = new RedisMessageHistory(redis!.url, namespace, {
      maxMessages: 100_000,
      maxAgeMs: 60_000,
    });
    bus.useHistory(history, {
      recover: () => Promise.resolve(),
      overflowed: () => undefined,
      abandoned: () => undefined,
    });
    const watcher = new Redis(redis!.url, { maxRetriesPerRequest: 1 });
    const seen: string[] = [];
    watcher.on('message', (_channel: string, raw: string) => {
      const envelope = JSON.parse(raw) as { kind: string; message?: { id: string } };
      if (envelope.kind === 'deliver' && envelope.message) seen.push(envelope.message.id);
    });
    try {
      await watcher.subscribe(`${namespace}:bus`);
      const delivered: string[] = [];
      bus.subscribe((m) => delivered.push(m.id));
      await eventually(() => bus.isConnected(), CONNECT_WAIT_MS, 'the bus connected');
      assert.match(
        (await redisCommand(redis!.port, `CLIENT PAUSE ${PAUSE_MS} ALL`)) ?? '',
        /^\+OK/,
      );

      const total = MAX_IN_FLIGHT + LIMIT + 500;
      const target: OutboundMessage['target'] = { kind: 'users', userIds: ['streamed'] };
      const copies = [{ stream: 'user:streamed', target }];
      const settled: Array<Promise<unknown>> = [];
      let refused = 0;
      for (let i = 0; i < total; i++) {
        const sent = bus.publishInStreams(
          { ...message(`stream-${i}`, 'slow'), target },
          copies,
          history,
        );
        settled.push(
          sent.catch((error: unknown) => {
            assert.ok(error instanceof RealtimeSendError && error.code === 'BUS_UNAVAILABLE');
            refused++;
          }),
        );
      }
      await sleep(100);
      assert.equal(refused, total - MAX_IN_FLIGHT - LIMIT, 'past both bounds, refused');
      const { publisher } = internals(bus);
      // The bus's own lease renewals, one per leaseMs / 3, also wait while Redis is paused: a
      // few; what must not be there is the LIMIT waiting sends or the refused ones.
      assert.ok(
        publisher.commandQueue.length <= MAX_IN_FLIGHT + OWN_COMMANDS,
        `ioredis holds no more (${publisher.commandQueue.length})`,
      );

      // Once Redis answers, the scripts in flight come back, then what waited goes out.
      await Promise.all(settled);
      const accepted = Array.from({ length: MAX_IN_FLIGHT + LIMIT }, (_, i) => `stream-${i}`);
      await eventually(
        () => seen.length >= accepted.length && delivered.length >= accepted.length,
        ECHO_WAIT_MS,
        'every accepted send reached Redis and was delivered here',
      );
      assert.deepEqual(seen, accepted, 'published in the order they were made, each once');
      assert.deepEqual(delivered, accepted, 'delivered here in that order, each once');
      assert.equal(bus.isConnected(), true);
    } finally {
      watcher.disconnect();
      await bus.close();
      await history.close();
    }
  });
});

describe('cluster bus faults: publishes that Redis refuses while reachable', () => {
  const USER = 'refused-publishes';
  let setup: ProxiedCluster | undefined;
  before(async () => {
    // A lease longer than the test: no renewal fails, so nothing but the refusal happens.
    setup = await startProxiedCluster(2, 0, { redis: { leaseMs: 60_000 } }, { user: USER });
  });
  after(() => setup?.close());

  it('hold the later sends of their instance only until Redis takes them again: all arrive, in order, once', async (t: TestContext) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup!.cluster.instances as [ClusterInstance, ClusterInstance];
    const watcher = await TestClient.open(b.wsUrl, b.token('watcher'));
    try {
      await watcher.request({ type: 'subscribe', data: { events: ['upload.progress'] } });
      const seqs = () => watcher.ofType('upload.progress').map((m) => m.data.seq as number);
      await a.service.sendToEvent('upload.progress', { seq: 0 });
      await eventually(() => seqs().length === 1, CONNECT_WAIT_MS, 'the first send arrived');
      // Stream sends are scripts: a's are refused with an error reply, Redis still reachable.
      const denied = await redisCommand(setup!.redis.port, `ACL SETUSER ${USER} -@scripting`);
      assert.match(denied ?? '', /^\+OK/);
      const sends = [1, 2, 3].map((seq) => a.service.sendToEvent('upload.progress', { seq }));
      await sleep(300);
      assert.ok(a.bus.isConnected(), 'a still connected');
      assert.deepEqual(seqs(), [0], 'refused: nothing went out');
      const allowed = await redisCommand(setup!.redis.port, `ACL SETUSER ${USER} +@all`);
      assert.match(allowed ?? '', /^\+OK/);
      await Promise.all(sends);
      // Retried after 1 s: well within the bound.
      await eventually(() => seqs().length === 4, 10_000, 'the refused sends arrived');
      await a.service.sendToEvent('upload.progress', { seq: 4 });
      await eventually(() => seqs().length === 5, CONNECT_WAIT_MS, 'a later send arrived');
      await watcher.request({ type: 'ping' });
      assert.deepEqual(seqs(), [0, 1, 2, 3, 4]);
    } finally {
      watcher.close();
    }
  });
});
