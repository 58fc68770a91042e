import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterInstance } from './support/cluster.js';
import { type ClusterClient, CROSS_WAIT_MS, openOn, settleVia } from './support/cluster-clients.js';
import { type ProxiedCluster, startProxiedCluster } from './support/proxied-cluster.js';
import { requireRedis } from './support/redis-server.js';
import { eventually } from './support/test-client.js';

const REQUEST_TIMEOUT_MS = 1000;
/** Between a disconnect and the user's next connection: longer than any delivery takes here. */
const SINCE_MS = 1000;
const BANNED = { code: 4101, reason: 'banned' };

interface TwoInstances {
  /** Instance 0, with a direct connection to Redis. */
  a: ClusterInstance;
  /** Instance 1, behind the proxy. */
  p: ClusterInstance;
  cutOff: () => Promise<void>;
  restore: () => Promise<void>;
}

interface ProxiedPart {
  /** What of the second instance goes through the proxy (startProxiedCluster). */
  proxied?: 'all' | 'subscriber';
  maxConnectionsPerUser?: number;
}

/**
 * Two instances, the second behind a proxy, for the tests of a describe block; `open` keeps the
 * clients it opens, to be closed after.
 */
function twoInstancesOneProxied(
  leaseMs: number,
  { proxied = 'all', maxConnectionsPerUser }: ProxiedPart = {},
): {
  started: (t: TestContext) => TwoInstances | undefined;
  open: (instance: ClusterInstance, userId: string) => Promise<ClusterClient>;
} {
  let setup: ProxiedCluster | undefined;
  const clients: ClusterClient[] = [];
  before(async () => {
    setup = await startProxiedCluster(
      2,
      1,
      {
        redis: { requestTimeoutMs: REQUEST_TIMEOUT_MS, leaseMs },
        ...(maxConnectionsPerUser === undefined ? {} : { maxConnectionsPerUser }),
      },
      { proxied },
    );
  });
  after(async () => {
    for (const c of clients) c.client.close();
    await setup?.close();
  });
  return {
    started: (t) => {
      if (!requireRedis(t, setup?.redis)) return undefined;
      const { cluster, proxied, cutOff, restore } = setup!;
      return { a: cluster.instances[0]!, p: proxied, cutOff, restore };
    },
    open: async (instance, userId) => {
      const c = await openOn(instance, userId);
      clients.push(c);
      return c;
    },
  };
}

/**
 * `clients` still open once everything `sender` sent before has reached `witness`, a connection
 * on the same instance that nothing closes.
 */
async function assertStillOpen(
  sender: ClusterInstance,
  witness: ClusterClient,
  clients: ClusterClient[],
): Promise<void> {
  await settleVia(sender, [witness]);
  for (const c of clients) {
    assert.equal(
      c.client.closeInfo,
      undefined,
      `${c.label} still open (${JSON.stringify(c.client.closeInfo)})`,
    );
  }
}

describe('disconnects made while an instance is cut off reach it once it is back', () => {
  // Leases outlast the cuts: the instance cut off is still asked (in vain) meanwhile.
  const { started: cluster, open } = twoInstancesOneProxied(30_000);

  it('a user disconnected by the instance that stayed connected: their connections there that were open close; one opened since stays', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const onA = await open(a, 'outlaw');
    const before = await open(p, 'outlaw');

    await cutOff();
    assert.equal(await a.service.disconnectUser('outlaw', BANNED.code, BANNED.reason), 1, 'A only');
    assert.deepEqual(await onA.client.waitClose(CROSS_WAIT_MS), BANNED);
    // The user's new connection, made after the decision (well past the time a late one takes to
    // arrive, which it may also end), on the instance that did not hear it.
    await sleep(SINCE_MS);
    const since = await open(p, 'outlaw');
    assert.equal(before.client.closeInfo, undefined, 'not heard while cut off');
    await restore();

    assert.deepEqual(await before.client.waitClose(CROSS_WAIT_MS), BANNED);
    await assertStillOpen(a, await open(p, 'witness'), [since]);
  });

  it('a user disconnected by the instance that was cut off: their connections on the others close', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const onA = await open(a, 'rebel');
    const onP = await open(p, 'rebel');

    await cutOff();
    assert.equal(await p.service.disconnectUser('rebel', BANNED.code, BANNED.reason), 1, 'P only');
    assert.deepEqual(await onP.client.waitClose(CROSS_WAIT_MS), BANNED);
    assert.equal(onA.client.closeInfo, undefined, 'not heard while cut off');
    await restore();

    assert.deepEqual(await onA.client.waitClose(CROSS_WAIT_MS), BANNED);
  });

  it('a connection kicked while its instance was cut off closes once it is back; the user’s others stay', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const kicked = await open(p, 'rowdy');
    const other = await open(p, 'rowdy');

    await cutOff();
    assert.equal(await a.service.disconnectConnection(kicked.connectionId), false, 'not found');
    await restore();

    const closed = await kicked.client.waitClose(CROSS_WAIT_MS);
    assert.equal(closed.code, 4004);
    await assertStillOpen(a, await open(p, 'witness'), [other]);
  });
});

describe('disconnects reach an instance whose lease lapsed while it was cut off', () => {
  // Short leases: the cut outlasts two of them, and the others stop asking the instance at all.
  const LEASE_MS = 1500;
  const { started: cluster, open } = twoInstancesOneProxied(LEASE_MS);

  it('a user disconnected after the others counted it gone', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const onP = await open(p, 'ghost');

    await cutOff();
    await eventually(
      () => !a.bus.liveInstances().includes(p.bus.instanceId),
      3 * LEASE_MS + 2000,
      'A counting P gone',
    );
    // Nobody left to ask: the disconnect is not "unanswered" anywhere.
    assert.equal(await a.service.disconnectUser('ghost', BANNED.code, BANNED.reason), 0);
    await restore();

    assert.deepEqual(await onP.client.waitClose(CROSS_WAIT_MS), BANNED);
  });
});

describe('an eviction its instance could not hear (its subscription down) still ends the connection', () => {
  // Only the subscription is cut: no reconnection follows, so no rewrite of presence either.
  const { started: cluster, open } = twoInstancesOneProxied(30_000, {
    proxied: 'subscriber',
    maxConnectionsPerUser: 1,
  });

  it('the oldest connection, on the instance cut off, is told and closed with 4008 once it is back', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const oldest = await open(p, 'crowded');

    await cutOff();
    const newest = await open(a, 'crowded');
    // The eviction was asked of P, in vain: give it longer than its request timeout.
    await sleep(2 * REQUEST_TIMEOUT_MS);
    assert.equal(oldest.client.closeInfo, undefined, 'not heard while cut off');
    await restore();

    const closed = await oldest.client.waitClose(CROSS_WAIT_MS);
    assert.equal(closed.code, 4008);
    assert.equal(oldest.client.ofType('error').at(-1)?.data.code, 'CONNECTION_LIMIT_EXCEEDED');
    await assertStillOpen(a, await open(a, 'witness'), [newest]);
  });
});
