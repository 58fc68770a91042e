import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import { requireRedis } from './support/redis-server.js';
import { TestClient } from './support/test-client.js';

const LIMIT = 6;

describe('rate limit across instances', () => {
  let setup: RedisCluster | undefined;

  before(async () => {
    setup = await startRedisCluster(2, {
      rateLimitMessages: LIMIT,
      rateLimitWindowMs: 60_000,
    });
  });
  after(async () => {
    await setup?.close();
  });

  it('counts one user’s messages on every instance against one limit', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup.cluster.instances;
    const onA = await TestClient.open(a!.wsUrl, a!.token('kim'));
    const onB = await TestClient.open(b!.wsUrl, b!.token('kim'));
    const answers: string[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const client = i % 2 === 0 ? onA : onB;
      answers.push((await client.request({ type: 'ping' })).type);
    }
    assert.deepEqual(answers, Array(LIMIT).fill('pong'));
    const over = await onB.request({ type: 'ping' });
    assert.equal(over.type, 'error');
    assert.equal(over.data.code, 'RATE_LIMIT_EXCEEDED');
    const otherUser = await TestClient.open(a!.wsUrl, a!.token('lou'));
    assert.equal((await otherUser.request({ type: 'ping' })).type, 'pong', 'others are unaffected');
    for (const client of [onA, onB, otherUser]) client.close();
  });

  it('keeps limiting locally while Redis is down, and shares the count again after', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a] = setup.cluster.instances;
    await setup.redis.stop();
    try {
      const client = await TestClient.open(a!.wsUrl, a!.token('max'));
      const types: string[] = [];
      for (let i = 0; i <= LIMIT; i++) types.push((await client.request({ type: 'ping' })).type);
      assert.deepEqual(types, [...Array(LIMIT).fill('pong'), 'error']);
      client.close();
    } finally {
      await setup.redis.start();
    }
    await setup.cluster.waitForMembership(15_000);
  });
});
