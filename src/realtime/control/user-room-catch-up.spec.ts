import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { WebSocket } from 'ws';
import type { ClusterChange } from '../bus/realtime-bus.js';
import { monotonicNow } from '../monotonic-clock.js';
import { RealtimeEvents } from '../realtime-events.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import { RealtimeConnection } from '../registry/realtime-connection.js';
import { CONTROL_TOPICS } from './control-requests.js';
import { RecentLeaves } from './recent-leaves.js';
import { UserRoomCatchUp } from './user-room-catch-up.js';
import { twoInstanceBus } from '../../../test/support/two-instance-bus.js';

/**
 * The two-instance bus, whose other instance never answers in time, though both stay connected,
 * until `answerFully`.
 */
function silentPeerBus() {
  let complete = false;
  const topics: string[] = [];
  const fake = twoInstanceBus((topic) => {
    topics.push(topic);
    return complete ? answerOf(topic) : undefined;
  });
  return {
    ...fake,
    topics,
    answerFully: () => {
      complete = true;
    },
  };
}

function answerOf(topic: string): unknown {
  return topic === CONTROL_TOPICS.userRooms
    ? { rooms: null, catchingUp: false, inUse: true }
    : { users: [], inUse: true };
}

/** Lets every promise chain started so far run (setImmediate is not mocked). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('UserRoomCatchUp: asking again after answers left out with the bus up', () => {
  let topics: string[];
  let change: (change: ClusterChange) => void;
  let answerFully: () => void;

  beforeEach(async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const fake = silentPeerBus();
    ({ topics, change, answerFully } = fake);
    const registry = new ConnectionRegistry();
    const events = new RealtimeEvents();
    new UserRoomCatchUp(fake.bus, registry, events, 100, new RecentLeaves()).start();
    const socket = {} as WebSocket;
    const principal = { userId: 'u1', isAdmin: false, expiresAt: undefined, claims: {} };
    registry.add(
      new RealtimeConnection('c1', socket, principal, { remoteAddress: '127.0.0.1' }, 0),
    );
    events.opened.next({
      connectionId: 'c1',
      userId: 'u1',
      remoteAddress: '127.0.0.1',
      connectedAt: new Date(0),
    });
    await settle();
    assert.deepEqual(topics, [CONTROL_TOPICS.userRooms], 'the first connection asks');
  });
  afterEach(() => mock.timers.reset());

  /** Advances the clock by `ms` and returns how many requests were made meanwhile. */
  async function requestsWithin(ms: number): Promise<number> {
    const before = topics.length;
    mock.timers.tick(ms);
    await settle();
    return topics.length - before;
  }

  it('after 1, 2, 4, 8, 16 and 32 s, then no more until another occasion, which counts afresh', async () => {
    for (const delay of [1000, 2000, 4000, 8000, 16_000, 32_000]) {
      assert.equal(await requestsWithin(delay - 1), 0, `nothing before ${delay} ms`);
      assert.equal(await requestsWithin(1), 1, `one request at ${delay} ms`);
      assert.equal(topics.at(-1), CONTROL_TOPICS.usersRooms);
    }
    assert.equal(await requestsWithin(3_600_000), 0, 'six in a row at most');

    change({ kind: 'resubscribed' });
    await settle();
    assert.equal(topics.length, 8, 'an occasion asks again');
    assert.equal(await requestsWithin(1000), 1, 'and the retries start over');
  });

  it('stop once every instance answered', async () => {
    assert.equal(await requestsWithin(1000), 1);
    answerFully();
    assert.equal(await requestsWithin(2000), 1, 'answered in full this time');
    assert.equal(await requestsWithin(3_600_000), 0, 'nobody waits any more');
  });
});

describe('UserRoomCatchUp: rooms answered and leaves known here', () => {
  it('takes on a room answered unless the user left it by user id after the join answered', async () => {
    const answer = {
      rooms: ['left-since', 'joined-since', 'joined-again'],
      joinedMsAgo: [60_000, 1_000, 1_000],
      catchingUp: false,
      inUse: true,
    };
    const { bus } = twoInstanceBus(() => answer);
    const registry = new ConnectionRegistry();
    const events = new RealtimeEvents();
    const leaves = new RecentLeaves();
    const now = monotonicNow();
    leaves.record({ userId: 'u1' }, 'left-since', now - 30_000);
    leaves.record({ userId: 'u1' }, 'joined-since', now - 30_000);
    // Another user's leave is not this one's.
    leaves.record({ userId: 'u2' }, 'joined-again', now);
    new UserRoomCatchUp(bus, registry, events, 100, leaves).start();
    const principal = { userId: 'u1', isAdmin: false, expiresAt: undefined, claims: {} };
    const connection = new RealtimeConnection(
      'c1',
      {} as WebSocket,
      principal,
      { remoteAddress: '127.0.0.1' },
      now,
    );
    registry.add(connection);
    events.opened.next({
      connectionId: 'c1',
      userId: 'u1',
      remoteAddress: '127.0.0.1',
      connectedAt: new Date(now),
    });
    await settle();
    assert.deepEqual([...connection.rooms].sort(), ['joined-again', 'joined-since']);
    const remembered = registry.userRoomJoins('u1');
    assert.deepEqual([...remembered.keys()].sort(), ['joined-again', 'joined-since']);
    const joinedAt = remembered.get('joined-since')!;
    // When it was joined there, not when this instance heard of it.
    assert.ok(joinedAt <= monotonicNow() - 1_000 && joinedAt > now - 2_000, String(now - joinedAt));
  });
});
