import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { firstValueFrom, take, timeout } from 'rxjs';
import {
  DEFAULT_SUBSCRIBABLE_EVENTS,
  RealtimeService,
  type UploadCancelRequest,
} from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TestClient } from './support/test-client.js';
import {
  assertAllEnvelopes,
  assertNotReceived,
  assertPingWorks,
  ISO_UTC,
  sleep,
} from './support/wire.js';

describe('built-in handlers (PROTOCOL 4)', () => {
  /** Whether the authorizer now refuses room:revocable. */
  let revoked = false;
  let server: TestApp;
  let service: RealtimeService;
  let users = 0;
  before(async () => {
    server = await startTestApp({
      realtime: {
        subscriptionAuthorizer: async (name, principal) => {
          if (name === 'room:boom') throw new Error('authorizer backend down');
          if (name === 'room:slow') {
            await sleep(100);
            return true;
          }
          if (name === 'room:revocable') return !revoked;
          return name === 'room:42' && principal.userId === 'alice';
        },
      },
    });
    service = server.app.get(RealtimeService);
  });
  after(() => server.close());

  function open(userId = `handlers-${++users}`): Promise<TestClient> {
    return TestClient.open(server.wsUrl, server.token(userId));
  }

  it('answers ping with pong { timestamp, pingId }', async () => {
    const client = await open();
    const reply = await client.request({ type: 'ping', data: { pingId: 'p-1' }, id: 'ping-1' });
    assert.equal(reply.type, 'pong');
    assert.equal(reply.in_reply_to, 'ping-1');
    assert.equal(reply.data.pingId, 'p-1');
    assert.match(reply.data.timestamp, ISO_UTC);
    const bare = await client.request({ type: 'ping', id: 'ping-2' });
    assert.equal(bare.type, 'pong');
    assert.match(bare.data.timestamp, ISO_UTC);
    assert.equal(bare.data.pingId, undefined);
    assertAllEnvelopes(client);
    client.close();
  });

  it('refuses a ping whose pingId is not a string', async () => {
    const client = await open();
    const reply = await client.request({ type: 'ping', data: { pingId: 5 } });
    assert.equal(reply.type, 'error');
    assert.equal(reply.data.code, 'INVALID_MESSAGE_FORMAT');
    client.close();
  });

  it('does not answer heartbeat or pong', async () => {
    const client = await open();
    const from = client.received.length;
    client.send({ type: 'heartbeat', data: {}, id: 'hb-1' });
    client.send({ type: 'pong', data: {}, id: 'pong-1' });
    client.send({ type: 'heartbeat', id: 'hb-2' });
    client.send({ type: 'ping', data: { pingId: 'after' }, id: 'ping-after' });
    const next = await client.next();
    assert.equal(next.type, 'pong');
    assert.equal(next.in_reply_to, 'ping-after');
    assert.equal(client.received.length, from + 1);
    assert.equal(
      client.received.some((m) => ['hb-1', 'hb-2', 'pong-1'].includes(m.in_reply_to ?? '')),
      false,
    );
    client.close();
  });

  it('subscribes to one event', async () => {
    const client = await open();
    const ack = await client.request({ type: 'subscribe', data: { events: ['upload.progress'] } });
    assert.equal(ack.type, 'subscription.acknowledged');
    assert.deepEqual(ack.data, { events: ['upload.progress'], invalid_events: [] });
    client.close();
  });

  it('accepts 50 names in one subscribe', async () => {
    const client = await open();
    const unknown = Array.from(
      { length: 50 - DEFAULT_SUBSCRIBABLE_EVENTS.length },
      (_, i) => `unknown.${i}`,
    );
    const names = [...DEFAULT_SUBSCRIBABLE_EVENTS, ...unknown];
    assert.equal(names.length, 50);
    const ack = await client.request({ type: 'subscribe', data: { events: names } });
    assert.equal(ack.type, 'subscription.acknowledged');
    assert.deepEqual(ack.data.events, [...DEFAULT_SUBSCRIBABLE_EVENTS]);
    assert.deepEqual(ack.data.invalid_events, unknown);
    client.close();
  });

  it('refuses a subscribe with 0 names, 51 names, non-string names or no events', async () => {
    const client = await open();
    const bad: unknown[] = [
      { events: [] },
      { events: Array.from({ length: 51 }, (_, i) => `e${i}`) },
      { events: ['upload.progress', 42] },
      { events: [null] },
      { events: [{ name: 'upload.progress' }] },
      { events: 'upload.progress' },
      {},
    ];
    for (const [i, data] of bad.entries()) {
      const reply = await client.request({ type: 'subscribe', data, id: `bad-${i}` });
      assert.equal(reply.type, 'error', `case ${i}`);
      assert.equal(reply.data.code, 'INVALID_MESSAGE_FORMAT', `case ${i}`);
    }
    assert.equal(client.ofType('subscription.acknowledged').length, 0);
    await assertPingWorks(client);
    assertAllEnvelopes(client);
    client.close();
  });

  it('puts unknown names in invalid_events', async () => {
    const client = await open();
    const ack = await client.request({
      type: 'subscribe',
      data: { events: ['review.created', 'no.such.event', 'room:7'] },
    });
    assert.deepEqual(ack.data, {
      events: ['review.created'],
      invalid_events: ['no.such.event', 'room:7'],
    });
    assert.equal(client.ofType('error').length, 0);
    client.close();
  });

  it('acknowledges, then answers SUBSCRIPTION_FAILED when every name is refused', async () => {
    const client = await open();
    client.send({ type: 'subscribe', data: { events: ['nope.a', 'nope.b'] }, id: 'sub-none' });
    const ack = await client.next();
    assert.equal(ack.type, 'subscription.acknowledged');
    assert.equal(ack.in_reply_to, 'sub-none');
    assert.deepEqual(ack.data, { events: [], invalid_events: ['nope.a', 'nope.b'] });
    const error = await client.next();
    assert.equal(error.type, 'error');
    assert.equal(error.data.code, 'SUBSCRIPTION_FAILED');
    assert.equal(error.in_reply_to, 'sub-none');
    await assertPingWorks(client);
    client.close();
  });

  it('asks the subscriptionAuthorizer for names outside the allow-list', async () => {
    const alice = await open('alice');
    const bob = await open('bob');
    const yes = await alice.request({ type: 'subscribe', data: { events: ['room:42'] } });
    assert.deepEqual(yes.data, { events: ['room:42'], invalid_events: [] });
    const no = await bob.request({ type: 'subscribe', data: { events: ['room:42'] } });
    assert.deepEqual(no.data, { events: [], invalid_events: ['room:42'] });
    const failed = await bob.next('error');
    assert.equal(failed.data.code, 'SUBSCRIPTION_FAILED');

    assert.equal(await service.sendToEvent('room:42', { text: 'hi' }), 1);
    const message = await alice.next('room:42');
    assert.deepEqual(message.data, { text: 'hi' });
    await assertNotReceived(service, bob, 'bob', 'room:42');
    alice.close();
    bob.close();
  });

  it('ends a subscription the authorizer refuses on a later subscribe, as the ack says', async () => {
    const client = await open();
    const granted = await client.request({
      type: 'subscribe',
      data: { events: ['room:revocable'] },
    });
    assert.deepEqual(granted.data.events, ['room:revocable']);
    revoked = true;
    try {
      const refused = await client.request({
        type: 'subscribe',
        data: { events: ['room:revocable'] },
      });
      assert.deepEqual(refused.data, { events: [], invalid_events: ['room:revocable'] });
      assert.equal(await service.sendToEvent('room:revocable', { text: 'after' }), 0);
    } finally {
      revoked = false;
      client.close();
    }
  });

  it('keeps the order of the names when only some go to the authorizer', async () => {
    const alice = await open('alice');
    const ack = await alice.request({
      type: 'subscribe',
      data: { events: ['system.notification', 'room:42', 'nope', 'review.created', 'room:42'] },
    });
    assert.deepEqual(ack.data, {
      events: ['system.notification', 'room:42', 'review.created'],
      invalid_events: ['nope'],
    });
    assert.equal(await service.sendToEvent('room:42', { n: 1 }), 1);
    assert.deepEqual((await alice.next('room:42')).data, { n: 1 });
    alice.close();
  });

  it('refuses a name when the authorizer throws, and keeps the connection', async () => {
    const client = await open('alice');
    const ack = await client.request({
      type: 'subscribe',
      data: { events: ['room:boom', 'system.notification'] },
    });
    assert.deepEqual(ack.data, {
      events: ['system.notification'],
      invalid_events: ['room:boom'],
    });
    await assertPingWorks(client);
    assert.equal(client.closeInfo, undefined);
    assert.ok(
      client.received.every((m) => !JSON.stringify(m).includes('authorizer backend down')),
      'the authorizer error is not sent to the client',
    );
    client.close();
  });

  it('answers a later message only after a slow subscribe, in order', async () => {
    const client = await open();
    client.send({ type: 'subscribe', data: { events: ['room:slow'] }, id: 'slow-sub' });
    client.send({ type: 'ping', data: {}, id: 'quick-ping' });
    client.send({ type: 'unsubscribe', data: { events: ['room:slow'] }, id: 'slow-unsub' });
    const replies = [await client.next(), await client.next(), await client.next()];
    assert.deepEqual(
      replies.map((m) => [m.type, m.in_reply_to]),
      [
        ['subscription.acknowledged', 'slow-sub'],
        ['pong', 'quick-ping'],
        ['unsubscription.acknowledged', 'slow-unsub'],
      ],
    );
    assert.deepEqual(replies[2]!.data, { events: ['room:slow'] });
    client.close();
  });

  it('unsubscribes and acknowledges the names actually removed', async () => {
    const client = await open();
    await client.request({
      type: 'subscribe',
      data: { events: ['file.ready', 'file.processing'] },
    });
    const ack = await client.request({
      type: 'unsubscribe',
      data: { events: ['file.ready', 'review.deleted', 'never.known'] },
      id: 'unsub-1',
    });
    assert.equal(ack.type, 'unsubscription.acknowledged');
    assert.equal(ack.in_reply_to, 'unsub-1');
    assert.deepEqual(ack.data, { events: ['file.ready'] });
    const again = await client.request({ type: 'unsubscribe', data: { events: ['file.ready'] } });
    assert.deepEqual(again.data, { events: [] });
    // PROTOCOL 4 bounds subscribe (1..50 names), not unsubscribe: an empty list is acknowledged.
    const none = await client.request({ type: 'unsubscribe', data: { events: [] } });
    assert.equal(none.type, 'unsubscription.acknowledged');
    assert.deepEqual(none.data, { events: [] });
    const bad = await client.request({ type: 'unsubscribe', data: { events: 'file.ready' } });
    assert.equal(bad.data.code, 'INVALID_MESSAGE_FORMAT');
    client.close();
  });

  it('stops delivering an event after unsubscribe', async () => {
    const userId = `handlers-${++users}`;
    const client = await open(userId);
    await client.request({ type: 'subscribe', data: { events: ['review.updated'] } });
    assert.equal(await service.sendToEvent('review.updated', { review_id: 'r1' }), 1);
    assert.equal((await client.next('review.updated')).data.review_id, 'r1');
    await client.request({ type: 'unsubscribe', data: { events: ['review.updated'] } });
    assert.equal(await service.sendToEvent('review.updated', { review_id: 'r2' }), 0);
    await assertNotReceived(service, client, userId, 'review.updated', (d) => d.review_id === 'r2');
    client.close();
  });

  it('acknowledges upload.cancel and hands it to the host', async () => {
    const userId = `handlers-${++users}`;
    const client = await open(userId);
    const connectionId = client.received[0]!.data.connection_id as string;
    const requested = firstValueFrom(service.uploadCancelRequested$.pipe(take(1), timeout(3000)));
    const ack = await client.request({
      type: 'upload.cancel',
      data: { upload_id: 'upl-9' },
      id: 'cancel-1',
    });
    assert.equal(ack.type, 'upload.cancel.acknowledged');
    assert.equal(ack.in_reply_to, 'cancel-1');
    assert.deepEqual(ack.data, { upload_id: 'upl-9' });
    const request: UploadCancelRequest = await requested;
    assert.deepEqual(request, { userId, connectionId, uploadId: 'upl-9' });
    client.close();
  });

  it('refuses upload.cancel without a string upload_id', async () => {
    const client = await open();
    const seen: UploadCancelRequest[] = [];
    const subscription = service.uploadCancelRequested$.subscribe((r) => seen.push(r));
    try {
      for (const data of [{}, { upload_id: '' }, { upload_id: 12 }, { uploadId: 'x' }]) {
        const reply = await client.request({ type: 'upload.cancel', data });
        assert.equal(reply.type, 'error');
        assert.equal(reply.data.code, 'INVALID_MESSAGE_FORMAT');
      }
      assert.deepEqual(seen, []);
    } finally {
      subscription.unsubscribe();
    }
    client.close();
  });
});

describe('subscription limit per connection', () => {
  let server: TestApp;
  before(async () => {
    server = await startTestApp({ realtime: { maxSubscriptionsPerConnection: 3 } });
  });
  after(() => server.close());

  it('accepts at most maxSubscriptionsPerConnection names', async () => {
    const client = await TestClient.open(server.wsUrl, server.token('limited'));
    const first = await client.request({
      type: 'subscribe',
      data: { events: ['upload.progress', 'upload.completed', 'upload.error', 'upload.cancelled'] },
    });
    assert.deepEqual(first.data, {
      events: ['upload.progress', 'upload.completed', 'upload.error'],
      invalid_events: ['upload.cancelled'],
    });
    // Names already held still fit; new ones do not.
    const second = await client.request({
      type: 'subscribe',
      data: { events: ['upload.progress', 'file.ready'] },
    });
    assert.deepEqual(second.data, { events: ['upload.progress'], invalid_events: ['file.ready'] });
    // Room frees after an unsubscribe.
    await client.request({ type: 'unsubscribe', data: { events: ['upload.error'] } });
    const third = await client.request({ type: 'subscribe', data: { events: ['file.ready'] } });
    assert.deepEqual(third.data, { events: ['file.ready'], invalid_events: [] });
    assert.equal(client.ofType('error').length, 0);
    client.close();
  });
});
