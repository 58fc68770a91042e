import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ConnectionRegistry,
  RealtimeBus,
  RealtimeSendError,
  RealtimeService,
  RedisBus,
  RoomFullError,
} from '../src/realtime/index.js';
import type { ClusterInstance } from './support/cluster.js';
import {
  assertReachedOnce,
  type ClusterClient,
  CROSS_WAIT_MS,
  openOn,
} from './support/cluster-clients.js';
import { invalidFormat } from './support/send-errors.js';
import { requireRedis } from './support/redis-server.js';
import { type ProxiedCluster, startProxiedCluster } from './support/proxied-cluster.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';

const MAX_ROOM_SIZE = 3;
const REQUEST_TIMEOUT_MS = 1000;

/** Opens a client of a user on an instance and keeps it in `clients`, to be closed after. */
function keptIn(
  clients: ClusterClient[],
): (instance: ClusterInstance, userId: string) => Promise<ClusterClient> {
  return async (instance, userId) => {
    const c = await openOn(instance, userId);
    clients.push(c);
    return c;
  };
}

/**
 * `count` instances for the tests of a describe block, the one at `proxiedIndex` reaching Redis
 * through a proxy; leases outlast a cut, so the others still ask it meanwhile. `open` keeps its
 * clients, to be closed after.
 */
function proxiedClusterFor(
  count: number,
  proxiedIndex: number,
): {
  setup: () => ProxiedCluster | undefined;
  open: (instance: ClusterInstance, userId: string) => Promise<ClusterClient>;
} {
  let setup: ProxiedCluster | undefined;
  const clients: ClusterClient[] = [];
  before(async () => {
    setup = await startProxiedCluster(count, proxiedIndex, {
      redis: { requestTimeoutMs: REQUEST_TIMEOUT_MS, leaseMs: 30_000 },
    });
  });
  after(async () => {
    for (const c of clients) c.client.close();
    await setup?.close();
  });
  return { setup: () => setup, open: keptIn(clients) };
}

/**
 * Counts the requests `bus` makes while `run` runs (the bus itself still does the work), and
 * waits for their answers: whoever asked has acted on them by then (its callbacks came first).
 */
async function requestsDuring(bus: RealtimeBus, run: () => Promise<unknown>): Promise<number> {
  const made: Promise<unknown>[] = [];
  const request = bus.request.bind(bus);
  bus.request = ((...args: Parameters<RealtimeBus['request']>) => {
    const answered = request(...args);
    made.push(answered);
    return answered;
  }) as RealtimeBus['request'];
  try {
    await run();
    await Promise.all(made);
  } finally {
    bus.request = request;
  }
  return made.length;
}

/**
 * Holds back the result of `bus`'s first request of `topic` (asked and answered as usual) until
 * `release`: an answer that takes its time on the way. `answered` settles once it is held.
 */
function holdFirstAnswer(
  bus: RealtimeBus,
  topic: string,
): {
  answered: Promise<void>;
  release: () => void;
} {
  const request = bus.request.bind(bus);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let answered!: () => void;
  const held = new Promise<void>((resolve) => (answered = resolve));
  let holding = false;
  bus.request = (async (...args: Parameters<RealtimeBus['request']>) => {
    const result = await request(...args);
    if (args[0] !== topic || holding) return result;
    holding = true;
    answered();
    await released;
    return result;
  }) as RealtimeBus['request'];
  return {
    answered: held,
    release: () => {
      bus.request = request;
      release();
    },
  };
}

describe('RealtimeService control across 2 instances on one Redis', () => {
  let setup: RedisCluster | undefined;
  let a: ClusterInstance;
  let b: ClusterInstance;
  const clients: ClusterClient[] = [];
  let users = 0;

  const user = (): string => `ctl-${++users}`;

  const open = keptIn(clients);

  /** The connections of `everyone` that are still open. */
  const live = (...everyone: ClusterClient[]) => everyone.filter((c) => !c.client.closeInfo);

  before(async () => {
    setup = await startRedisCluster(2, {
      maxRoomSize: MAX_ROOM_SIZE,
      redis: { requestTimeoutMs: REQUEST_TIMEOUT_MS },
    });
    if (!setup) return;
    [a, b] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
  });

  after(async () => {
    for (const c of clients) c.client.close();
    await setup?.close();
  });

  it('disconnectConnection ends a connection on the other instance, with its code and reason', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const u = user();
    const target = await open(b, u);
    const sibling = await open(b, u);
    const custom = await open(b, u);
    assert.equal(await a.service.disconnectConnection(target.connectionId), true);
    assert.deepEqual(await target.client.waitClose(CROSS_WAIT_MS), {
      code: 4004,
      reason: 'Disconnected by admin',
    });
    assert.equal(
      await a.service.disconnectConnection(custom.connectionId, 4321, 'moved away'),
      true,
    );
    assert.deepEqual(await custom.client.waitClose(CROSS_WAIT_MS), {
      code: 4321,
      reason: 'moved away',
    });
    // Gone everywhere now, and an id nobody has: false, from either instance.
    assert.equal(await a.service.disconnectConnection(target.connectionId), false);
    assert.equal(await b.service.disconnectConnection(target.connectionId), false);
    assert.equal(await a.service.disconnectConnection('no-such-connection'), false);
    assert.equal(sibling.client.closeInfo, undefined);
    assert.equal(await a.service.sendToUser(u, 'still.here', {}), 1);
    await sibling.client.next('still.here', CROSS_WAIT_MS);
  });

  it('disconnectUser ends the user on every instance and counts them all', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [u, v, w] = [user(), user(), user()];
    const onA = await open(a, u);
    const onB1 = await open(b, u);
    const onB2 = await open(b, u);
    const bystander = await open(b, v);
    const elsewhere = await open(b, w);
    assert.equal(await a.service.disconnectUser(u), 3);
    for (const c of [onA, onB1, onB2]) {
      assert.equal((await c.client.waitClose(CROSS_WAIT_MS)).code, 4004, c.label);
    }
    await eventually(
      async () => !(await a.service.isUserConnected(u)),
      CROSS_WAIT_MS,
      `${u} offline everywhere`,
    );
    assert.equal(await b.service.disconnectUser(u), 0);
    assert.equal(bystander.client.closeInfo, undefined);
    // A user connected only on the other instance, with a code and reason of the caller's.
    assert.equal(await a.service.disconnectUser(w, 4400, 'banned'), 1);
    assert.deepEqual(await elsewhere.client.waitClose(CROSS_WAIT_MS), {
      code: 4400,
      reason: 'banned',
    });
    assert.equal(bystander.client.closeInfo, undefined);
  });

  it('joinRoom by userId adds the user’s connections on every instance', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const room = 'ctl-join-user';
    const [u, v] = [user(), user()];
    const uOnB = await open(b, u);
    const vOnA = await open(a, v);
    const vOnB = await open(b, v);
    const outsider = await open(b, user());
    const everyone = [uOnB, vOnA, vOnB, outsider];
    assert.equal(await a.service.joinRoom(room, { userId: u }), 1, 'only on the other instance');
    assert.equal(await b.service.joinRoom(room, { userId: v }), 2, 'one here, one there');
    assert.equal(await a.service.joinRoom(room, { userId: v }), 0, 'already in');
    assert.equal(await a.service.joinRoom(room, { userId: 'nobody-anywhere' }), 0);
    for (const instance of [a, b]) {
      const members = await instance.service.getRoomMembers(room);
      assert.deepEqual([...members.userIds].sort(), [u, v].sort());
      assert.equal(await instance.service.getRoomSize(room), 3);
    }
    assert.equal(await a.service.sendToRoom(room, 'ctl.room', {}), 3);
    await assertReachedOnce(a, 'ctl.room', [uOnB, vOnA, vOnB], everyone);
  });

  it('joinRoom by connectionId adds a connection of the other instance', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const room = 'ctl-join-conn';
    const u = user();
    const chosen = await open(b, u);
    const sibling = await open(b, u);
    assert.equal(await a.service.joinRoom(room, { connectionId: chosen.connectionId }), 1);
    assert.equal(await a.service.joinRoom(room, { connectionId: chosen.connectionId }), 0);
    assert.equal(await a.service.joinRoom(room, { connectionId: 'no-such-connection' }), 0);
    assert.deepEqual(await a.service.getRoomMembers(room), {
      connectionIds: [chosen.connectionId],
      userIds: [u],
    });
    assert.equal(await a.service.sendToRoom(room, 'ctl.conn', {}), 1);
    await assertReachedOnce(a, 'ctl.conn', [chosen], [chosen, sibling]);
  });

  it('leaveRoom by userId or connectionId takes them out on every instance', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const room = 'ctl-leave';
    const [u, v] = [user(), user()];
    const uOnA = await open(a, u);
    const uOnB = await open(b, u);
    const vOnB = await open(b, v);
    const everyone = [uOnA, uOnB, vOnB];
    assert.equal(await b.service.joinRoom(room, { userId: u }), 2);
    assert.equal(await b.service.joinRoom(room, { connectionId: vOnB.connectionId }), 1);
    assert.equal(await a.service.getRoomSize(room), 3);

    assert.equal(await a.service.leaveRoom(room, { connectionId: vOnB.connectionId }), 1);
    assert.equal(await a.service.leaveRoom(room, { connectionId: vOnB.connectionId }), 0);
    assert.equal(await a.service.leaveRoom(room, { connectionId: 'no-such-connection' }), 0);
    assert.equal(await a.service.sendToRoom(room, 'ctl.leave', { step: 1 }), 2);
    await assertReachedOnce(a, 'ctl.leave', [uOnA, uOnB], everyone);

    assert.equal(await a.service.leaveRoom(room, { userId: u }), 2);
    assert.equal(await a.service.leaveRoom(room, { userId: u }), 0);
    assert.deepEqual(await b.service.getRoomMembers(room), { connectionIds: [], userIds: [] });
    assert.equal(await b.service.sendToRoom(room, 'ctl.leave', { step: 2 }), 0);
    // Left by user id: a later connection of the user, on either instance, does not rejoin.
    const later = [await open(a, u), await open(b, u)];
    await a.service.getRoomMembers(room);
    assert.equal(await b.service.getRoomSize(room), 0);
    for (const c of later) c.client.close();
  });

  it('a user joined by userId: their later connections join too, on any instance, while they stay connected', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const room = 'ctl-later';
    const u = user();
    const first = await open(b, u);
    assert.equal(await a.service.joinRoom(room, { userId: u }), 1);

    // The user's first connection on A, where the join was called but the user had none.
    const onA = await open(a, u);
    await eventually(
      async () => (await b.service.getRoomSize(room)) === 2,
      CROSS_WAIT_MS,
      'the new connection on A in the room',
    );
    // Another one on B, which remembers the room since the join.
    const onB = await open(b, u);
    assert.equal(await b.service.getRoomSize(room), 3);
    assert.equal(await a.service.sendToRoom(room, 'ctl.later.1', {}), 3);
    await assertReachedOnce(a, 'ctl.later.1', [first, onA, onB], [first, onA, onB]);

    // B's connections close: the user stays connected (on A), so B learns the room again.
    first.client.close();
    onB.client.close();
    await eventually(
      async () => (await a.service.getRoomSize(room)) === 1,
      CROSS_WAIT_MS,
      'only the connection on A left in the room',
    );
    const again = await open(b, u);
    await eventually(
      async () => (await a.service.getRoomSize(room)) === 2,
      CROSS_WAIT_MS,
      'the new connection on B in the room',
    );
    assert.equal(await b.service.sendToRoom(room, 'ctl.later.2', {}), 2);
    await assertReachedOnce(b, 'ctl.later.2', [onA, again], live(first, onA, onB, again));

    // Offline everywhere: the membership ends, and a connection after that is in no room.
    onA.client.close();
    again.client.close();
    await eventually(
      async () => !(await a.service.isUserConnected(u)),
      CROSS_WAIT_MS,
      `${u} offline everywhere`,
    );
    const back = [await open(a, u), await open(b, u)];
    // A bus round trip on each instance, after which a pending join would have happened.
    for (const instance of [a, b]) await instance.service.getRoomMembers(room);
    for (const instance of [b, a]) await instance.service.getRoomMembers(room);
    assert.equal(await a.service.getRoomSize(room), 0);
    assert.equal(await a.service.sendToRoom(room, 'ctl.later.3', {}), 0);
    for (const c of back) c.client.close();
  });

  it('a catch-up answered before the user’s connections there closed is not applied to their next one, which asks again', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const u = user();
    const onA = await open(a, u);
    assert.equal(await a.service.joinRoom('ctl-stale-1', { userId: u }), 1);
    const registryB = b.app.get(ConnectionRegistry);

    // B's first connection of the user asks A; the answer (ctl-stale-1) is slow to come back.
    const slow = holdFirstAnswer(b.bus, 'rooms.of_user');
    const first = await open(b, u);
    await slow.answered;
    first.client.close();
    await eventually(() => registryB.ofUser(u).size === 0, CROSS_WAIT_MS, 'the close on B');
    // Meanwhile, with the user connected on A throughout, their rooms change.
    assert.equal(await a.service.leaveRoom('ctl-stale-1', { userId: u }), 1);
    assert.equal(await a.service.joinRoom('ctl-stale-2', { userId: u }), 1);
    const second = await open(b, u);
    slow.release();

    await eventually(
      async () => (await a.service.getRoomSize('ctl-stale-2')) === 2,
      CROSS_WAIT_MS,
      'the next connection on B in the room the user is in now',
    );
    assert.equal(await a.service.getRoomSize('ctl-stale-1'), 0);
    assert.equal(await a.service.sendToRoom('ctl-stale-2', 'ctl.stale', {}), 2);
    await assertReachedOnce(a, 'ctl.stale', [onA, second], [onA, second]);
  });

  it('a room full on the other instance rejects with RoomFullError; what fits joins', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const room = 'ctl-full';
    const fillers: ClusterClient[] = [];
    for (let i = 0; i < MAX_ROOM_SIZE; i++) {
      const c = await open(b, user());
      fillers.push(c);
      assert.equal(await b.service.joinRoom(room, { connectionId: c.connectionId }), 1);
    }
    const u = user();
    const uOnA = await open(a, u);
    const uOnB = await open(b, u);

    // By connection: the owner (B) is full; nothing changes.
    await assert.rejects(a.service.joinRoom(room, { connectionId: uOnB.connectionId }), (e) => {
      assert.ok(e instanceof RoomFullError, String(e));
      assert.equal(e.joined, 0);
      assert.match(e.message, /is full \(3 connections\)/);
      return true;
    });
    // By user: A has room for the user's connection there, B has none for its one.
    await assert.rejects(a.service.joinRoom(room, { userId: u }), (e) => {
      assert.ok(e instanceof RoomFullError, String(e));
      assert.equal(e.joined, 1, 'the connection on A joined');
      return true;
    });
    const members = await b.service.getRoomMembers(room);
    assert.equal(members.connectionIds.length, MAX_ROOM_SIZE + 1);
    assert.ok(members.connectionIds.includes(uOnA.connectionId));
    assert.ok(!members.connectionIds.includes(uOnB.connectionId));
    assert.equal(await a.service.sendToRoom(room, 'ctl.full', {}), MAX_ROOM_SIZE + 1);
    await assertReachedOnce(a, 'ctl.full', [...fillers, uOnA], [...fillers, uOnA, uOnB]);
  });

  it('refuses a bad room name or user id before asking the other instance', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const u = user();
    const c = await open(b, u);
    const badRoom = invalidFormat(/^room must/);
    const badUser = invalidFormat(/^user id must/);
    const asked = await requestsDuring(a.bus, async () => {
      for (const room of ['', 'a\nb', 'r'.repeat(201)]) {
        await assert.rejects(a.service.joinRoom(room, { userId: u }), badRoom);
        await assert.rejects(a.service.joinRoom(room, { connectionId: c.connectionId }), badRoom);
        await assert.rejects(a.service.leaveRoom(room, { userId: u }), badRoom);
        await assert.rejects(a.service.leaveRoom(room, { connectionId: c.connectionId }), badRoom);
      }
      for (const userId of ['', 'u'.repeat(257), 42 as unknown as string]) {
        await assert.rejects(a.service.joinRoom('ctl-ok', { userId }), badUser);
        await assert.rejects(a.service.leaveRoom('ctl-ok', { userId }), badUser);
        await assert.rejects(a.service.disconnectUser(userId), badUser);
      }
    });
    assert.equal(asked, 0, 'the bus was never asked');
    assert.equal(await b.service.getRoomSize('ctl-ok'), 0);
    assert.equal(c.client.closeInfo, undefined);
  });

  it('refuses a close no WebSocket close frame can carry, on every instance, closing nothing', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const u = user();
    const here = await open(a, u);
    const there = await open(b, u);
    const badClose = invalidFormat(/^close (code|reason) must/);
    const closes: Array<[number, string]> = [
      [1005, 'reserved'],
      [1006, 'reserved'],
      [999, 'below the range'],
      [5000, 'above the range'],
      [4000.5, 'not an integer'],
      [Number.NaN, 'not a number'],
      [4400, 'é'.repeat(62)], // 124 bytes in UTF-8, 62 characters
      [4400, 42 as unknown as string],
    ];
    const asked = await requestsDuring(a.bus, async () => {
      for (const [code, reason] of closes) {
        for (const target of [here, there]) {
          await assert.rejects(
            a.service.disconnectConnection(target.connectionId, code, reason),
            badClose,
          );
        }
        await assert.rejects(a.service.disconnectUser(u, code, reason), badClose);
      }
    });
    assert.equal(asked, 0, 'the bus was never asked');
    for (const target of [here, there]) {
      assert.equal(target.client.closeInfo, undefined);
      assert.equal((await target.client.request({ type: 'ping' })).type, 'pong');
    }
    // The limits themselves are accepted: 123 bytes of reason, codes 1000 and 4999.
    assert.equal(
      await a.service.disconnectConnection(there.connectionId, 4999, 'é'.repeat(61) + 'x'),
      true,
    );
    assert.deepEqual(await there.client.waitClose(), { code: 4999, reason: 'é'.repeat(61) + 'x' });
    assert.equal(await a.service.disconnectUser(u, 1000, 'done'), 1);
    assert.deepEqual(await here.client.waitClose(), { code: 1000, reason: 'done' });
  });
});

describe('rooms by user id across instances: connects ask only once such a join exists', () => {
  let setup: RedisCluster | undefined;
  let late: TestApp | undefined;
  const clients: ClusterClient[] = [];

  const open = keptIn(clients);

  before(async () => {
    setup = await startRedisCluster(2, { redis: { requestTimeoutMs: REQUEST_TIMEOUT_MS } });
  });

  after(async () => {
    for (const c of clients) c.client.close();
    await late?.close();
    await setup?.close();
  });

  it('asks nobody on connect once every instance said it knows of no join by user id; a join turns it back on, and a later instance learns it', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
    // The first connect on B asks (nobody has told B anything yet) and learns: none anywhere.
    assert.equal(await requestsDuring(b.bus, () => open(b, 'quiet-0')), 1);
    const quiet = await requestsDuring(b.bus, async () => {
      for (let i = 1; i <= 5; i++) await open(b, `quiet-${i}`);
    });
    assert.equal(quiet, 0, 'connects ask nobody while no room was joined by user id');

    // A join by user id on A reaches B as a request: B's connects ask again, and catch up.
    const member = await open(a, 'member');
    assert.equal(await a.service.joinRoom('team', { userId: 'member' }), 1);
    const asked = await requestsDuring(b.bus, () => open(b, 'member'));
    assert.equal(asked, 1, 'a first connection of a user on B asks for their rooms again');
    await eventually(
      async () => (await a.service.getRoomSize('team')) === 2,
      CROSS_WAIT_MS,
      "the member's connection on B in the room",
    );

    // An instance started after the join learns it from the others' answers.
    const app = await startTestApp({
      realtime: {
        redis: {
          url: setup.redis.url,
          namespace: setup.cluster.namespace,
          requestTimeoutMs: REQUEST_TIMEOUT_MS,
        },
      },
    });
    late = app;
    const third: ClusterInstance = {
      ...app,
      index: 2,
      service: app.app.get(RealtimeService),
      bus: app.app.get(RealtimeBus) as RedisBus,
    };
    await eventually(
      () => a.bus.liveInstances().length === 3 && third.bus.liveInstances().length === 3,
      CROSS_WAIT_MS,
      'three live instances',
    );
    await open(third, 'member');
    await eventually(
      async () => (await a.service.getRoomSize('team')) === 3,
      CROSS_WAIT_MS,
      "the member's connection on the late instance in the room",
    );
    assert.equal(member.client.closeInfo, undefined);
  });
});

describe('rooms by user id after an outage: an instance that could not hear the others asks again', () => {
  const pair = proxiedClusterFor(2, 1);
  const { open } = pair;

  it('a join by user id made while it was cut off reaches the user’s later connection there', async (t) => {
    const setup = pair.setup();
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup!.cluster.instances as [ClusterInstance, ClusterInstance];
    // B learns that nobody joins by user id: its connects stop asking.
    assert.equal(await requestsDuring(b.bus, () => open(b, 'calm-0')), 1);
    assert.equal(await requestsDuring(b.bus, () => open(b, 'calm-1')), 0);

    const member = await open(a, 'member');
    await setup!.cutOff();
    // The cluster's first join by user id, which B cannot hear.
    assert.equal(await a.service.joinRoom('crew', { userId: 'member' }), 1);
    await setup!.restore();

    const later = await open(b, 'member');
    await eventually(
      async () => (await a.service.getRoomSize('crew')) === 2,
      CROSS_WAIT_MS,
      "the member's connection on B in the room",
    );
    // Not its count: B may still be filling its gap from the history, and counts what it holds 0.
    await a.service.sendToRoom('crew', 'ctl.crew', {});
    await assertReachedOnce(a, 'ctl.crew', [member, later], [member, later]);
  });
});

describe('joins by connection id whose owner cannot be asked', () => {
  const pair = proxiedClusterFor(2, 1);
  const { open } = pair;

  it('reject with BUS_UNAVAILABLE on both sides of a cut, not 0; once it is over they join', async (t) => {
    const setup = pair.setup();
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup!.cluster.instances as [ClusterInstance, ClusterInstance];
    const onA = await open(a, 'joiner-a');
    const onB = await open(b, 'joiner-b');
    const unavailable = (message: RegExp) => (error: unknown) => {
      assert.ok(error instanceof RealtimeSendError, String(error));
      assert.equal(error.code, 'BUS_UNAVAILABLE');
      assert.match(error.message, message);
      return true;
    };

    await setup!.cutOff();
    // A asks B, which does not answer within the request timeout.
    await assert.rejects(
      a.service.joinRoom('hall', { connectionId: onB.connectionId }),
      unavailable(/1 did not answer in time/),
    );
    // B cannot ask anyone.
    await assert.rejects(
      b.service.joinRoom('hall', { connectionId: onA.connectionId }),
      unavailable(/cannot be reached now/),
    );
    // Its own connection needs nobody else.
    assert.equal(await b.service.joinRoom('lobby', { connectionId: onB.connectionId }), 1);
    await setup!.restore();

    assert.equal(await a.service.getRoomSize('hall'), 0, 'neither joined');
    assert.equal(await a.service.joinRoom('hall', { connectionId: onB.connectionId }), 1);
    assert.equal(await b.service.joinRoom('hall', { connectionId: onA.connectionId }), 1);
    // Every instance answered and none has it: 0, as on a single instance.
    assert.equal(await a.service.joinRoom('hall', { connectionId: 'no-such-connection' }), 0);
    assert.equal(await a.service.getRoomSize('hall'), 2);
  });
});

describe('rooms by user id: a user’s first connections on several instances at once', () => {
  // Instance 0 reaches Redis through the proxy, so that its answers can be held up.
  const pair = proxiedClusterFor(3, 0);
  const { open } = pair;

  it('an instance still asking for the user’s rooms is not taken as knowing them', async (t) => {
    const setup = pair.setup();
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b, d] = setup!.cluster.instances as [
      ClusterInstance,
      ClusterInstance,
      ClusterInstance,
    ];
    const u = 'several';
    const onA = await open(a, u);
    assert.equal(await a.service.joinRoom('several-room', { userId: u }), 1);
    // B's first connection asks; A's answer is slow to come back, so B is still asking.
    const slow = holdFirstAnswer(b.bus, 'rooms.of_user');
    const onB = await open(b, u);
    await slow.answered;
    // D's first connection asks too, while A's answers are held up on the way: B answers first.
    setup!.proxy.hold();
    const onD = await open(d, u);
    await sleep(REQUEST_TIMEOUT_MS / 4);
    await setup!.proxy.restore();
    slow.release();

    await eventually(
      async () => (await b.service.getRoomSize('several-room')) === 3,
      CROSS_WAIT_MS,
      'the connections on B and D in the room',
    );
    assert.equal(await a.service.sendToRoom('several-room', 'ctl.several', {}), 3);
    await assertReachedOnce(a, 'ctl.several', [onA, onB, onD], [onA, onB, onD]);
  });
});

describe('RealtimeService control on one instance (in-process bus)', () => {
  let server: TestApp;
  let service: RealtimeService;
  const open: TestClient[] = [];
  let users = 0;

  const user = (): string => `one-${++users}`;
  async function connect(userId: string): Promise<TestClient> {
    const client = await TestClient.open(server.wsUrl, server.token(userId));
    open.push(client);
    return client;
  }
  const idOf = (client: TestClient) => client.received[0]!.data.connection_id as string;

  before(async () => {
    server = await startTestApp({ realtime: { maxRoomSize: MAX_ROOM_SIZE } });
    service = server.app.get(RealtimeService);
  });
  after(async () => {
    for (const client of open) client.close();
    await server.close();
  });

  it('acts here at once and resolves to what it did here', async () => {
    const room = 'one-room';
    const u = user();
    const u1 = await connect(u);
    const joined = service.joinRoom(room, { userId: u });
    // Done before the promise settles, as before it was a promise.
    assert.equal(await service.getRoomSize(room), 1);
    assert.equal(await joined, 1);
    // A later connection of the user is in the room as soon as it is established.
    const u2 = await connect(u);
    assert.equal(await service.sendToRoom(room, 'one.room', {}), 2);
    for (const client of [u1, u2]) await client.next('one.room');
    assert.equal(await service.leaveRoom(room, { connectionId: idOf(u2) }), 1);
    assert.equal(await service.leaveRoom(room, { userId: u }), 1);
    assert.equal(await service.joinRoom(room, { connectionId: 'no-such-connection' }), 0);

    assert.equal(await service.disconnectConnection(idOf(u1)), true);
    assert.equal((await u1.waitClose()).code, 4004);
    assert.equal(await service.disconnectConnection(idOf(u1)), false);
    assert.equal(await service.disconnectUser(u, 4400, 'banned'), 1);
    assert.deepEqual(await u2.waitClose(), { code: 4400, reason: 'banned' });
    assert.equal(await service.disconnectUser(u), 0);
  });

  it('rejects with RoomFullError past maxRoomSize, joining none', async () => {
    const room = 'one-full';
    for (let i = 0; i < MAX_ROOM_SIZE; i++) {
      await service.joinRoom(room, { connectionId: idOf(await connect(user())) });
    }
    const u = user();
    const extra = await connect(u);
    await assert.rejects(service.joinRoom(room, { connectionId: idOf(extra) }), RoomFullError);
    await assert.rejects(service.joinRoom(room, { userId: u }), (e) => {
      assert.ok(e instanceof RoomFullError);
      assert.equal(e.joined, 0);
      return true;
    });
    assert.equal(await service.getRoomSize(room), MAX_ROOM_SIZE);
  });
});
