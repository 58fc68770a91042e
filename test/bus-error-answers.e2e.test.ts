import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisBus, type RedisBusOptions } from '../src/realtime/index.js';
import { Logger } from '@nestjs/common';
import { within } from './bus-contract.js';
import { waitForPeers } from './support/bus-peers.js';
import { type ClusterInstance, uniqueNamespace } from './support/cluster.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import { requireRedis, type RedisServer, startRedisServer } from './support/redis-server.js';
import { CapturingLogger } from './support/test-app.js';
import { TestClient } from './support/test-client.js';

// The bare buses log through Nest's Logger: kept (TEST_LOGS=1 prints them), not spilled.
const busLogs = new CapturingLogger();
Logger.overrideLogger(busLogs);

// Long enough that an answer in time cannot be told from the wait running out.
const REQUEST_TIMEOUT_MS = 4000;
/** An error answer ends the wait for that instance: well before the timeout. */
const PROMPT_MS = REQUEST_TIMEOUT_MS / 2;
const ADMIN_RATE_LIMIT = 100_000;
const UNKNOWN = '00000000-0000-4000-8000-000000000000';

type HttpResult = { status: number; body: any };

function failure(response: HttpResult, code: number): string {
  assert.equal(response.status, code, `expected ${code}, got ${JSON.stringify(response)}`);
  assert.equal(response.body.status, 'error');
  return response.body.error.message as string;
}

async function timed<T>(promise: Promise<T>, what: string): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await within(promise, what);
  return { value, ms: Math.round(performance.now() - started) };
}

describe('a request answered with an error', () => {
  let redis: RedisServer | undefined;
  const buses: RedisBus[] = [];
  const make = (options: Omit<RedisBusOptions, 'url'>) => {
    const bus = new RedisBus({ url: redis!.url, requestTimeoutMs: REQUEST_TIMEOUT_MS, ...options });
    bus.subscribe(() => 0);
    buses.push(bus);
    return bus;
  };

  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    try {
      await within(Promise.all(buses.map((bus) => bus.close())), 'close() of every bus');
    } finally {
      await redis?.kill();
    }
  });

  it('reports the instances whose handler threw, or that have none, as unreachable, at once', async (t) => {
    if (!requireRedis(t, redis)) return;
    const namespace = uniqueNamespace('error-answers');
    const [asker, throws, rejects, answers] = [0, 1, 2, 3].map(() => make({ namespace })) as [
      RedisBus,
      RedisBus,
      RedisBus,
      RedisBus,
    ];
    throws.handle('lookup', () => {
      throw new Error('lookup failed');
    });
    rejects.handle('lookup', () => Promise.reject(new Error('lookup failed later')));
    answers.handle('lookup', (payload) => ({ found: payload }));
    await waitForPeers([asker, throws, rejects, answers]);
    const failed = [throws.instanceId, rejects.instanceId].sort();

    const all = await timed(asker.request('lookup', 'x'), 'request to all');
    assert.deepEqual(all.value.answers, [
      { instanceId: answers.instanceId, answer: { found: 'x' } },
    ]);
    assert.deepEqual([...all.value.unreachable].sort(), failed, 'the two that failed');
    assert.equal(all.value.degraded, false);
    assert.ok(all.ms < PROMPT_MS, `answered in ${all.ms} ms, not at the timeout`);

    // Waiting for an answer that never comes: the failures are still reported.
    const until = await timed(
      asker.request('lookup', 'y', { until: (answer) => answer === 'never' }),
      'request with until',
    );
    assert.deepEqual([...until.value.unreachable].sort(), failed);
    assert.equal(until.value.answers.length, 1);
    assert.ok(until.ms < PROMPT_MS, `answered in ${until.ms} ms`);

    const one = await timed(asker.request('lookup', 'z', { to: throws.instanceId }), 'to one');
    assert.deepEqual(one.value, { answers: [], unreachable: [throws.instanceId], degraded: false });
    assert.ok(one.ms < PROMPT_MS, `answered in ${one.ms} ms`);

    // A topic nobody handles (an instance of another version): every instance answers an error.
    const none = await timed(asker.request('nobody.handles', {}), 'unhandled topic');
    assert.deepEqual(none.value.answers, []);
    assert.deepEqual(
      [...none.value.unreachable].sort(),
      [throws.instanceId, rejects.instanceId, answers.instanceId].sort(),
    );
    assert.ok(none.ms < PROMPT_MS, `answered in ${none.ms} ms`);

    // The failing side says why, once per failed request, with the topic and the asker.
    const failures = busLogs.lines.filter((line) => line.includes('"bus.request_failed"'));
    const lookups = failures.filter((line) => line.includes('"topic":"lookup"'));
    assert.equal(lookups.length, 5, failures.join('\n'));
    assert.ok(lookups.every((line) => line.startsWith('warn ') && line.includes(asker.instanceId)));
    assert.ok(lookups.some((line) => line.includes('lookup failed later')));
    assert.equal(
      failures.filter((line) => line.includes('no handler for nobody.handles')).length,
      3,
    );
  });
});

describe('admin lookups and kicks when an instance answers with an error', () => {
  let setup: RedisCluster | undefined;
  let n0: ClusterInstance;
  let n1: ClusterInstance;
  /** In the namespace without the module's handlers, as an instance of another version is. */
  let other: RedisBus | undefined;
  const clients: TestClient[] = [];

  const admin = (node: ClusterInstance, method: string, id: string) =>
    timed(node.http(method, `/ws/connections/${id}`, node.adminToken()), `${method} ${id}`);

  before(async () => {
    setup = await startRedisCluster(2, {
      adminRateLimit: ADMIN_RATE_LIMIT,
      redis: { requestTimeoutMs: REQUEST_TIMEOUT_MS },
    });
    if (!setup) return;
    [n0, n1] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
  });
  after(async () => {
    for (const client of clients) client.close();
    try {
      await other?.close();
    } finally {
      await setup?.close();
    }
  });

  it('answers 503, not 404, for an id the failing instance may own', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const onN1 = await TestClient.open(n1.wsUrl, n1.token('ann'));
    clients.push(onN1);
    const onN1Id = onN1.received[0]!.data.connection_id as string;
    other = new RedisBus({
      url: setup.redis.url,
      namespace: setup.cluster.namespace,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    other.subscribe(() => 0);
    await waitForPeers([n0.bus, n1.bus, other]);

    for (const method of ['GET', 'DELETE']) {
      const { value, ms } = await admin(n0, method, UNKNOWN);
      failure(value, 503);
      assert.ok(ms < PROMPT_MS, `${method} answered in ${ms} ms, not at the timeout`);
    }
    const stats = await n0.http('GET', '/ws/stats', n0.adminToken());
    assert.deepEqual(stats.body.data.unreachable_instances, [other.instanceId]);

    // The owner's answer settles it, whatever the failing instance said.
    assert.equal((await admin(n0, 'GET', onN1Id)).value.status, 200);
    assert.equal((await admin(n0, 'DELETE', onN1Id)).value.status, 200);
    assert.deepEqual(await onN1.waitClose(5000), { code: 4004, reason: 'Disconnected by admin' });

    // Once it has left, nobody may own the id: 404.
    await within(other.close(), 'close() of the other instance');
    await setup.cluster.waitForMembership();
    for (const method of ['GET', 'DELETE']) failure((await admin(n0, method, UNKNOWN)).value, 404);
  });
});
