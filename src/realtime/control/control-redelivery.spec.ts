import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { WebSocket } from 'ws';
import type { ClusterAnswers } from '../bus/realtime-bus.js';
import { InProcessBus } from '../bus/in-process.bus.js';
import type { ConnectionCloser } from '../gateway/connection-closer.js';
import { monotonicNow } from '../monotonic-clock.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import { RealtimeConnection } from '../registry/realtime-connection.js';
import {
  CONTROL_TOPICS,
  disconnectsOf,
  MAX_RECENT_DISCONNECTS,
  MAX_RECENT_LEAVES,
  type RecentDisconnect,
  recentLeavesOf,
} from './control-requests.js';
import { ControlRedelivery } from './control-redelivery.js';
import { LocalControl } from './local-control.js';
import { RecentLeaves } from './recent-leaves.js';
import { type SentRequest, twoInstanceBus } from '../../../test/support/two-instance-bus.js';

const BANNED = { code: 4101, reason: 'banned' };
const STALLED: ClusterAnswers = { answers: [], unreachable: ['there'], degraded: false };

/**
 * The two-instance bus, whose other instance leaves every request unanswered until `answer` gives
 * what it answers from then on.
 */
function answeringLater() {
  let answer: unknown;
  return {
    ...twoInstanceBus(() => answer),
    answer: (value: unknown) => {
      answer = value;
    },
  };
}

/** A registry and a LocalControl whose closer records what it closed. */
function localConnections() {
  const registry = new ConnectionRegistry();
  const closed: { id: string; code: number; reason: string }[] = [];
  const closer = {
    close: (connection: RealtimeConnection, code: number, reason: string) => {
      registry.remove(connection);
      closed.push({ id: connection.id, code, reason });
    },
  } as unknown as ConnectionCloser;
  const open = (id: string, userId: string, openForMs: number) => {
    const principal = { userId, isAdmin: false, expiresAt: undefined, claims: {} };
    const socket = {} as WebSocket;
    registry.add(
      new RealtimeConnection(
        id,
        socket,
        principal,
        { remoteAddress: '127.0.0.1' },
        monotonicNow() - openForMs,
      ),
    );
  };
  return { local: new LocalControl(registry, closer, 100), closed, open, registry };
}

/** Lets every promise chain started so far run (setImmediate is not mocked). */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

function disconnectsSent(sent: SentRequest[]): RecentDisconnect[][] {
  return sent
    .filter(({ topic }) => topic === CONTROL_TOPICS.recent)
    .map(({ payload }) => disconnectsOf(payload));
}

describe('ControlRedelivery: an instance that stays connected but leaves a disconnect unanswered', () => {
  let fake: ReturnType<typeof answeringLater>;
  let redelivery: ControlRedelivery;

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
    fake = answeringLater();
    redelivery = new ControlRedelivery(fake.bus, localConnections().local, new RecentLeaves());
    redelivery.start();
  });
  afterEach(() => {
    redelivery.stop();
    mock.timers.reset();
  });

  /** Advances the clock by `ms`; how many disconnect exchanges went out meanwhile. */
  async function exchangesWithin(ms: number): Promise<number> {
    const before = disconnectsSent(fake.sent).length;
    mock.timers.tick(ms);
    await settle();
    return disconnectsSent(fake.sent).length - before;
  }

  it('is sent the recent disconnects again after 1 s, then with doubling delays, 6 times at most', async () => {
    redelivery.disconnectSent({ userId: 'u1', ...BANNED }, STALLED);
    assert.equal(await exchangesWithin(999), 0);
    assert.equal(await exchangesWithin(1), 1, 'after 1 s');
    const [first] = disconnectsSent(fake.sent);
    assert.deepEqual(
      first!.map(({ disconnect }) => disconnect),
      [{ userId: 'u1', ...BANNED }],
    );
    assert.equal(fake.sent.at(-1)!.to, 'there', 'to the instance that did not answer only');
    for (const delay of [2000, 4000, 8000, 16_000, 32_000]) {
      assert.equal(await exchangesWithin(delay - 1), 0);
      assert.equal(await exchangesWithin(1), 1, `after ${delay} ms more`);
    }
    assert.equal(await exchangesWithin(10 * 60_000), 0, 'then only at the next occasion');
  });

  it('is not sent them again once it answered', async () => {
    redelivery.disconnectSent({ connectionId: 'c9', ...BANNED }, STALLED);
    fake.answer({ disconnects: [] });
    assert.equal(await exchangesWithin(1000), 1);
    assert.equal(await exchangesWithin(10 * 60_000), 0);
  });

  it('a leave it left unanswered is sent again too', async () => {
    redelivery.left({ userId: 'u1' }, 'r1');
    redelivery.left({ connectionId: 'c9' }, 'r1');
    redelivery.leaveSent(STALLED);
    assert.equal(await exchangesWithin(1000), 1);
    const payload = fake.sent.at(-1)!.payload;
    const [ofUser, ofConnection] = recentLeavesOf(payload);
    assert.deepEqual(ofUser && { ...ofUser, leftMsAgo: 0 }, {
      userId: 'u1',
      room: 'r1',
      leftMsAgo: 0,
    });
    assert.ok(ofConnection && 'connectionId' in ofConnection);
    assert.equal(ofConnection.connectionId, 'c9');
    assert.match(ofConnection.id, /^[0-9a-f-]{36}$/, 'an id of its own');
  });

  it('a reconnection sends them to everyone, however many retries were spent', async () => {
    redelivery.disconnectSent({ userId: 'u1', ...BANNED }, STALLED);
    let retried = 0;
    for (let second = 0; second < 63; second++) retried += await exchangesWithin(1000);
    assert.equal(retried, 6);
    fake.change({ kind: 'reconnected' });
    await settle();
    assert.equal(fake.sent.at(-1)!.to, undefined, 'to every instance');
    assert.equal(await exchangesWithin(1000), 1, 'and the retries start over');
  });
});

describe('ControlRedelivery: what it keeps and applies', () => {
  it('keeps the latest disconnect of a user or connection, at most MAX_RECENT_DISCONNECTS', async () => {
    const fake = answeringLater();
    const redelivery = new ControlRedelivery(
      fake.bus,
      localConnections().local,
      new RecentLeaves(),
    );
    redelivery.start();
    const complete: ClusterAnswers = { answers: [], unreachable: [], degraded: false };
    redelivery.disconnectSent({ userId: 'u1', code: 4004, reason: 'first' }, complete);
    for (let i = 0; i < MAX_RECENT_DISCONNECTS; i++) {
      redelivery.disconnectSent({ connectionId: `c${i}`, ...BANNED }, complete);
    }
    redelivery.disconnectSent({ userId: 'u1', ...BANNED }, complete);
    assert.equal(redelivery.size, MAX_RECENT_DISCONNECTS);
    fake.answer({ disconnects: [] });
    fake.change({ kind: 'reconnected' });
    await settle();
    const [kept] = disconnectsSent(fake.sent);
    assert.equal(kept!.length, MAX_RECENT_DISCONNECTS);
    assert.deepEqual(kept!.at(-1)!.disconnect, { userId: 'u1', ...BANNED }, 'the latest, last');
    assert.ok(
      !kept!.some(
        ({ disconnect }) => 'connectionId' in disconnect && disconnect.connectionId === 'c0',
      ),
      'the oldest dropped',
    );
    redelivery.stop();
  });

  it('applies what the others answer: a user’s connections open when it was made close, later ones stay', async () => {
    const fake = answeringLater();
    const { local, closed, open } = localConnections();
    open('old', 'u1', 60_000);
    open('new', 'u1', 1_000);
    open('kicked', 'u2', 10);
    const redelivery = new ControlRedelivery(fake.bus, local, new RecentLeaves());
    redelivery.start();
    fake.answer({
      disconnects: [
        { disconnect: { userId: 'u1', ...BANNED }, madeMsAgo: 30_000 },
        { disconnect: { connectionId: 'kicked', code: 4004, reason: 'kicked' }, madeMsAgo: 5 },
      ],
    });
    fake.change({ kind: 'resubscribed' });
    await settle();
    assert.deepEqual(closed, [
      { id: 'old', ...BANNED },
      { id: 'kicked', code: 4004, reason: 'kicked' },
    ]);
    redelivery.stop();
  });

  it('refuses exchanges that are not one of ours, whole', () => {
    const valid = { disconnect: { userId: 'u1', ...BANNED }, madeMsAgo: 1 };
    for (const payload of [
      null,
      { disconnects: 'all' },
      { disconnects: [valid, { disconnect: { userId: 'u1', ...BANNED }, madeMsAgo: -1 }] },
      { disconnects: [{ disconnect: { userId: 'u1', ...BANNED }, madeMsAgo: Infinity }] },
      { disconnects: [{ disconnect: { userId: 'u1', code: '4101', reason: 'x' }, madeMsAgo: 1 }] },
      { disconnects: [{ disconnect: { userId: '', ...BANNED }, madeMsAgo: 1 }] },
      { disconnects: [{ disconnect: { connectionId: 7, ...BANNED }, madeMsAgo: 1 }] },
      { disconnects: Array.from({ length: MAX_RECENT_DISCONNECTS + 1 }, () => valid) },
    ]) {
      assert.throws(() => disconnectsOf(payload), Error, JSON.stringify(payload).slice(0, 80));
    }
    assert.deepEqual(disconnectsOf({ disconnects: [valid] }), [valid]);
  });
});

describe('ControlRedelivery: leaves by user id', () => {
  it('undo the join by user id they follow, not one made since, nor one by connection id; and are kept', async () => {
    const fake = answeringLater();
    const { local, open, registry } = localConnections();
    open('c1', 'u1', 60_000);
    open('c2', 'u2', 60_000);
    open('c4', 'u4', 60_000);
    registry.joinUser('u1', 'r1', 100);
    registry.joinUser('u2', 'r2', 100);
    registry.join(registry.get('c4')!, 'r4', 100);
    const leaves = new RecentLeaves();
    const redelivery = new ControlRedelivery(fake.bus, local, leaves);
    redelivery.start();
    redelivery.left({ userId: 'u3' }, 'r3');
    fake.answer({
      disconnects: [],
      leaves: [
        // Made after u1 joined r1 here: u1 leaves it.
        { userId: 'u1', room: 'r1', leftMsAgo: 0 },
        // Made before u2 joined r2 here: the join stands.
        { userId: 'u2', room: 'r2', leftMsAgo: 30_000 },
        { userId: 'u4', room: 'r4', leftMsAgo: 0 },
      ],
    });
    fake.change({ kind: 'reconnected' });
    await settle();
    const sent = recentLeavesOf(fake.sent.at(-1)!.payload);
    assert.deepEqual(
      sent.map(({ leftMsAgo: _, ...leave }) => leave),
      [{ userId: 'u3', room: 'r3' }],
      'its own sent',
    );
    assert.deepEqual([...registry.get('c1')!.rooms], []);
    assert.deepEqual([...registry.userRoomsOf('u1')], [], 'forgotten for later connections');
    assert.deepEqual([...registry.get('c2')!.rooms], ['r2']);
    assert.deepEqual([...registry.userRoomsOf('u2')], ['r2']);
    // In it by connection id only: not what a leave by user id follows.
    assert.deepEqual([...registry.get('c4')!.rooms], ['r4']);

    // Sent again at the next occasion, after u1's connection joined r1 by connection id: it stays.
    registry.join(registry.get('c1')!, 'r1', 100);
    fake.change({ kind: 'resubscribed' });
    await settle();
    assert.deepEqual([...registry.get('c1')!.rooms], ['r1']);
    assert.ok(leaves.leftAt('u1', 'r1') !== undefined && leaves.leftAt('u2', 'r2') !== undefined);
    redelivery.stop();
  });

  it('applies a leave of a connection that is here once, however often it is sent, and does not keep it', async () => {
    const fake = answeringLater();
    const { local, open, registry } = localConnections();
    open('c1', 'u1', 60_000);
    const c1 = registry.get('c1')!;
    registry.join(c1, 'r1', 100);
    registry.join(c1, 'r2', 100);
    const leaves = new RecentLeaves();
    const redelivery = new ControlRedelivery(fake.bus, local, leaves);
    redelivery.start();
    fake.answer({
      disconnects: [],
      leaves: [
        { connectionId: 'c1', id: 'leave-1', room: 'r1', leftMsAgo: 10 },
        { connectionId: 'elsewhere', id: 'leave-2', room: 'r2', leftMsAgo: 10 },
      ],
    });
    fake.change({ kind: 'resubscribed' });
    await settle();
    assert.deepEqual([...c1.rooms], ['r2']);
    assert.equal(leaves.size, 0, 'the instance that made it keeps it');

    // Joined again since: the same leave, sent at the next occasion, leaves it there.
    registry.join(c1, 'r1', 100);
    fake.change({ kind: 'reconnected' });
    await settle();
    assert.equal(fake.sent.length, 2);
    assert.deepEqual([...c1.rooms].sort(), ['r1', 'r2']);
    redelivery.stop();
  });

  it('keeps the latest leave of a user from a room, at most MAX_RECENT_LEAVES', () => {
    const leaves = new RecentLeaves();
    const now = monotonicNow();
    leaves.record({ userId: 'u1' }, 'r1', now - 1000);
    leaves.record({ userId: 'u1' }, 'r1', now - 2000);
    assert.equal(leaves.leftAt('u1', 'r1'), now - 1000, 'an older one does not replace it');
    for (let i = 0; i < MAX_RECENT_LEAVES; i++) leaves.record({ userId: `u${i}` }, 'many', now);
    assert.equal(leaves.size, MAX_RECENT_LEAVES);
    assert.equal(leaves.leftAt('u1', 'r1'), undefined, 'the first recorded dropped');
    assert.equal(leaves.entries().length, MAX_RECENT_LEAVES);
    leaves.record({ userId: 'u0' }, 'long ago', now - 2 * 60 * 60_000);
    assert.ok(
      !leaves.entries().some(({ room }) => room === 'long ago'),
      'older than an hour: not sent',
    );
  });

  it('alone on the in-process bus, keeps none', () => {
    const leaves = new RecentLeaves();
    const redelivery = new ControlRedelivery(new InProcessBus(), localConnections().local, leaves);
    redelivery.left({ userId: 'u1' }, 'r1');
    assert.equal(leaves.size, 0);
  });

  it('refuses exchanges whose leaves are not one of ours, whole; none from an older version', () => {
    const valid = { userId: 'u1', room: 'r1', leftMsAgo: 1 };
    for (const payload of [
      null,
      { leaves: 'all' },
      { leaves: [valid, { userId: 'u1', room: 'r1', leftMsAgo: -1 }] },
      { leaves: [{ userId: 'u1', room: 'r1', leftMsAgo: Number.NaN }] },
      { leaves: [{ userId: '', room: 'r1', leftMsAgo: 1 }] },
      { leaves: [{ userId: 'u1', room: '', leftMsAgo: 1 }] },
      { leaves: [{ userId: 'u1', room: 7, leftMsAgo: 1 }] },
      { leaves: Array.from({ length: MAX_RECENT_LEAVES + 1 }, () => valid) },
    ]) {
      assert.throws(() => recentLeavesOf(payload), Error, JSON.stringify(payload).slice(0, 80));
    }
    assert.deepEqual(recentLeavesOf({ disconnects: [] }), []);
    assert.deepEqual(recentLeavesOf({ disconnects: [], leaves: [valid] }), [valid]);
    const ofConnection = { connectionId: 'c1', id: 'x', room: 'r1', leftMsAgo: 1 };
    assert.deepEqual(recentLeavesOf({ leaves: [ofConnection] }), [ofConnection]);
    for (const id of [undefined, '', 7, 'x'.repeat(65)]) {
      assert.throws(() => recentLeavesOf({ leaves: [{ ...ofConnection, id }] }), /leave id/);
    }
  });
});
