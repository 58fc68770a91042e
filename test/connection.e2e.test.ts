import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TestClient } from './support/test-client.js';

describe('connecting', () => {
  let server: TestApp;
  before(async () => {
    server = await startTestApp();
  });
  after(() => server.close());

  it('sends connection.established first, with the user and the limits', async () => {
    const client = await TestClient.open(server.wsUrl, server.token(42));
    const first = client.received[0]!;
    assert.equal(first.type, 'connection.established');
    assert.equal(first.data.user_id, '42');
    assert.match(first.id, /^[0-9a-f-]{36}$/);
    assert.equal(first.data.limits.max_message_size, 65536);
    assert.equal(first.data.limits.heartbeat_interval, 30);
    assert.ok(first.data.features.includes('subscribe'));
    client.close();
  });

  it('sends the same connection.established to every connection, field for field, with the user id escaped', async () => {
    const userId = 'quote " back \\ line \u2028 é';
    const clients = [
      await TestClient.open(server.wsUrl, server.token(userId)),
      await TestClient.open(server.wsUrl, server.token(userId)),
    ];
    const [a, b] = clients.map((client) => client.received[0]!);
    for (const established of [a!, b!]) {
      assert.deepEqual(Object.keys(established), ['type', 'data', 'timestamp', 'id']);
      assert.deepEqual(Object.keys(established.data), [
        'connection_id',
        'user_id',
        'server_time',
        'features',
        'limits',
      ]);
      assert.equal(established.data.user_id, userId);
      assert.match(established.data.connection_id, /^[0-9a-f-]{36}$/);
      assert.ok(!Number.isNaN(Date.parse(established.data.server_time)));
    }
    assert.notEqual(a!.data.connection_id, b!.data.connection_id);
    assert.deepEqual(a!.data.features, b!.data.features);
    assert.deepEqual(a!.data.limits, b!.data.limits);
    for (const client of clients) client.close();
  });

  it('answers ping with pong carrying pingId and in_reply_to', async () => {
    const client = await TestClient.open(server.wsUrl, server.token('u1'));
    const reply = await client.request({ type: 'ping', data: { pingId: 'abc' }, id: 'm1' });
    assert.equal(reply.type, 'pong');
    assert.equal(reply.data.pingId, 'abc');
    assert.equal(reply.in_reply_to, 'm1');
    client.close();
  });
});
