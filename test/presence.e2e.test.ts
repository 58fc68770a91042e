import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RealtimeService } from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';

describe('presence on one instance', () => {
  let server: TestApp;
  let service: RealtimeService;
  before(async () => {
    server = await startTestApp();
    service = server.app.get(RealtimeService);
  });
  after(() => server.close());

  async function watcher(): Promise<TestClient> {
    const client = await TestClient.open(server.wsUrl, server.token('watcher'));
    const ack = await client.request({
      type: 'subscribe',
      data: { events: ['user.status_changed'] },
    });
    assert.deepEqual(ack.data.events, ['user.status_changed']);
    return client;
  }

  function statusesOf(client: TestClient, userId: string): string[] {
    return client
      .ofType('user.status_changed')
      .filter((m) => m.data.user_id === userId)
      .map((m) => m.data.status);
  }

  it('announces online at the first connection and offline after the last, once each', async () => {
    const watch = await watcher();
    const first = await TestClient.open(server.wsUrl, server.token('carol'));
    await eventually(() => statusesOf(watch, 'carol').length === 1, 3000, 'online announced');
    const second = await TestClient.open(server.wsUrl, server.token('carol'));
    assert.equal(await service.isUserConnected('carol'), true);
    first.close();
    await eventually(async () => (await service.getConnectedUsers()).includes('carol'), 3000);
    second.close();
    await eventually(() => statusesOf(watch, 'carol').length === 2, 3000, 'offline announced');
    // A ping round trip after the last close: nothing else about carol is on its way.
    await watch.request({ type: 'ping' });
    assert.deepEqual(statusesOf(watch, 'carol'), ['online', 'offline']);
    assert.equal(await service.isUserConnected('carol'), false);
    watch.close();
  });

  it('does not announce a user who stays connected through an eviction', async () => {
    const watch = await watcher();
    const clients = [];
    for (let i = 0; i < 4; i++)
      clients.push(await TestClient.open(server.wsUrl, server.token('dave')));
    assert.equal((await clients[0]!.waitClose()).code, 4008, 'the oldest is evicted past 3');
    await watch.request({ type: 'ping' });
    assert.deepEqual(statusesOf(watch, 'dave'), ['online']);
    for (const client of clients) client.close();
    await eventually(() => statusesOf(watch, 'dave').length === 2, 3000, 'offline announced');
    assert.deepEqual(statusesOf(watch, 'dave'), ['online', 'offline']);
    watch.close();
  });
});
