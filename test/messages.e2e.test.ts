import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import { assertAllEnvelopes, assertPingWorks, nestedMessage } from './support/wire.js';

describe('message envelope (PROTOCOL 3, 6)', () => {
  let server: TestApp;
  let users = 0;
  before(async () => {
    server = await startTestApp({ realtime: { maxMessageSize: 1024 } });
  });
  after(() => server.close());

  /** A fresh user per test, so that the per-user rate limit never carries over. */
  function open(): Promise<TestClient> {
    return TestClient.open(server.wsUrl, server.token(`envelope-${++users}`));
  }

  /** Sends `frame` raw, expects INVALID_MESSAGE_FORMAT, then checks the connection still works. */
  async function expectInvalidFormat(frame: string | Buffer, binary = false): Promise<void> {
    const client = await open();
    try {
      client.socket.send(frame, { binary });
      const error = await client.next('error');
      assert.equal(error.data.code, 'INVALID_MESSAGE_FORMAT');
      assert.equal(typeof error.data.message, 'string');
      assert.ok(error.data.message.length > 0);
      assert.equal(error.in_reply_to, undefined);
      await assertPingWorks(client);
      assert.equal(client.closeInfo, undefined, 'the connection stays open');
      assertAllEnvelopes(client);
    } finally {
      client.close();
    }
  }

  it('refuses text that is not JSON, and stays open', () => expectInvalidFormat('{"type": pi'));

  it('refuses a JSON array', () => expectInvalidFormat('[{"type":"ping"}]'));

  it('refuses a JSON string', () => expectInvalidFormat('"ping"'));

  it('refuses a JSON number and null', async () => {
    await expectInvalidFormat('42');
    await expectInvalidFormat('null');
  });

  it('refuses an object without type', () => expectInvalidFormat('{"data":{}}'));

  it('refuses a non-string type', async () => {
    await expectInvalidFormat('{"type":42,"data":{}}');
    await expectInvalidFormat('{"type":["ping"]}');
    await expectInvalidFormat('{"type":""}');
  });

  it('refuses data that is not an object', async () => {
    await expectInvalidFormat('{"type":"ping","data":[]}');
    await expectInvalidFormat('{"type":"ping","data":"x"}');
    await expectInvalidFormat('{"type":"ping","data":null}');
  });

  it('refuses an id that is not a string', async () => {
    await expectInvalidFormat('{"type":"ping","id":7}');
    await expectInvalidFormat('{"type":"ping","id":{"a":1}}');
  });

  // PROTOCOL 4: `{ pingId?: string }`. Null is not a string, and left out is not null: as a null
  // `id`, `timestamp` or `data` above, it is refused rather than echoed back.
  it('refuses a pingId that is not a string, null included, and stays open', async () => {
    const client = await open();
    for (const [n, pingId] of [null, 5, ['p'], { p: 1 }].entries()) {
      const reply = await client.request({ type: 'ping', data: { pingId }, id: `bad-ping-${n}` });
      assert.equal(reply.type, 'error', `pingId ${JSON.stringify(pingId)}`);
      assert.equal(reply.data.code, 'INVALID_MESSAGE_FORMAT');
      assert.match(reply.data.message, /pingId must be a string/);
    }
    const pong = await client.request({ type: 'ping', data: {}, id: 'no-ping-id' });
    assert.equal(pong.type, 'pong');
    assert.equal('pingId' in pong.data, false, 'left out, it is left out of the pong');
    assert.equal(client.closeInfo, undefined, 'the connection stays open');
    assertAllEnvelopes(client);
    client.close();
  });

  it('refuses an id with control characters', async () => {
    await expectInvalidFormat(JSON.stringify({ type: 'ping', id: 'a\nb' }));
    await expectInvalidFormat(JSON.stringify({ type: 'ping', id: 'a\u0000b' }));
  });

  it('refuses nesting of 33 levels', async () => {
    const frame = nestedMessage('ping', 33);
    assert.doesNotThrow(() => JSON.parse(frame));
    await expectInvalidFormat(frame);
  });

  it('accepts nesting of exactly 32 levels', async () => {
    const client = await open();
    const frame = nestedMessage('ping', 32);
    client.socket.send(frame);
    const reply = await client.next();
    assert.equal(reply.type, 'pong');
    assertAllEnvelopes(client);
    client.close();
  });

  it('answers a binary frame with INVALID_MESSAGE_FORMAT', () =>
    expectInvalidFormat(Buffer.from(JSON.stringify({ type: 'ping' })), true));

  it('answers an unknown type with INVALID_MESSAGE_TYPE in reply to its id', async () => {
    const client = await open();
    const reply = await client.request({ type: 'no.such.type', data: {}, id: 'unknown-1' });
    assert.equal(reply.type, 'error');
    assert.equal(reply.data.code, 'INVALID_MESSAGE_TYPE');
    assert.equal(reply.in_reply_to, 'unknown-1');
    await assertPingWorks(client);
    assertAllEnvelopes(client);
    client.close();
  });

  it('answers an invalid message that had a valid id in reply to that id', async () => {
    const client = await open();
    const reply = await client.request({ type: 'ping', data: [1, 2] as any, id: 'bad-data-1' });
    assert.equal(reply.type, 'error');
    assert.equal(reply.data.code, 'INVALID_MESSAGE_FORMAT');
    assert.equal(reply.in_reply_to, 'bad-data-1');
    client.close();
  });

  it('sends type, object data, ISO timestamp and a UUID v4 id on every message', async () => {
    const client = await open();
    await client.request({ type: 'ping', data: {} });
    await client.request({ type: 'subscribe', data: { events: ['upload.progress', 'nope'] } });
    await client.request({ type: 'unsubscribe', data: { events: ['upload.progress'] } });
    await client.request({ type: 'upload.cancel', data: { upload_id: 'u1' } });
    await client.request({ type: 'what' });
    client.send('not json');
    await eventually(() => client.ofType('error').length === 2, 3000, 'the second error');
    assert.equal(client.received.length, 7);
    assertAllEnvelopes(client);
    const ids = client.received.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, 'ids are unique per message');
    client.close();
  });

  it('sets in_reply_to only when the request had an id', async () => {
    const client = await open();
    client.send({ type: 'ping', data: { pingId: 'no-id' } });
    const pong = await client.next('pong');
    assert.equal(pong.data.pingId, 'no-id');
    assert.equal('in_reply_to' in pong, false);
    client.send({ type: 'nope' });
    const error = await client.next('error');
    assert.equal(error.data.code, 'INVALID_MESSAGE_TYPE');
    assert.equal('in_reply_to' in error, false);
    const withId = await client.request({ type: 'ping', data: {}, id: 'with-id' });
    assert.equal(withId.in_reply_to, 'with-id');
    const established = client.received[0]!;
    assert.equal('in_reply_to' in established, false);
    client.close();
  });

  it('ignores unknown extra fields, at the top level and in data', async () => {
    const client = await open();
    const pong = await client.request({
      type: 'ping',
      data: { pingId: 'x1', extra: { deep: true }, more: [1] },
      id: 'extra-1',
      timestamp: '2025-01-08T10:30:00Z',
      whatever: 'ignored',
    } as any);
    assert.equal(pong.type, 'pong');
    assert.equal(pong.data.pingId, 'x1');
    const ack = await client.request({
      type: 'subscribe',
      data: { events: ['review.updated'], filter: 'x' },
      id: 'extra-2',
    });
    assert.equal(ack.type, 'subscription.acknowledged');
    assert.deepEqual(ack.data.events, ['review.updated']);
    assertAllEnvelopes(client);
    client.close();
  });

  it('closes with 1009 "Message too big" on a message over maxMessageSize', async () => {
    const client = await open();
    client.send({ type: 'ping', data: { pingId: 'x'.repeat(2000) } });
    const closed = await client.waitClose();
    assert.equal(closed.code, 1009);
    assert.equal(closed.reason, 'Message too big');
    client.close();
  });

  it('accepts a message of exactly maxMessageSize', async () => {
    const client = await open();
    // pingId is at most 128 characters: pad with an ignored field instead.
    const empty = JSON.stringify({ type: 'ping', data: {}, pad: '' });
    const frame = JSON.stringify({ type: 'ping', data: {}, pad: 'p'.repeat(1024 - empty.length) });
    assert.equal(Buffer.byteLength(frame), 1024);
    client.socket.send(frame);
    assert.equal((await client.next()).type, 'pong');
    client.close();
  });

  it('closes with 1007 on a text frame that is not UTF-8', async () => {
    const client = await open();
    client.socket.send(Buffer.from([0xff, 0xfe]), { binary: false });
    const closed = await client.waitClose();
    assert.equal(closed.code, 1007);
    assert.equal(closed.reason, 'Invalid payload');
    client.close();
  });

  it('answers in the order the requests were sent', async () => {
    const client = await open();
    const kinds = [
      (id: string) => ({ type: 'ping', data: { pingId: id }, id }),
      (id: string) => ({ type: 'subscribe', data: { events: ['file.ready'] }, id }),
      (id: string) => ({ type: 'unsubscribe', data: { events: ['file.ready'] }, id }),
      (id: string) => ({ type: 'unknown.kind', data: {}, id }),
      (id: string) => ({ type: 'upload.cancel', data: { upload_id: id }, id }),
      (id: string) => ({ type: 'subscribe', data: { events: [] }, id }),
      (id: string) => ({ type: 'ping', data: [], id }),
    ];
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) {
      const id = `order-${i}`;
      sent.push(id);
      client.send(kinds[i % kinds.length]!(id));
    }
    // One heartbeat between them: it has no reply and must not disturb the order.
    client.send({ type: 'heartbeat', data: {}, id: 'hb' });
    const last = sent.at(-1)!;
    await client.request({ type: 'ping', data: {}, id: 'after' });
    const replies = client.received.filter((m) => m.in_reply_to !== undefined);
    // Each request has exactly one reply, in order; a subscribe has one acknowledgement only.
    const order = replies.map((m) => m.in_reply_to);
    assert.deepEqual(order, [...sent, 'after']);
    assert.ok(order.indexOf(last) < order.indexOf('after'));
    assertAllEnvelopes(client);
    client.close();
  });
});
