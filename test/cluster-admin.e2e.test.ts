import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RealtimeBus } from '../src/realtime/index.js';
import type { ClusterInstance } from './support/cluster.js';
import { requireRedis } from './support/redis-server.js';
import { type ProxiedCluster, startProxiedCluster } from './support/proxied-cluster.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import { startTestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';

// Short leases and request timeouts keep the "instance gone" cases to a few seconds.
const LEASE_MS = 4000;
const REQUEST_TIMEOUT_MS = 1000;
const BUS = { leaseMs: LEASE_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS };
// Many admin requests in a few seconds (polling included); the admin rate limit is not tested here.
const ADMIN_RATE_LIMIT = 100_000;
/** Set in the environment of a child process that is one more instance, killed with SIGKILL. */
const CHILD_ENV = 'CLUSTER_ADMIN_TEST_CHILD';

type HttpResult = { status: number; body: any };

function success(response: HttpResult): any {
  assert.equal(response.status, 200, `expected 200, got ${JSON.stringify(response)}`);
  assert.equal(response.body.status, 'success');
  return response.body.data;
}

function failure(response: HttpResult, code: number): string {
  assert.equal(response.status, code, `expected ${code}, got ${JSON.stringify(response)}`);
  assert.equal(response.body.status, 'error');
  assert.equal(response.body.error.code, code);
  return response.body.error.message as string;
}

function connectionIdOf(client: TestClient): string {
  return client.received[0]!.data.connection_id as string;
}

function byConnectedAtThenId(a: any, b: any): number {
  const byTime = Date.parse(a.connected_at) - Date.parse(b.connected_at);
  return byTime !== 0 ? byTime : a.connection_id < b.connection_id ? -1 : 1;
}

async function subscribe(client: TestClient, events: string[]): Promise<void> {
  const ack = await client.request({ type: 'subscribe', data: { events } });
  assert.equal(ack.type, 'subscription.acknowledged');
}

/**
 * The topics `bus` asks the other instances about while `run` runs (the real bus still asks
 * them and answers): which request a call makes, seen from outside.
 */
async function topicsAskedDuring(bus: RealtimeBus, run: () => Promise<unknown>): Promise<string[]> {
  const topics: string[] = [];
  const request = bus.request.bind(bus);
  bus.request = ((...args: Parameters<RealtimeBus['request']>) => {
    topics.push(args[0]);
    return request(...args);
  }) as RealtimeBus['request'];
  try {
    await run();
  } finally {
    bus.request = request;
  }
  return topics;
}

/** One more instance in a child process, so that it can die without any cleanup (SIGKILL). */
async function startChildInstance(
  redisUrl: string,
  namespace: string,
): Promise<{ child: ChildProcess; port: number; instanceId: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    [CHILD_ENV]: JSON.stringify({ redisUrl, namespace }),
  };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  process.once('exit', () => child.kill('SIGKILL'));
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output = (output + String(chunk)).slice(-4000)));
  const ready = await new Promise<string | undefined>((resolve) => {
    let line = '';
    const timer = setTimeout(() => resolve(undefined), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      line += String(chunk);
      if (line.includes('\n')) {
        clearTimeout(timer);
        resolve(line.slice(0, line.indexOf('\n')));
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`the child instance did not start within 15 s: ${output.trim()}`);
  }
  const { port, instanceId } = JSON.parse(ready) as { port: number; instanceId: string };
  return { child, port, instanceId };
}

/** The child's side: one instance on the cluster's namespace; ends with its parent's stdin. */
async function runChildInstance(config: string): Promise<void> {
  const { redisUrl, namespace } = JSON.parse(config) as { redisUrl: string; namespace: string };
  const app = await startTestApp({
    realtime: { adminRateLimit: ADMIN_RATE_LIMIT, redis: { ...BUS, url: redisUrl, namespace } },
  });
  const instanceId = app.app.get(RealtimeBus).instanceId;
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
  // Never outlives the test run, even if its parent dies unseen.
  setTimeout(() => process.exit(1), 120_000).unref();
  process.stdout.write(`${JSON.stringify({ port: app.port, instanceId })}\n`);
}

const childConfig = process.env[CHILD_ENV];
if (childConfig !== undefined) {
  await runChildInstance(childConfig);
} else {
  describe('admin API across 3 instances on one Redis', () => {
    let setup: RedisCluster | undefined;
    let nodes: ClusterInstance[];
    const clients: TestClient[] = [];
    // a0, b0 on instance 0; a1, c1 on instance 1; d2 on instance 2 (a = alice, b = bob, ...).
    const on: Record<string, TestClient> = {};
    /** Which instance holds each connection id. */
    const owner = new Map<string, string>();

    async function open(name: string, user: string, node: ClusterInstance): Promise<TestClient> {
      const client = await TestClient.open(node.wsUrl, node.token(user));
      clients.push(client);
      on[name] = client;
      owner.set(connectionIdOf(client), node.bus.instanceId);
      return client;
    }

    function admin(node: ClusterInstance, method: string, path: string) {
      return node.http(method, path, node.adminToken());
    }

    before(async () => {
      setup = await startRedisCluster(3, {
        adminRateLimit: ADMIN_RATE_LIMIT,
        redis: BUS,
      });
      if (!setup) return;
      nodes = setup.cluster.instances;
      const [n0, n1, n2] = nodes as [ClusterInstance, ClusterInstance, ClusterInstance];
      await open('a0', 'alice', n0);
      await open('b0', 'bob', n0);
      await open('a1', 'alice', n1);
      await open('c1', 'carol', n1);
      await open('d2', 'dave', n2);
      await subscribe(on.a0!, ['upload.progress', 'review.updated']);
      await subscribe(on.c1!, ['upload.progress']);
      await subscribe(on.d2!, ['file.ready']);
      assert.equal(await n0.service.joinRoom('team', { connectionId: connectionIdOf(on.a0!) }), 1);
      assert.equal(await n1.service.joinRoom('team', { connectionId: connectionIdOf(on.a1!) }), 1);
      assert.equal(await n2.service.joinRoom('solo', { connectionId: connectionIdOf(on.d2!) }), 1);
    });

    after(async () => {
      for (const client of clients) client.close();
      await setup?.close();
    });

    it('GET /ws/stats totals every instance and lists each one', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const ids = nodes.map((node) => node.bus.instanceId);
      for (const node of nodes) {
        const stats = success(await admin(node, 'GET', '/ws/stats'));
        assert.equal(stats.total_connections, 5);
        assert.equal(stats.unique_users, 4, 'alice on two instances is one user');
        assert.deepEqual(stats.connections_per_user, { alice: 2, bob: 1, carol: 1, dave: 1 });
        assert.equal(stats.average_connections_per_user, 1.25);
        assert.deepEqual(stats.subscriptions, {
          'upload.progress': 2,
          'review.updated': 1,
          'file.ready': 1,
        });
        assert.deepEqual(stats.rooms, { team: 2, solo: 1 });
        // Three subscribes in; five connection.established and three acknowledgements out.
        assert.equal(stats.messages_in, 3);
        assert.equal(stats.messages_out, 8);
        assert.equal(stats.server_info.instance_id, node.bus.instanceId);
        assert.equal(stats.server_info.max_connections_per_user, 3);
        assert.deepEqual(stats.unreachable_instances, []);
        assert.equal(stats.degraded, false);
        // This instance first, then the others by id.
        const rows = [...stats.instances];
        assert.equal(rows[0].instance_id, node.bus.instanceId);
        assert.deepEqual(
          rows.slice(1).map((row: any) => row.instance_id),
          ids.filter((id) => id !== node.bus.instanceId).sort(),
        );
        rows.sort((a: any, b: any) => ids.indexOf(a.instance_id) - ids.indexOf(b.instance_id));
        assert.deepEqual(rows, [
          {
            instance_id: ids[0],
            total_connections: 2,
            unique_users: 2,
            messages_in: 1,
            messages_out: 3,
          },
          {
            instance_id: ids[1],
            total_connections: 2,
            unique_users: 2,
            messages_in: 1,
            messages_out: 3,
          },
          {
            instance_id: ids[2],
            total_connections: 1,
            unique_users: 1,
            messages_in: 1,
            messages_out: 2,
          },
        ]);
      }
    });

    it('GET /ws/connections merges every instance, tagged and paginated', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const all = [...owner.keys()];
      let reference: Array<[string, string]> | undefined;
      for (const node of nodes) {
        const page = success(await admin(node, 'GET', '/ws/connections'));
        assert.equal(page.total, 5);
        assert.equal(page.limit, 100);
        assert.equal(page.offset, 0);
        assert.deepEqual(page.unreachable_instances, []);
        assert.equal(page.degraded, false);
        assert.deepEqual(page.connections.map((c: any) => c.connection_id).sort(), [...all].sort());
        for (const summary of page.connections) {
          assert.equal(summary.instance_id, owner.get(summary.connection_id));
          assert.equal(summary.remote_address, '127.0.0.1');
        }
        assert.deepEqual(page.connections, [...page.connections].sort(byConnectedAtThenId));
        const order = page.connections.map((c: any) => [c.connection_id, c.instance_id]);
        // Every instance answers the same list.
        if (reference) assert.deepEqual(order, reference);
        reference ??= order;
      }

      const node = nodes[1]!;
      const pages: any[] = [];
      for (const offset of [0, 2, 4]) {
        const page = success(await admin(node, 'GET', `/ws/connections?limit=2&offset=${offset}`));
        assert.equal(page.total, 5);
        assert.equal(page.limit, 2);
        assert.equal(page.offset, offset);
        assert.equal(page.connections.length, offset === 4 ? 1 : 2);
        pages.push(...page.connections.map((c: any) => [c.connection_id, c.instance_id]));
      }
      assert.deepEqual(pages, reference);
      const past = success(await admin(node, 'GET', '/ws/connections?offset=5'));
      assert.equal(past.total, 5);
      assert.deepEqual(past.connections, []);

      const alice = success(await admin(node, 'GET', '/ws/connections?user_id=alice'));
      assert.equal(alice.total, 2);
      const aliceIds = [connectionIdOf(on.a0!), connectionIdOf(on.a1!)];
      assert.deepEqual(
        alice.connections.map((c: any) => c.connection_id).sort(),
        [...aliceIds].sort(),
      );
      const second = success(
        await admin(node, 'GET', '/ws/connections?user_id=alice&limit=1&offset=1'),
      );
      assert.equal(second.total, 2);
      assert.deepEqual(second.connections, [alice.connections[1]]);
      const dave = success(await admin(nodes[0]!, 'GET', '/ws/connections?user_id=dave'));
      assert.equal(dave.total, 1);
      assert.equal(dave.connections[0].instance_id, nodes[2]!.bus.instanceId);
    });

    it('GET /ws/connections/:id answers with the owning instance live details', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const id = connectionIdOf(on.d2!);
      await on.d2!.request({ type: 'ping', data: {} });
      const details = success(await admin(nodes[0]!, 'GET', `/ws/connections/${id}`));
      assert.equal(details.connection_id, id);
      assert.equal(details.instance_id, nodes[2]!.bus.instanceId);
      assert.equal(details.user_id, 'dave');
      assert.equal(details.is_admin, false);
      assert.deepEqual(details.subscriptions, ['file.ready']);
      assert.deepEqual(details.rooms, ['solo']);
      // subscribe and ping in; connection.established, subscription.acknowledged and pong out.
      assert.equal(details.messages_in, 2);
      assert.equal(details.messages_out, 3);
      assert.equal(details.message_count, 5);
      assert.equal(details.remote_address, '127.0.0.1');
      const local = success(await admin(nodes[2]!, 'GET', `/ws/connections/${id}`));
      assert.equal(local.instance_id, nodes[2]!.bus.instanceId);
      assert.equal(local.messages_out, 3);
    });

    it('DELETE /ws/connections/:id closes a connection of another instance with 4004', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const id = connectionIdOf(on.c1!);
      const data = success(await admin(nodes[0]!, 'DELETE', `/ws/connections/${id}`));
      assert.deepEqual(data, { connection_id: id, disconnected: true });
      // The owner had started the close when the answer came: it no longer counts it.
      const stats = success(await admin(nodes[1]!, 'GET', '/ws/stats'));
      assert.equal(stats.total_connections, 4);
      assert.deepEqual(stats.connections_per_user, { alice: 2, bob: 1, dave: 1 });
      const closed = await on.c1!.waitClose();
      assert.equal(closed.code, 4004);
      assert.equal(closed.reason, 'Disconnected by admin');
      for (const node of nodes) failure(await admin(node, 'GET', `/ws/connections/${id}`), 404);
      failure(await admin(nodes[2]!, 'DELETE', `/ws/connections/${id}`), 404);
      // The others are untouched.
      assert.equal((await on.a1!.request({ type: 'ping', data: {} })).type, 'pong');
    });

    it('answers 404 on GET and DELETE of an id no instance has', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const unknown = '00000000-0000-4000-8000-000000000000';
      for (const node of nodes) {
        assert.match(
          failure(await admin(node, 'GET', `/ws/connections/${unknown}`), 404),
          /No connection/,
        );
        failure(await admin(node, 'DELETE', `/ws/connections/${unknown}`), 404);
      }
    });

    it('lists an instance killed without cleanup as unreachable, then forgets it', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const { child, port, instanceId } = await startChildInstance(
        setup.redis.url,
        setup.cluster.namespace,
      );
      try {
        const node = nodes[0]!;
        await eventually(() => node.bus.liveInstances().includes(instanceId), 5000, 'child seen');
        const eve = await TestClient.open(`ws://127.0.0.1:${port}/ws`, node.token('eve'));
        clients.push(eve);
        const withChild = success(await admin(node, 'GET', '/ws/stats'));
        assert.equal(withChild.total_connections, 5);
        assert.equal(withChild.instances.length, 4);
        assert.equal(withChild.connections_per_user.eve, 1);

        child.kill('SIGKILL');
        await eve.waitClose(5000);
        // All at once: each waits REQUEST_TIMEOUT_MS for the child, whose lease (renewed every
        // LEASE_MS / 3) must still be current, so that it is still asked.
        const eveId = connectionIdOf(eve);
        const [statsAnswer, listAnswer, getAnswer, deleteAnswer] = await Promise.all([
          admin(node, 'GET', '/ws/stats'),
          admin(node, 'GET', '/ws/connections'),
          admin(node, 'GET', `/ws/connections/${eveId}`),
          admin(node, 'DELETE', `/ws/connections/${eveId}`),
        ]);
        const stats = success(statsAnswer);
        assert.deepEqual(stats.unreachable_instances, [instanceId]);
        assert.equal(stats.degraded, false);
        assert.equal(stats.total_connections, 4);
        assert.equal(stats.instances.length, 3);
        assert.ok(!stats.instances.some((row: any) => row.instance_id === instanceId));
        const list = success(listAnswer);
        assert.equal(list.total, 4);
        assert.deepEqual(list.unreachable_instances, [instanceId]);
        // The silent instance may own the id: not known, so 503, not 404.
        failure(getAnswer, 503);
        failure(deleteAnswer, 503);

        // Gone within two leases: no longer asked, no longer unreachable.
        await eventually(
          async () => {
            const s = success(await admin(node, 'GET', '/ws/stats'));
            return s.unreachable_instances.length === 0 && s.instances.length === 3;
          },
          2 * LEASE_MS + 2 * REQUEST_TIMEOUT_MS + 2000,
          'the killed instance forgotten',
        );
        failure(await admin(node, 'GET', `/ws/connections/${connectionIdOf(eve)}`), 404);
      } finally {
        child.kill('SIGKILL');
      }
    });

    it('answers with local data and degraded: true while Redis is down, then recovers', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const node = nodes[0]!;
      await setup.redis.stop();
      try {
        await eventually(
          async () => success(await admin(node, 'GET', '/ws/stats')).degraded === true,
          5000,
          'stats degraded',
        );
        const stats = success(await admin(node, 'GET', '/ws/stats'));
        assert.equal(stats.total_connections, 2);
        assert.deepEqual(stats.connections_per_user, { alice: 1, bob: 1 });
        assert.equal(stats.unique_users, 2);
        assert.deepEqual(stats.subscriptions, { 'upload.progress': 1, 'review.updated': 1 });
        assert.deepEqual(stats.rooms, { team: 1 });
        assert.deepEqual(
          stats.instances.map((row: any) => row.instance_id),
          [node.bus.instanceId],
        );
        assert.ok(Array.isArray(stats.unreachable_instances));
        const list = success(await admin(node, 'GET', '/ws/connections'));
        assert.equal(list.degraded, true);
        assert.equal(list.total, 2);
        assert.deepEqual(
          list.connections.map((c: any) => c.connection_id),
          [connectionIdOf(on.a0!), connectionIdOf(on.b0!)],
        );
        // A local connection still answers; another instance's cannot be looked up (503, not 404).
        success(await admin(node, 'GET', `/ws/connections/${connectionIdOf(on.a0!)}`));
        failure(await admin(node, 'GET', `/ws/connections/${connectionIdOf(on.d2!)}`), 503);
        const kickedMeanwhile = on.d2!;
        const deferred = failure(
          await admin(node, 'DELETE', `/ws/connections/${connectionIdOf(kickedMeanwhile)}`),
          503,
        );
        assert.match(deferred, /closed there once they can be/);
      } finally {
        await setup.redis.start();
      }
      await eventually(
        async () => {
          const s = success(await admin(node, 'GET', '/ws/stats'));
          return (
            s.degraded === false && s.instances.length === 3 && s.unreachable_instances.length === 0
          );
        },
        20_000,
        'stats cluster-wide again',
      );
      // The kick made meanwhile reaches the instance that has the connection once Redis is back.
      assert.deepEqual(await on.d2!.waitClose(5000), {
        code: 4004,
        reason: 'Disconnected by admin',
      });
      await eventually(
        async () => success(await admin(node, 'GET', '/ws/stats')).total_connections === 3,
        5000,
        'the kicked connection gone from the stats',
      );
      const stats = success(await admin(node, 'GET', '/ws/stats'));
      assert.deepEqual(stats.connections_per_user, { alice: 2, bob: 1 });
      failure(await admin(node, 'GET', `/ws/connections/${connectionIdOf(on.d2!)}`), 404);
      const details = success(
        await admin(node, 'GET', `/ws/connections/${connectionIdOf(on.a1!)}`),
      );
      assert.equal(details.instance_id, nodes[1]!.bus.instanceId);
    });
  });

  describe('admin broadcast while Redis is down', () => {
    const MAX_BUFFERED = 3;
    let setup: RedisCluster | undefined;
    before(async () => {
      setup = await startRedisCluster(1, {
        adminRateLimit: ADMIN_RATE_LIMIT,
        redis: { ...BUS, maxBufferedPublishes: MAX_BUFFERED },
      });
    });
    after(async () => {
      await setup?.close();
    });

    it('answers 503 in the admin error shape once a send fails with BUS_UNAVAILABLE', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const node = setup.cluster.instances[0]!;
      const broadcast = () =>
        node.http('POST', '/ws/broadcast', node.adminToken(), { type: 'outage.note', data: {} });
      await setup.redis.stop();
      try {
        await eventually(() => !node.bus.isConnected(), 5000, 'the bus noticing Redis is gone');
        // Each broadcast waits in the bounded queue; past it the send fails with BUS_UNAVAILABLE.
        for (let n = 0; n < MAX_BUFFERED; n++) success(await broadcast());
        const message = failure(await broadcast(), 503);
        assert.match(message, /Redis is unreachable/);
        // A bad request is still a 400 while Redis is down.
        failure(
          await node.http('POST', '/ws/broadcast', node.adminToken(), { type: '', data: {} }),
          400,
        );
      } finally {
        await setup.redis.start();
      }
    });
  });

  describe('admin DELETE across 2 instances, one of them cut off from Redis', () => {
    let setup: ProxiedCluster | undefined;
    let n0: ClusterInstance;
    let n1: ClusterInstance;
    const clients: TestClient[] = [];
    const unknown = '00000000-0000-4000-8000-000000000000';

    async function open(user: string, node: ClusterInstance): Promise<TestClient> {
      const client = await TestClient.open(node.wsUrl, node.token(user));
      clients.push(client);
      return client;
    }

    function kick(node: ClusterInstance, id: string) {
      return node.http('DELETE', `/ws/connections/${id}`, node.adminToken());
    }

    async function assertKicked(client: TestClient): Promise<void> {
      assert.deepEqual(await client.waitClose(5000), {
        code: 4004,
        reason: 'Disconnected by admin',
      });
    }

    before(async () => {
      // Instance 1 reaches Redis through the proxy; its lease outlasts the cut, so that it is
      // still asked (and does not answer) while cut off.
      setup = await startProxiedCluster(2, 1, {
        adminRateLimit: ADMIN_RATE_LIMIT,
        redis: { requestTimeoutMs: REQUEST_TIMEOUT_MS, leaseMs: 30_000 },
      });
      if (!setup) return;
      [n0, n1] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
    });

    after(async () => {
      for (const client of clients) client.close();
      await setup?.close();
    });

    it('asks the other instance what RealtimeService.disconnectConnection asks it', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const byAdmin = await open('kim', n1);
      const byService = await open('kim', n1);
      const adminTopics = await topicsAskedDuring(n0.bus, async () =>
        success(await kick(n0, connectionIdOf(byAdmin))),
      );
      const serviceTopics = await topicsAskedDuring(n0.bus, async () =>
        assert.equal(await n0.service.disconnectConnection(connectionIdOf(byService)), true),
      );
      await assertKicked(byAdmin);
      await assertKicked(byService);
      assert.equal(adminTopics.length, 1, 'one request');
      assert.deepEqual(adminTopics, serviceTopics);
    });

    it('answers 404 from either instance for an id neither has', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      for (const node of [n0, n1]) {
        assert.match(failure(await kick(node, unknown), 404), /No connection/);
      }
    });

    it('answers 503 for what the cut-off instance may own, and kicks what the asker owns', async (t) => {
      if (!requireRedis(t, setup?.redis)) return;
      const onN0 = await open('lou', n0);
      const onN1 = await open('lou', n1);
      const alsoOnN1 = await open('max', n1);
      await setup!.cutOff();
      try {
        // Instance 0 still counts instance 1 alive (its lease is current): it asks, in vain.
        failure(await kick(n0, connectionIdOf(onN1)), 503);
        failure(await kick(n0, unknown), 503);
        assert.equal(await n0.service.disconnectConnection(connectionIdOf(onN1)), false);
        // Instance 1 cannot ask anyone: it acts on its own connections only.
        failure(await kick(n1, connectionIdOf(onN0)), 503);
        failure(await kick(n1, unknown), 503);
        assert.deepEqual(success(await kick(n1, connectionIdOf(alsoOnN1))), {
          connection_id: connectionIdOf(alsoOnN1),
          disconnected: true,
        });
        await assertKicked(alsoOnN1);
        success(await kick(n0, connectionIdOf(onN0)));
        await assertKicked(onN0);
        assert.equal((await onN1.request({ type: 'ping', data: {} })).type, 'pong');
      } finally {
        await setup!.restore();
      }
      // The kicks made during the cut reach instance 1 once it is back, with nothing asked again.
      await assertKicked(onN1);
      failure(await kick(n1, connectionIdOf(onN1)), 404);
    });
  });
}
