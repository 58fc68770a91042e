import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ClusterInstance } from './support/cluster.js';
import {
  assertReachedOnce,
  type ClusterClient,
  CROSS_WAIT_MS,
  openOn,
  settleVia,
} from './support/cluster-clients.js';
import { requireRedis } from './support/redis-server.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import { eventually } from './support/test-client.js';

async function shutDown(booted: RedisCluster | undefined, clients: ClusterClient[]): Promise<void> {
  for (const c of clients) c.client.close();
  await booted?.close();
}

describe('cluster of 3: every targeting mode reaches each connection exactly once', () => {
  let booted: RedisCluster | undefined;
  const clients: ClusterClient[] = [];
  let i0: ClusterInstance, i1: ClusterInstance, i2: ClusterInstance;
  // multi has a connection on instance 0 and one on instance 1
  let multi0: ClusterClient, multi1: ClusterClient;
  let alice0: ClusterClient, bob1: ClusterClient, carol2: ClusterClient;
  let sub0: ClusterClient, sub1: ClusterClient, sub2: ClusterClient;

  before(async () => {
    booted = await startRedisCluster(3);
    if (!booted) return;
    [i0, i1, i2] = booted.cluster.instances as [ClusterInstance, ClusterInstance, ClusterInstance];
    const open = async (instance: ClusterInstance, userId: string) => {
      const c = await openOn(instance, userId);
      clients.push(c);
      return c;
    };
    multi0 = await open(i0, 'multi');
    multi1 = await open(i1, 'multi');
    alice0 = await open(i0, 'alice');
    bob1 = await open(i1, 'bob');
    carol2 = await open(i2, 'carol');
    sub0 = await open(i0, 'sub-0');
    sub1 = await open(i1, 'sub-1');
    sub2 = await open(i2, 'sub-2');
    for (const c of [sub0, sub1, sub2]) {
      const ack = await c.client.request({
        type: 'subscribe',
        data: { events: ['review.created'] },
      });
      assert.equal(ack.type, 'subscription.acknowledged');
      assert.deepEqual(ack.data.events, ['review.created']);
    }
    // Room members on every instance (one of multi's two connections only), each joined where
    // its connection lives.
    assert.equal(await i0.service.joinRoom('room-x', { connectionId: multi0.connectionId }), 1);
    assert.equal(await i1.service.joinRoom('room-x', { userId: 'bob' }), 1);
    assert.equal(await i2.service.joinRoom('room-x', { connectionId: carol2.connectionId }), 1);
  });

  after(() => shutDown(booted, clients));

  it('every instance lists all 3 in liveInstances()', (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    const ids = [i0, i1, i2].map((i) => i.bus.instanceId).sort();
    assert.equal(new Set(ids).size, 3, 'three distinct instance ids');
    for (const instance of [i0, i1, i2]) {
      assert.deepEqual([...instance.bus.liveInstances()].sort(), ids, `on ${instance.index}`);
      assert.equal(instance.bus.isConnected(), true);
    }
  });

  it('sendToUser: a user with connections on 2 instances gets it on both, from a third', async (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    assert.equal(await i2.service.sendToUser('multi', 'cluster.user', { n: 1 }), 2);
    await assertReachedOnce(i2, 'cluster.user', [multi0, multi1], clients);
  });

  it('sendToUsers: several users on several instances, unknown users count 0', async (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    const reached = await i0.service.sendToUsers(
      ['alice', 'bob', 'carol', 'multi', 'alice', 'nobody'],
      'cluster.users',
      {},
    );
    assert.equal(reached, 5, 'alice + bob + carol + multi (2): a user listed twice counts once');
    await assertReachedOnce(i0, 'cluster.users', [alice0, bob1, carol2, multi0, multi1], clients);
  });

  it('sendToEvent: subscribers on all 3 instances, nobody else', async (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    assert.equal(await i1.service.sendToEvent('review.created', { review_id: 'r1' }), 3);
    await assertReachedOnce(i1, 'review.created', [sub0, sub1, sub2], clients);
  });

  it('sendToRoom: members on all 3 instances, nobody else', async (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    assert.equal(await i1.service.sendToRoom('room-x', 'cluster.room', {}), 3);
    await assertReachedOnce(i1, 'cluster.room', [multi0, bob1, carol2], clients);
  });

  it('broadcast: every connection on every instance', async (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    assert.equal(await i2.service.broadcast('cluster.all', {}), clients.length);
    await assertReachedOnce(i2, 'cluster.all', clients, clients);
  });

  it('broadcast exceptUserId: everyone but that user on any instance', async (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    const reached = await i0.service.broadcast('cluster.except', {}, { exceptUserId: 'multi' });
    assert.equal(reached, clients.length - 2);
    const others = clients.filter((c) => c.userId !== 'multi');
    await assertReachedOnce(i0, 'cluster.except', others, clients);
  });

  it('sendToConnection: a connection on another instance, only that one', async (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    assert.equal(await i0.service.sendToConnection(multi1.connectionId, 'cluster.conn', {}), 1);
    await assertReachedOnce(i0, 'cluster.conn', [multi1], clients);
    assert.equal(
      await i1.service.sendToConnection('no-such-connection', 'cluster.none', {}),
      0,
      'an unknown connection id reaches nobody on any instance',
    );
    await assertReachedOnce(i1, 'cluster.conn', [multi1], clients);
  });

  it('publishMessage: the returned id is the one every recipient on every instance sees', async (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    const result = await i1.service.publishMessage(
      'cluster.publish',
      { x: 1 },
      {
        kind: 'users',
        userIds: ['alice', 'carol', 'multi'],
      },
    );
    assert.equal(result.reached, 4);
    await assertReachedOnce(
      i1,
      'cluster.publish',
      [alice0, carol2, multi0, multi1],
      clients,
      result.id,
    );
    const [seen] = [carol2.client.ofType('cluster.publish')[0]!];
    assert.deepEqual(seen.data, { x: 1 }, 'data arrives intact on another instance');
  });
});

describe('cluster of 3: order from one sender', () => {
  let booted: RedisCluster | undefined;
  const clients: ClusterClient[] = [];

  before(async () => {
    booted = await startRedisCluster(3);
    if (!booted) return;
    for (const instance of booted.cluster.instances) {
      clients.push(await openOn(instance, `seq-${instance.index}`));
    }
  });
  after(() => shutDown(booted, clients));

  it('500 numbered messages from one instance reach users on all 3, complete and in order', async (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    const sender = booted.cluster.instances[0]!;
    const users = clients.map((c) => c.userId);
    // Fired back to back, not awaited one by one: the order is the call order.
    const sends = Array.from({ length: 500 }, (_, n) =>
      sender.service.sendToUsers(users, 'cluster.seq', { n }),
    );
    const reached = await Promise.all(sends);
    assert.deepEqual(
      reached,
      sends.map(() => 3),
      'every send resolves to 3, one per instance',
    );
    for (const c of clients) {
      await eventually(
        () => c.client.ofType('cluster.seq').length >= 500,
        15_000,
        `500 messages at ${c.label}`,
      );
    }
    const seen = await settleVia(sender, clients);
    const idsByN = new Map<number, string>();
    for (const c of clients) {
      const got = seen.get(c)!.filter((m) => m.type === 'cluster.seq');
      assert.deepEqual(
        got.map((m) => m.data.n),
        Array.from({ length: 500 }, (_, n) => n),
        `${c.label} got 0..499 exactly once, in order`,
      );
      for (const m of got) {
        const known = idsByN.get(m.data.n);
        if (known === undefined) idsByN.set(m.data.n, m.id);
        else assert.equal(m.id, known, `message ${m.data.n} has one id everywhere`);
      }
    }
    assert.equal(new Set(idsByN.values()).size, 500, 'each message has its own id');
  });
});

describe('cluster of 3: membership', () => {
  let booted: RedisCluster | undefined;
  const clients: ClusterClient[] = [];

  before(async () => {
    // The default lease (10 s): within the waits below, only a close removes an instance.
    booted = await startRedisCluster(3);
    if (!booted) return;
    for (const instance of booted.cluster.instances) {
      clients.push(await openOn(instance, `member-${instance.index}`));
    }
  });
  after(() => shutDown(booted, clients));

  it('liveInstances() lists the same 3 instances on each', (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    const ids = booted.cluster.instances.map((i) => i.bus.instanceId).sort();
    for (const instance of booted.cluster.instances) {
      assert.deepEqual([...instance.bus.liveInstances()].sort(), ids);
    }
  });

  it('closing one app removes it from the others at once; sends then do not wait for it', async (t) => {
    if (!requireRedis(t, booted?.redis)) return;
    const [i0, i1, i2] = booted.cluster.instances as [
      ClusterInstance,
      ClusterInstance,
      ClusterInstance,
    ];
    const gone = i2.bus.instanceId;
    await i2.close();
    const closeInfo = await clients[2]!.client.waitClose(CROSS_WAIT_MS);
    assert.equal(closeInfo.code, 1001, 'its clients were told it is going away');
    await eventually(
      () => ![i0, i1].some((i) => i.bus.liveInstances().includes(gone)),
      1500,
      'the closed instance leaving liveInstances() of the others (long before its 10 s lease)',
    );
    for (const instance of [i0, i1]) {
      assert.deepEqual(
        [...instance.bus.liveInstances()].sort(),
        [i0.bus.instanceId, i1.bus.instanceId].sort(),
      );
    }
    const started = Date.now();
    assert.equal(await i0.service.broadcast('cluster.after-leave', {}), 2);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 1000, `the send did not wait for the closed instance (${elapsed} ms)`);
    await assertReachedOnce(i0, 'cluster.after-leave', clients.slice(0, 2), clients.slice(0, 2));
  });
});
