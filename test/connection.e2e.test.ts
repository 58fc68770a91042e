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

  it('answers ping with pong carrying pingId and in_reply_to', async () => {
    const client = await TestClient.open(server.wsUrl, server.token('u1'));
    const reply = await client.request({ type: 'ping', data: { pingId: 'abc' }, id: 'm1' });
    assert.equal(reply.type, 'pong');
    assert.equal(reply.data.pingId, 'abc');
    assert.equal(reply.in_reply_to, 'm1');
    client.close();
  });
});
