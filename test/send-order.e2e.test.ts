import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RealtimeService } from '../src/realtime/index.js';
import type { ClusterInstance } from './support/cluster.js';
import { type ClusterClient, CROSS_WAIT_MS, openOn } from './support/cluster-clients.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import { requireRedis } from './support/redis-server.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';

/** Sends in a burst, without awaiting: alternating kinds, so stream and plain sends interleave. */
const SENDS = 40;
const TYPE = 'test.order';
/** Subscribable events (the default list), one per app or instance: one subscriber each. */
const EVENT = { single: 'review.created', sending: 'review.updated', other: 'review.deleted' };

type Kind = 'user' | 'connection' | 'room' | 'event';

/** Issues SENDS sends to one client, kind by kind in turn, without awaiting; returns the counts. */
function burst(
  service: RealtimeService,
  to: { userId: string; connectionId: string; room: string; event: string },
  kinds: readonly Kind[],
): Promise<number[]> {
  const sends: Array<Promise<number>> = [];
  for (let seq = 0; seq < SENDS; seq++) {
    const kind = kinds[seq % kinds.length]!;
    const data = { seq, kind };
    switch (kind) {
      case 'user':
        sends.push(service.sendToUser(to.userId, TYPE, data));
        break;
      case 'connection':
        sends.push(service.sendToConnection(to.connectionId, TYPE, data));
        break;
      case 'room':
        sends.push(service.sendToRoom(to.room, TYPE, data));
        break;
      case 'event':
        sends.push(service.publish(TYPE, data, { kind: 'event', event: to.event }));
        break;
    }
  }
  return Promise.all(sends);
}

/** The sequence numbers `client` got, once it got them all (bounded wait). */
async function orderSeen(client: TestClient, label: string): Promise<number[]> {
  const mine = () => client.received.filter((m) => m.type === TYPE);
  await eventually(() => mine().length >= SENDS, CROSS_WAIT_MS, `${SENDS} sends reaching ${label}`);
  return mine().map((m) => Number(m.data.seq));
}

const IN_ORDER = Array.from({ length: SENDS }, (_, seq) => seq);
const ALL_REACHED_ONCE = Array.from({ length: SENDS }, () => 1);

/** Subscribes `client` to `event` and adds it to `room`, through `service` (tests with events). */
async function enroll(
  client: TestClient,
  service: RealtimeService,
  connectionId: string,
  room: string,
  event: string,
): Promise<void> {
  const ack = await client.request({ type: 'subscribe', data: { events: [event] } });
  assert.equal(ack.type, 'subscription.acknowledged');
  assert.deepEqual(ack.data.events, [event]);
  assert.equal(await service.joinRoom(room, { connectionId }), 1);
}

const MIXES: ReadonlyArray<readonly Kind[]> = [
  ['user', 'connection'],
  ['connection', 'user'],
  ['room', 'connection', 'event', 'connection', 'user'],
];

describe('one sender keeps its order across kinds of send (README, PROTOCOL 10)', () => {
  describe('single instance, history on', () => {
    let server: TestApp;
    let service: RealtimeService;
    const clients: TestClient[] = [];
    before(async () => {
      server = await startTestApp();
      service = server.app.get(RealtimeService);
    });
    after(async () => {
      for (const c of clients) c.close();
      await server.close();
    });

    MIXES.forEach((kinds, n) => {
      it(`delivers ${kinds.join('/')} sends in the order issued`, async () => {
        const userId = `order-single-${n}`;
        const client = await TestClient.open(server.wsUrl, server.token(userId));
        clients.push(client);
        const established = client.received[0]!;
        assert.equal(established.type, 'connection.established');
        const connectionId = String(established.data.connection_id);
        const room = `order-room-${n}`;
        const event = EVENT.single;
        if (kinds.includes('event')) await enroll(client, service, connectionId, room, event);
        else assert.equal(await service.joinRoom(room, { connectionId }), 1);
        const counts = await burst(service, { userId, connectionId, room, event }, kinds);
        const seen = await orderSeen(client, userId);
        assert.deepEqual({ counts, seen }, { counts: ALL_REACHED_ONCE, seen: IN_ORDER });
      });
    });
  });

  describe('cluster of 2 on Redis, history on', () => {
    let setup: RedisCluster | undefined;
    const clients: ClusterClient[] = [];
    before(async () => {
      setup = await startRedisCluster(2);
    });
    after(async () => {
      for (const c of clients) c.client.close();
      await setup?.close();
    });

    for (const where of ['sending', 'other'] as const) {
      MIXES.forEach((kinds, n) => {
        it(`delivers ${kinds.join('/')} sends in order to a client on the ${where} instance`, async (t) => {
          if (!requireRedis(t, setup?.redis)) return;
          const [i0, i1] = setup.cluster.instances as [ClusterInstance, ClusterInstance];
          const on = where === 'sending' ? i0 : i1;
          const userId = `order-${where}-${n}`;
          const c = await openOn(on, userId);
          clients.push(c);
          const room = `order-room-${where}-${n}`;
          const event = EVENT[where];
          if (kinds.includes('event'))
            await enroll(c.client, on.service, c.connectionId, room, event);
          else assert.equal(await on.service.joinRoom(room, { connectionId: c.connectionId }), 1);
          const counts = await burst(
            i0.service,
            { userId, connectionId: c.connectionId, room, event },
            kinds,
          );
          const seen = await orderSeen(c.client, c.label);
          assert.deepEqual({ counts, seen }, { counts: ALL_REACHED_ONCE, seen: IN_ORDER });
        });
      });
    }
  });
});
