import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { InProcessBus, RedisBus, type RedisBusOptions } from '../src/realtime/index.js';
import { busContract, outbound, recorder, SETTLE_TYPE, within } from './bus-contract.js';
import { waitForPeers } from './support/bus-peers.js';
import { uniqueNamespace } from './support/cluster.js';
import { requireRedis, type RedisServer, startRedisServer } from './support/redis-server.js';
import { CapturingLogger } from './support/test-app.js';
import { eventually } from './support/test-client.js';

// The buses log through Nest's Logger: kept (TEST_LOGS=1 prints them), not spilled on the output.
Logger.overrideLogger(new CapturingLogger());

/**
 * Sends a settle marker from `from` and asserts that it reached `instances` recorders (each
 * counts a marker as 1; `from` included when it has one): the resolved count proves that each of
 * them has handled the marker, and so everything Redis gave it before.
 */
async function settleFrom(from: RedisBus, instances: number): Promise<void> {
  assert.equal(
    await within(from.publish(outbound(SETTLE_TYPE)), 'settle publish'),
    instances,
    `the settle marker reached ${instances} instance(s)`,
  );
}

busContract({
  name: 'InProcessBus',
  setup: () => Promise.resolve(),
  available: () => true,
  // Delivery happens inside publish(): nothing is left in flight when it resolves.
  create: () => Promise.resolve({ bus: new InProcessBus(), settle: () => Promise.resolve() }),
  teardown: () => Promise.resolve(),
});

{
  let redis: RedisServer | undefined;
  const companions: RedisBus[] = [];
  busContract({
    name: 'RedisBus',
    async setup() {
      redis = await startRedisServer();
    },
    available: (t) => requireRedis(t, redis),
    async create() {
      // Each bus gets a namespace of its own, and a companion there whose publish resolves only
      // once this bus has handled it: since both go through one Redis, in order, anything this
      // bus published earlier (its own echo included) has been handled by then.
      const options: RedisBusOptions = {
        url: redis!.url,
        namespace: uniqueNamespace('contract'),
        requestTimeoutMs: 3000,
      };
      const bus = new RedisBus(options);
      const companion = new RedisBus(options);
      companions.push(companion);
      companion.subscribe(() => 0);
      await waitForPeers([bus, companion]);
      return { bus, settle: () => settleFrom(companion, 1) };
    },
    async teardown() {
      try {
        for (const companion of companions) await within(companion.close(), 'companion close()');
      } finally {
        await redis?.kill();
      }
    },
  });
}

describe('RedisBus between instances', () => {
  let redis: RedisServer | undefined;
  const buses: RedisBus[] = [];
  const clients: Redis[] = [];
  const make = (options: Omit<RedisBusOptions, 'url'>) => {
    const bus = new RedisBus({ url: redis!.url, requestTimeoutMs: 3000, ...options });
    buses.push(bus);
    return bus;
  };

  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    try {
      for (const client of clients) client.disconnect();
      await within(Promise.all(buses.map((bus) => bus.close())), 'close() of every bus');
    } finally {
      await redis?.kill();
    }
  });

  it('two instances on one namespace each deliver what the other published, exactly once; another namespace sees nothing', async (t) => {
    if (!requireRedis(t, redis)) return;
    const namespace = uniqueNamespace('pair');
    const other = uniqueNamespace('other');
    const [a, b, c, d] = [
      make({ namespace }),
      make({ namespace }),
      make({ namespace: other }),
      make({ namespace: other }),
    ] as [RedisBus, RedisBus, RedisBus, RedisBus];
    const [atA, atB, atC, atD] = [recorder(2), recorder(3), recorder(7), recorder(11)];
    a.subscribe(atA.deliver);
    b.subscribe(atB.deliver);
    c.subscribe(atC.deliver);
    d.subscribe(atD.deliver);
    await waitForPeers([a, b]);
    await waitForPeers([c, d]);

    const fromA = outbound('pair.from-a', {}, { kind: 'users', userIds: ['u'] });
    const fromB = outbound('pair.from-b', {}, { kind: 'room', room: 'r' });
    assert.equal(await within(a.publish(fromA), 'publish on a'), 5, 'a: 2 local + 3 from b');
    assert.equal(await within(b.publish(fromB), 'publish on b'), 5, 'b: 3 local + 2 from a');
    // Settle: each side's marker is answered by the other only after what came before it.
    await settleFrom(a, 2);
    await settleFrom(b, 2);
    await settleFrom(d, 2);

    assert.deepEqual(atA.messages, [fromA, fromB], 'a delivered each message exactly once');
    assert.deepEqual(atB.messages, [fromA, fromB], 'b delivered each message exactly once');
    assert.deepEqual(atC.messages, [], 'another namespace delivered nothing');
    assert.deepEqual(atD.messages, [], 'another namespace delivered nothing');
    assert.deepEqual([...c.liveInstances()].sort(), [c.instanceId, d.instanceId].sort());
  });

  it('keeps the publisher order on the other instance over 1000 back-to-back publishes', async (t) => {
    if (!requireRedis(t, redis)) return;
    const namespace = uniqueNamespace('order');
    const [a, b] = [make({ namespace }), make({ namespace })];
    const [atA, atB] = [recorder(1), recorder(1)];
    a.subscribe(atA.deliver);
    b.subscribe(atB.deliver);
    await waitForPeers([a, b]);

    const sent = Array.from({ length: 1000 }, (_, n) => outbound('order.seq', { n }));
    const results = await within(Promise.all(sent.map((m) => a.publish(m))), '1000 publishes');
    assert.deepEqual(
      results,
      sent.map(() => 2),
      'every publish resolves to 2 (one per instance)',
    );
    await settleFrom(a, 2);
    assert.deepEqual(atB.messages, sent, 'b delivered all 1000, once each, in order');
    assert.deepEqual(atA.messages, sent, 'a delivered all 1000, once each, in order');
  });

  it('request() is answered by the handler of the other instance', async (t) => {
    if (!requireRedis(t, redis)) return;
    const namespace = uniqueNamespace('request');
    const [a, b] = [make({ namespace }), make({ namespace })];
    a.subscribe(() => 0);
    b.subscribe(() => 0);
    b.handle('echo', (payload) => ({ echoed: payload, by: b.instanceId }));
    await waitForPeers([a, b]);

    const all = await within(a.request('echo', { x: 1 }), 'request to all');
    assert.deepEqual(all, {
      answers: [{ instanceId: b.instanceId, answer: { echoed: { x: 1 }, by: b.instanceId } }],
      unreachable: [],
      degraded: false,
    });
    const one = await within(a.request('echo', 'hi', { to: b.instanceId }), 'request to b');
    assert.deepEqual(one.answers, [
      { instanceId: b.instanceId, answer: { echoed: 'hi', by: b.instanceId } },
    ]);
  });

  it('close() removes the instance from the liveInstances() of the other at once', async (t) => {
    if (!requireRedis(t, redis)) return;
    const namespace = uniqueNamespace('leave');
    // A long lease: only the close itself can remove it within the wait below.
    const [a, b] = [make({ namespace, leaseMs: 60_000 }), make({ namespace, leaseMs: 60_000 })];
    a.subscribe(() => 0);
    b.subscribe(() => 0);
    await waitForPeers([a, b]);

    await within(a.close(), 'close()');
    await eventually(
      () => !b.liveInstances().includes(a.instanceId),
      1000,
      'the closed instance leaves the liveInstances() of the other',
    );
    assert.deepEqual(b.liveInstances(), [b.instanceId]);
    const atB = recorder(4);
    b.subscribe(atB.deliver);
    assert.equal(
      await within(b.publish(outbound()), 'publish after the other left'),
      4,
      'a send does not wait for the closed instance',
    );
  });

  it('uses the ioredis clients it is given and leaves them open after close()', async (t) => {
    if (!requireRedis(t, redis)) return;
    const namespace = uniqueNamespace('clients');
    const publisher = new Redis(redis.url, { lazyConnect: false });
    const subscriber = new Redis(redis.url, { lazyConnect: false });
    clients.push(publisher, subscriber);
    const a = new RedisBus({
      clients: { publisher, subscriber },
      namespace,
      instanceId: 'given-a',
    });
    buses.push(a);
    const b = make({ namespace });
    const [atA, atB] = [recorder(1), recorder(1)];
    a.subscribe(atA.deliver);
    b.subscribe(atB.deliver);
    await waitForPeers([a, b]);
    assert.equal(a.instanceId, 'given-a', 'the instanceId option is used');

    const message = outbound('clients.hello');
    assert.equal(await within(a.publish(message), 'publish through given clients'), 2);
    await settleFrom(a, 2);
    assert.deepEqual(atB.messages, [message]);

    await within(a.close(), 'close()');
    assert.equal(publisher.status, 'ready', 'the given publisher is still open');
    assert.equal(subscriber.status, 'ready', 'the given subscriber is still open');
    assert.equal(await within(publisher.ping(), 'PING on the given publisher'), 'PONG');
  });

  it('refuses to start without a url or clients', () => {
    assert.throws(() => new RedisBus({ namespace: 'nothing' }), /url|clients/);
  });
});
