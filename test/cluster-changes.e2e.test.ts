import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ClusterChange } from '../src/realtime/index.js';
import { type ProxiedCluster, startProxiedCluster } from './support/proxied-cluster.js';
import { requireRedis } from './support/redis-server.js';

const BUS = { requestTimeoutMs: 1000, leaseMs: 30_000 };

/** The kinds of change the proxied instance reports over one cut and restore. */
async function changesOverACut(setup: ProxiedCluster): Promise<ClusterChange['kind'][]> {
  const kinds: ClusterChange['kind'][] = [];
  setup.proxied.bus.onClusterChange((change) => kinds.push(change.kind));
  await setup.cutOff();
  await setup.restore();
  return kinds;
}

describe('cluster changes: what an instance reports after an outage', () => {
  let all: ProxiedCluster | undefined;
  let subscriber: ProxiedCluster | undefined;
  before(async () => {
    all = await startProxiedCluster(2, 1, { redis: BUS });
    subscriber = await startProxiedCluster(2, 1, { redis: BUS }, { proxied: 'subscriber' });
  });
  after(async () => {
    await all?.close();
    await subscriber?.close();
  });

  it('cut off from Redis altogether, it reports one reconnection and no resubscription', async (t) => {
    if (!requireRedis(t, all?.redis)) return;
    assert.deepEqual(await changesOverACut(all!), ['reconnected']);
  });

  it('with its subscription alone cut, it reports one resubscription and no reconnection', async (t) => {
    if (!requireRedis(t, subscriber?.redis)) return;
    const { proxied, cluster } = subscriber!;
    const kinds = await changesOverACut(subscriber!);
    assert.deepEqual(kinds, ['resubscribed']);
    // It kept publishing throughout: the others never lost it.
    assert.ok(cluster.instances[0]!.bus.liveInstances().includes(proxied.bus.instanceId));
  });
});
