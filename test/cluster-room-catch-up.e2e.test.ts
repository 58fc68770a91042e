import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ClusterAnswers,
  ConnectionRegistry,
  type RealtimeBus,
} from '../src/realtime/index.js';
import type { ClusterInstance } from './support/cluster.js';
import {
  assertReachedOnce,
  type ClusterClient,
  CROSS_WAIT_MS,
  openOn,
  settleVia,
} from './support/cluster-clients.js';
import { type ProxiedCluster, startProxiedCluster } from './support/proxied-cluster.js';
import { requireRedis } from './support/redis-server.js';
import type { TcpProxy } from './support/tcp-proxy.js';
import { eventually } from './support/test-client.js';

const MAX_ROOM_SIZE = 3;
/** As many users as one request after a cut asks about (control-requests.ts). */
const MAX_USERS_PER_ROOMS_REQUEST = 100;
const REQUEST_TIMEOUT_MS = 1000;

type Request = RealtimeBus['request'];

/**
 * Puts `around` in front of `bus`'s requests (it is given the bus's own `request` to call);
 * returns what takes it away again.
 */
function interceptRequests(
  bus: RealtimeBus,
  around: (request: Request, ...args: Parameters<Request>) => ReturnType<Request>,
): () => void {
  const request = bus.request.bind(bus) as Request;
  bus.request = ((...args: Parameters<Request>) => around(request, ...args)) as Request;
  return () => {
    bus.request = request;
  };
}

/**
 * The answers to the next request `bus` makes (of `topic`, if given), once they are in: whoever
 * asked has acted on them by then, and so has every instance that answered. Undefined when no
 * such request is made within `timeoutMs`.
 */
async function nextAnswers(
  bus: RealtimeBus,
  timeoutMs: number,
  topic?: string,
): Promise<ClusterAnswers | undefined> {
  let answered!: (answers: ClusterAnswers) => void;
  const made = new Promise<ClusterAnswers>((resolve) => (answered = resolve));
  const restore = interceptRequests(bus, async (request, ...args) => {
    const result = await request(...args);
    // After the caller's own callbacks on the result (they run in this turn's microtasks).
    if (topic === undefined || args[0] === topic) setImmediate(() => answered(result));
    return result;
  });
  try {
    return await Promise.race([made, sleep(timeoutMs, undefined, { ref: false })]);
  } finally {
    restore();
  }
}

/**
 * Hands the answers to `bus`'s requests of `topic` to whoever asked `ms` after they came in, as
 * if they had been that much longer on their way, until `stop`.
 */
function delayAnswers(bus: RealtimeBus, topic: string, ms: number): { stop: () => void } {
  const stop = interceptRequests(bus, async (request, ...args) => {
    const result = await request(...args);
    if (args[0] === topic) await sleep(ms);
    return result;
  });
  return { stop };
}

/**
 * Records the requests `bus` makes from now on (the bus itself still does the work) until
 * `stop`; `answered` resolves once every one recorded so far has its answers.
 */
function recordRequests(bus: RealtimeBus): {
  topics: string[];
  answered: () => Promise<unknown>;
  stop: () => void;
} {
  const topics: string[] = [];
  const made: Promise<unknown>[] = [];
  const stop = interceptRequests(bus, (request, ...args) => {
    topics.push(args[0]);
    const answers = request(...args);
    made.push(answers);
    return answers;
  });
  return { topics, answered: () => Promise.all(made), stop };
}

/** Connection ids of the room's members, cluster-wide, as `instance` sees them. */
async function memberIds(instance: ClusterInstance, room: string): Promise<string[]> {
  return [...(await instance.service.getRoomMembers(room)).connectionIds].sort();
}

/**
 * Waits (bounded) until both instances see exactly `members` in `room`, then sends to the room:
 * exactly they receive it, among `everyone`.
 */
async function assertRoomHolds(
  { a, p }: TwoInstances,
  room: string,
  members: readonly ClusterClient[],
  everyone: readonly ClusterClient[],
): Promise<void> {
  const expected = JSON.stringify(members.map((c) => c.connectionId).sort());
  await eventually(
    async () =>
      JSON.stringify(await memberIds(a, room)) === expected &&
      JSON.stringify(await memberIds(p, room)) === expected,
    CROSS_WAIT_MS,
    `${room} holding ${members.map((c) => c.label).join(', ')}`,
  );
  // Not its count: P may still be filling its gap from the history, and counts what it holds 0.
  await a.service.sendToRoom(room, `catch.${room}`, {});
  if (members.length > 0)
    return void (await assertReachedOnce(a, `catch.${room}`, members, everyone));
  const seen = await settleVia(a, everyone);
  for (const c of everyone) {
    const got = seen.get(c)!.filter((m) => m.type === `catch.${room}`);
    assert.equal(got.length, 0, `${c.label} received catch.${room}`);
  }
}

interface TwoInstances {
  /** Instance 0, with a direct connection to Redis. */
  a: ClusterInstance;
  /** Instance 1, behind the proxy. */
  p: ClusterInstance;
  cutOff: () => Promise<void>;
  restore: () => Promise<void>;
  /** The proxy itself: to stall P's path without cutting it. */
  proxy: TcpProxy;
}

/**
 * Starts two instances, the second behind a proxy (its subscription alone with `'subscriber'`),
 * for the tests of a describe block. `open` keeps the clients it opens, to be closed after;
 * `learnUnused` has `instance` learn, by a first connect if need be, that nobody joins by user
 * id: its next first connection asks nobody.
 */
function twoInstancesOneProxied(proxied: 'all' | 'subscriber' = 'all'): {
  started: (t: TestContext) => TwoInstances | undefined;
  open: (instance: ClusterInstance, userId: string) => Promise<ClusterClient>;
  learnUnused: (instance: ClusterInstance) => Promise<void>;
} {
  let setup: ProxiedCluster | undefined;
  const clients: ClusterClient[] = [];
  let calmUsers = 0;
  before(async () => {
    // Leases outlast the cuts: the instance cut off is still asked (in vain) meanwhile.
    setup = await startProxiedCluster(
      2,
      1,
      {
        maxRoomSize: MAX_ROOM_SIZE,
        redis: { requestTimeoutMs: REQUEST_TIMEOUT_MS, leaseMs: 30_000 },
      },
      { proxied },
    );
  });
  after(async () => {
    for (const c of clients) c.client.close();
    await setup?.close();
  });
  const open = async (instance: ClusterInstance, userId: string) => {
    const c = await openOn(instance, userId);
    clients.push(c);
    return c;
  };
  return {
    started: (t) => {
      if (!requireRedis(t, setup?.redis)) return undefined;
      const { cluster, proxied, cutOff, restore, proxy } = setup!;
      return { a: cluster.instances[0]!, p: proxied, cutOff, restore, proxy };
    },
    open,
    learnUnused: async (instance) => {
      const recorded = recordRequests(instance.bus);
      try {
        await open(instance, `calm-${instance.index}-${++calmUsers}`);
        await recorded.answered();
        const asked = recorded.topics.length;
        await open(instance, `calm-${instance.index}-${++calmUsers}`);
        await recorded.answered();
        assert.equal(recorded.topics.length, asked, 'a first connection after that asks nobody');
      } finally {
        recorded.stop();
      }
    },
  };
}

describe('rooms by user id: a first connection that could not ask every instance asks again', () => {
  const { started: cluster, open, learnUnused } = twoInstancesOneProxied();

  it('made while its instance was cut off, it joins the user’s rooms once Redis is back, except those left since or full there', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    await learnUnused(p);
    const fillers: ClusterClient[] = [];
    for (let i = 0; i < MAX_ROOM_SIZE; i++) {
      const filler = await open(p, `filler-${i}`);
      fillers.push(filler);
      assert.equal(await p.service.joinRoom('full', { connectionId: filler.connectionId }), 1);
    }
    const onA = await open(a, 'member');

    await cutOff();
    const onP = await open(p, 'member');
    // The cluster's first joins by user id; A asks P in vain (P is still listed live).
    const joined = await Promise.all(
      ['kept', 'left', 'full'].map((room) => a.service.joinRoom(room, { userId: 'member' })),
    );
    assert.deepEqual(joined, [1, 1, 1]);
    // Then P's host takes the user out of one of them, on P alone: the later decision, it takes
    // the user out on A too once P is back.
    assert.equal(await p.service.leaveRoom('left', { userId: 'member' }), 0);
    await restore();

    const everyone = [onA, onP, ...fillers];
    await assertRoomHolds(started, 'kept', [onA, onP], everyone);
    await assertRoomHolds(started, 'left', [], everyone);
    await assertRoomHolds(started, 'full', [onA, ...fillers], everyone);

    // P remembers the room for the user's next connection there, which joins it at once.
    const again = await open(p, 'member');
    assert.deepEqual(
      await memberIds(p, 'kept'),
      [onA, onP, again].map((c) => c.connectionId).sort(),
    );
    assert.deepEqual(await memberIds(p, 'left'), []);
  });

  it('made while the other instance was cut off, it joins the rooms that instance knew once that one is back', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const onP = await open(p, 'guest');
    assert.equal(await p.service.joinRoom('lobby', { userId: 'guest' }), 1);

    await cutOff();
    // The user's first connection on A asks P, which cannot answer.
    const asked = nextAnswers(a.bus, CROSS_WAIT_MS, 'rooms.of_user');
    const onA = await open(a, 'guest');
    assert.deepEqual((await asked)?.unreachable, [p.bus.instanceId]);
    await restore();

    await assertRoomHolds(started, 'lobby', [onA, onP], [onA, onP]);
  });
});

describe('rooms by user id: joins made on one side of a cut reach the user’s connections on the other once it is back', () => {
  const { started: cluster, open } = twoInstancesOneProxied();
  /** Opens the user's first connection there once its question was answered in full. */
  const openAnswered = async (instance: ClusterInstance, userId: string) => {
    const asked = nextAnswers(instance.bus, CROSS_WAIT_MS, 'rooms.of_user');
    const opened = await open(instance, userId);
    assert.deepEqual((await asked)?.unreachable, [], `${userId}'s question answered`);
    return opened;
  };

  it('made by the instance that stayed connected', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const onA = await openAnswered(a, 'sailor');
    const onP = await openAnswered(p, 'sailor');

    await cutOff();
    // P cannot hear it: only the connection on A joins.
    assert.equal(await a.service.joinRoom('harbor', { userId: 'sailor' }), 1);
    await restore();

    await assertRoomHolds(started, 'harbor', [onA, onP], [onA, onP]);
  });

  it('made by the instance that was cut off', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const onA = await openAnswered(a, 'pilgrim');
    const onP = await openAnswered(p, 'pilgrim');

    await cutOff();
    assert.equal(await p.service.joinRoom('shrine', { userId: 'pilgrim' }), 1, 'P alone');
    await restore();

    await assertRoomHolds(started, 'shrine', [onA, onP], [onA, onP]);
  });
});

describe('rooms by user id: a first connection whose question an instance left unanswered, though connected', () => {
  const { started: cluster, open } = twoInstancesOneProxied();

  it('asks again later, and joins the rooms that instance knew', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, proxy } = started;
    const onP = await open(p, 'diver');
    assert.equal(await p.service.joinRoom('reef', { userId: 'diver' }), 1);

    // P hears the question but its answer stalls past the timeout: nobody disconnects.
    proxy.hold();
    const asked = nextAnswers(a.bus, CROSS_WAIT_MS, 'rooms.of_user');
    const onA = await open(a, 'diver');
    assert.deepEqual((await asked)?.unreachable, [p.bus.instanceId]);
    await proxy.restore();
    assert.ok(p.bus.isConnected() && a.bus.isConnected(), 'no reconnection to ask again on');

    await assertRoomHolds(started, 'reef', [onA, onP], [onA, onP]);
  });
});

describe('rooms by user id: the first such join, made by an instance cut off from the others', () => {
  const { started: cluster, open, learnUnused } = twoInstancesOneProxied();

  it('while nobody joins by user id, a cut costs one request for all the users who connected meanwhile', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    await learnUnused(a);
    await learnUnused(p);
    await cutOff();
    // More users than one request names.
    for (let i = 0; i <= MAX_USERS_PER_ROOMS_REQUEST; i++) await open(p, `meanwhile-${i}`);
    const recorded = recordRequests(p.bus);
    try {
      await restore();
      await eventually(
        () => recorded.topics.some((topic) => topic.startsWith('rooms.')),
        CROSS_WAIT_MS,
        'P asking once back',
      );
      await recorded.answered();
      // Told by the answer that nobody joins by user id, P asks about nobody else, nor on connect.
      await open(p, 'after');
      await recorded.answered();
      // (The exchange of recent disconnects is one more request per reconnection, not rooms'.)
      const rooms = recorded.topics.filter((topic) => topic.startsWith('rooms.'));
      assert.deepEqual(rooms, ['rooms.of_users']);
    } finally {
      recorded.stop();
    }
  });

  it('reaches the user’s later connections on the others once it is back, though they had stopped asking', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    await learnUnused(a);
    const onP = await open(p, 'pilot');

    await cutOff();
    assert.equal(await p.service.joinRoom('deck', { userId: 'pilot' }), 1, 'P alone');
    // Whatever P asks once back has been answered (and acted on) by A before the user connects.
    const told = nextAnswers(p.bus, CROSS_WAIT_MS);
    await restore();
    await told;

    const onA = await open(a, 'pilot');
    await assertRoomHolds(started, 'deck', [onA, onP], [onA, onP]);
  });
});

describe('rooms by user id: an instance whose subscription alone was cut asks again once it is back', () => {
  // Its publishing stays up: its lease holds, and nothing but the subscription comes back.
  const { started: cluster, open } = twoInstancesOneProxied('subscriber');

  it('a first connection made meanwhile joins the user’s rooms', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const onA = await open(a, 'reader');
    assert.equal(await a.service.joinRoom('stacks', { userId: 'reader' }), 1);

    await cutOff();
    // P cannot hear answers: it asks nobody, and waits.
    const onP = await open(p, 'reader');
    await restore();

    await assertRoomHolds(started, 'stacks', [onA, onP], [onA, onP]);
  });

  it('the others’ first connections whose question it missed meanwhile join the rooms it knew', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const onP = await open(p, 'rider');
    assert.equal(await p.service.joinRoom('cab', { userId: 'rider' }), 1);

    await cutOff();
    const asked = nextAnswers(a.bus, CROSS_WAIT_MS, 'rooms.of_user');
    const onA = await open(a, 'rider');
    assert.deepEqual((await asked)?.unreachable, [p.bus.instanceId]);
    await restore();

    await assertRoomHolds(started, 'cab', [onA, onP], [onA, onP]);
  });
});

describe('rooms by user id: leaves made on one side of a cut reach the other once it is back, and the later decision wins', () => {
  const { started: cluster, open } = twoInstancesOneProxied();
  /** The user on both instances, in `room` by user id on both, asked about in full. */
  const inRoomOnBoth = async ({ a, p }: TwoInstances, userId: string, room: string) => {
    const onA = await open(a, userId);
    const asked = nextAnswers(p.bus, CROSS_WAIT_MS, 'rooms.of_user');
    const onP = await open(p, userId);
    assert.deepEqual((await asked)?.unreachable, [], `${userId}'s question answered`);
    assert.equal(await a.service.joinRoom(room, { userId }), 2);
    return { onA, onP };
  };
  /**
   * Restores P's path; resolves once both instances have had their answers after it: P's
   * exchange of recent decisions, and both catch-ups' questions (P is back, A asks all its users).
   */
  const restoreAndCatchUp = async ({ a, p, restore }: TwoInstances) => {
    const exchanged = nextAnswers(p.bus, CROSS_WAIT_MS, 'control.recent_decisions');
    const pAsked = nextAnswers(p.bus, CROSS_WAIT_MS, 'rooms.of_users');
    const aAsked = nextAnswers(a.bus, CROSS_WAIT_MS, 'rooms.of_users');
    await restore();
    for (const [what, answers] of [
      ['P’s exchange', exchanged],
      ['P’s catch-up', pAsked],
      ['A’s catch-up', aAsked],
    ] as const) {
      assert.deepEqual((await answers)?.unreachable, [], `${what} answered`);
    }
  };

  it('made by the instance that stayed connected: out on both, with a connection opened meanwhile', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff } = started;
    const { onA, onP } = await inRoomOnBoth(started, 'monk', 'cloister');

    await cutOff();
    assert.equal(await a.service.leaveRoom('cloister', { userId: 'monk' }), 1, 'A alone');
    // P still remembers the room for the user: their new connection there joins it.
    const laterOnP = await open(p, 'monk');
    await restoreAndCatchUp(started);

    await assertRoomHolds(started, 'cloister', [], [onA, onP, laterOnP]);
  });

  it('made by the instance that stayed connected, with its catch-up’s answers slow on their way: out on both', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, cutOff } = started;
    const { onA, onP } = await inRoomOnBoth(started, 'friar', 'refectory');
    const joinedBy = performance.now();

    await cutOff();
    assert.equal(await a.service.leaveRoom('refectory', { userId: 'friar' }), 1, 'A alone');
    const leftAfter = performance.now() - joinedBy;
    // Longer than from the join to the leave: dated from when they came in, P's answers made the
    // join look later than the leave, and A put its connection back in the room.
    const delayMs = 1_500;
    assert.ok(leftAfter < delayMs, `the leave came ${leftAfter} ms after the join`);
    const slow = delayAnswers(a.bus, 'rooms.of_users', delayMs);
    try {
      await restoreAndCatchUp(started);
    } finally {
      slow.stop();
    }

    await assertRoomHolds(started, 'refectory', [], [onA, onP]);
  });

  it('made by the instance that was cut off, by a user whose connections there closed since', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { p, cutOff } = started;
    const { onA, onP } = await inRoomOnBoth(started, 'hermit', 'cave');

    await cutOff();
    assert.equal(await p.service.leaveRoom('cave', { userId: 'hermit' }), 1, 'P alone');
    onP.client.close();
    const registry = p.app.get(ConnectionRegistry);
    await eventually(() => registry.ofUser('hermit').size === 0, CROSS_WAIT_MS, 'closed on P');
    await restoreAndCatchUp(started);

    await assertRoomHolds(started, 'cave', [], [onA]);
  });

  it('a connection taken out while its instance was cut off is out once it is back; the user’s other stays', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff, restore } = started;
    const leaving = await open(p, 'chorister');
    const staying = await open(p, 'chorister');
    for (const c of [leaving, staying]) {
      assert.equal(await a.service.joinRoom('choir', { connectionId: c.connectionId }), 1);
    }

    await cutOff();
    assert.equal(await a.service.leaveRoom('choir', { connectionId: leaving.connectionId }), 0);
    await restore();

    await assertRoomHolds(started, 'choir', [staying], [leaving, staying]);
  });

  it('a join by user id made after the leave, on the other side, is kept on both', async (t) => {
    const started = cluster(t);
    if (!started) return;
    const { a, p, cutOff } = started;
    const { onA, onP } = await inRoomOnBoth(started, 'abbot', 'chapter');

    await cutOff();
    assert.equal(await a.service.leaveRoom('chapter', { userId: 'abbot' }), 1, 'A alone');
    // Later by more than a catch-up question's round trip: within one, a join and a leave cannot
    // be ordered, and count as a tie, which the leave wins.
    await sleep(1_000);
    // P's connection is in already: the join only renews the decision there.
    assert.equal(await p.service.joinRoom('chapter', { userId: 'abbot' }), 0);
    await restoreAndCatchUp(started);

    await assertRoomHolds(started, 'chapter', [onA, onP], [onA, onP]);
  });
});
