import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { WebSocket } from 'ws';
import type { ClusterAnswers, ClusterChange, RealtimeBus } from '../bus/realtime-bus.js';
import type { ConnectionCloser } from '../gateway/connection-closer.js';
import { monotonicNow } from '../monotonic-clock.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import { RealtimeConnection } from '../registry/realtime-connection.js';
import {
  CONTROL_TOPICS,
  disconnectsOf,
  MAX_RECENT_DISCONNECTS,
  type RecentDisconnect,
} from './control-requests.js';
import { DisconnectRedelivery } from './disconnect-redelivery.js';
import { LocalControl } from './local-control.js';

const BANNED = { code: 4101, reason: 'banned' };
const STALLED: ClusterAnswers = { answers: [], unreachable: ['there'], degraded: false };

interface Sent {
  topic: string;
  payload: unknown;
  to: string | undefined;
}

/**
 * A bus of two connected instances; the other one leaves every request unanswered until
 * `answer` gives what it answers from then on. (The e2e tests cover the real bus and real cuts;
 * a minute of retries is timed here on mocked timers.)
 */
function twoInstanceBus() {
  const sent: Sent[] = [];
  const listeners: ((change: ClusterChange) => void)[] = [];
  let answer: unknown;
  const bus = {
    instanceId: 'here',
    handle: () => undefined,
    liveInstances: () => ['here', 'there'],
    isConnected: () => true,
    onClusterChange: (listener: (change: ClusterChange) => void) => listeners.push(listener),
    request: (
      topic: string,
      payload: unknown,
      options?: { to?: string },
    ): Promise<ClusterAnswers> => {
      sent.push({ topic, payload, to: options?.to });
      return Promise.resolve(
        answer === undefined
          ? STALLED
          : { answers: [{ instanceId: 'there', answer }], unreachable: [], degraded: false },
      );
    },
  } as unknown as RealtimeBus;
  return {
    bus,
    sent,
    change: (change: ClusterChange) => listeners.forEach((listener) => listener(change)),
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
      new RealtimeConnection(id, socket, principal, '127.0.0.1', monotonicNow() - openForMs),
    );
  };
  return { local: new LocalControl(registry, closer, 100), closed, open };
}

/** Lets every promise chain started so far run (setImmediate is not mocked). */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

function disconnectsSent(sent: Sent[]): RecentDisconnect[][] {
  return sent
    .filter(({ topic }) => topic === CONTROL_TOPICS.disconnects)
    .map(({ payload }) => disconnectsOf(payload));
}

describe('DisconnectRedelivery: an instance that stays connected but leaves a disconnect unanswered', () => {
  let fake: ReturnType<typeof twoInstanceBus>;
  let redelivery: DisconnectRedelivery;

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
    fake = twoInstanceBus();
    redelivery = new DisconnectRedelivery(fake.bus, localConnections().local);
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
    redelivery.sent({ userId: 'u1', ...BANNED }, STALLED);
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
    redelivery.sent({ connectionId: 'c9', ...BANNED }, STALLED);
    fake.answer({ disconnects: [] });
    assert.equal(await exchangesWithin(1000), 1);
    assert.equal(await exchangesWithin(10 * 60_000), 0);
  });

  it('a reconnection sends them to everyone, however many retries were spent', async () => {
    redelivery.sent({ userId: 'u1', ...BANNED }, STALLED);
    let retried = 0;
    for (let second = 0; second < 63; second++) retried += await exchangesWithin(1000);
    assert.equal(retried, 6);
    fake.change({ kind: 'reconnected' });
    await settle();
    assert.equal(fake.sent.at(-1)!.to, undefined, 'to every instance');
    assert.equal(await exchangesWithin(1000), 1, 'and the retries start over');
  });
});

describe('DisconnectRedelivery: what it keeps and applies', () => {
  it('keeps the latest disconnect of a user or connection, at most MAX_RECENT_DISCONNECTS', async () => {
    const fake = twoInstanceBus();
    const redelivery = new DisconnectRedelivery(fake.bus, localConnections().local);
    redelivery.start();
    const complete: ClusterAnswers = { answers: [], unreachable: [], degraded: false };
    redelivery.sent({ userId: 'u1', code: 4004, reason: 'first' }, complete);
    for (let i = 0; i < MAX_RECENT_DISCONNECTS; i++) {
      redelivery.sent({ connectionId: `c${i}`, ...BANNED }, complete);
    }
    redelivery.sent({ userId: 'u1', ...BANNED }, complete);
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
    const fake = twoInstanceBus();
    const { local, closed, open } = localConnections();
    open('old', 'u1', 60_000);
    open('new', 'u1', 1_000);
    open('kicked', 'u2', 10);
    const redelivery = new DisconnectRedelivery(fake.bus, local);
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
