import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { RealtimeService } from '../src/realtime/index.js';
import { RealtimeEvents } from '../src/realtime/realtime-events.js';
import { MessageHistory } from '../src/realtime/recovery/message-history.js';
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

describe('presence and rooms through a replacement (maxConnectionsPerUser 1)', () => {
  let server: TestApp;
  let service: RealtimeService;
  before(async () => {
    server = await startTestApp({ realtime: { maxConnectionsPerUser: 1 } });
    service = server.app.get(RealtimeService);
  });
  after(() => server.close());

  it('keeps the user online and in their rooms when a new connection replaces the only one', async () => {
    const watch = await TestClient.open(server.wsUrl, server.token('watcher'));
    await watch.request({ type: 'subscribe', data: { events: ['user.status_changed'] } });
    const first = await TestClient.open(server.wsUrl, server.token('erin'));
    assert.equal(await service.joinRoom('erin-room', { userId: 'erin' }), 1);
    const second = await TestClient.open(server.wsUrl, server.token('erin'));
    assert.equal((await first.waitClose()).code, 4008);
    await watch.request({ type: 'ping' });
    const statuses = watch
      .ofType('user.status_changed')
      .filter((m) => m.data.user_id === 'erin')
      .map((m) => m.data.status);
    assert.deepEqual(statuses, ['online'], 'no offline/online flicker');
    assert.deepEqual((await service.getRoomMembers('erin-room')).userIds, ['erin']);
    assert.equal(await service.sendToRoom('erin-room', 'room.note', { n: 1 }), 1);
    assert.deepEqual((await second.next('room.note')).data, { n: 1 });
    second.close();
    watch.close();
  });
});

describe('presence nobody has watched yet (one instance)', () => {
  const STREAM = 'event:user.status_changed';
  let server: TestApp;
  before(async () => {
    server = await startTestApp();
  });
  after(() => server.close());

  const open = (userId: string) => TestClient.open(server.wsUrl, server.token(userId));

  async function subscribed(userId: string): Promise<TestClient> {
    const client = await open(userId);
    await client.request({ type: 'subscribe', data: { events: ['user.status_changed'] } });
    return client;
  }

  /** The status changes the history keeps, as `user:status`. */
  async function kept(): Promise<string[]> {
    const history = server.app.get(MessageHistory, { strict: false });
    const { epoch } = await history.readAfter(STREAM, '0', '', 1);
    const read = await history.readAfter(STREAM, '0', epoch, 100);
    return read.entries.map((entry) => {
      const { data } = JSON.parse(entry.frame) as { data: { user_id: string; status: string } };
      return `${data.user_id}:${data.status}`;
    });
  }

  async function closed(client: TestClient): Promise<void> {
    client.close();
    await eventually(() => client.closeInfo !== undefined, 3000, 'closed');
  }

  it('keeps no status change before a first subscriber, then announces and keeps every one', async () => {
    // Nobody can receive these, now or by resuming: no client holds a position in the stream.
    await closed(await open('early'));
    const stays = await open('stays');
    assert.deepEqual(await kept(), []);
    // Not even followed: no connection.opened or .closed event is built for anybody.
    const events = server.app.get(RealtimeEvents, { strict: false });
    assert.equal(events.opened.observed, false);
    assert.equal(events.closed.observed, false);

    const watch = await subscribed('watcher');
    assert.equal(events.opened.observed, true);
    assert.equal(events.closed.observed, true);
    await closed(stays); // connected before anyone watched: its offline is announced
    await closed(await open('late'));
    await eventually(() => statusesOf(watch).length === 3, 3000, 'three announced');
    assert.deepEqual(statusesOf(watch), ['stays:offline', 'late:online', 'late:offline']);
    assert.deepEqual(await kept(), ['stays:offline', 'late:online', 'late:offline']);
    watch.close();
  });

  it('keeps announcing once the watchers left, so that one resuming misses nothing', async () => {
    const watch = await subscribed('watcher-2');
    await closed(await open('first'));
    await eventually(() => statusesOf(watch).includes('first:offline'), 3000, 'first announced');
    const last = watch.ofType('user.status_changed').at(-1)!;
    await closed(watch); // no subscriber left on this instance

    await closed(await open('meanwhile'));
    const again = await subscribed('watcher-2');
    const result = await again.request({
      type: 'resume',
      data: { positions: [{ stream: last.stream, offset: last.offset, epoch: last.epoch }] },
    });
    assert.equal(result.data.recovered, true);
    // Replayed: its own departure and all of `meanwhile`; then, live, its own return.
    assert.deepEqual(statusesOf(again), [
      'watcher-2:offline',
      'meanwhile:online',
      'meanwhile:offline',
      'watcher-2:online',
    ]);
    again.close();
  });

  function statusesOf(client: TestClient): string[] {
    return client
      .ofType('user.status_changed')
      .map((m) => `${String(m.data.user_id)}:${String(m.data.status)}`);
  }
});

/** A host that ends connections inside its own `connectionOpened$` observer. */
@Injectable()
class CloseAtOpen implements OnModuleDestroy {
  /** Users whose new connections are closed at once. */
  readonly refuse = new Set<string>();
  /** Users whose previous connection is closed when a new one opens. */
  readonly replace = new Set<string>();
  private readonly last = new Map<string, string>();
  private readonly subscription: Subscription;

  constructor(service: RealtimeService) {
    // In the constructor, before any onModuleInit: this observer runs ahead of presence's own.
    this.subscription = service.connectionOpened$.subscribe(({ userId, connectionId }) => {
      const previous = this.last.get(userId);
      this.last.set(userId, connectionId);
      if (this.refuse.has(userId)) service.disconnectConnection(connectionId);
      else if (this.replace.has(userId) && previous) service.disconnectConnection(previous);
    });
  }

  onModuleDestroy(): void {
    this.subscription.unsubscribe();
  }
}

describe('presence of connections a host closes as they open (one instance)', () => {
  let server: TestApp;
  let host: CloseAtOpen;
  let watch: TestClient;
  before(async () => {
    server = await startTestApp({ providers: [CloseAtOpen] });
    host = server.app.get(CloseAtOpen);
    watch = await TestClient.open(server.wsUrl, server.token('watcher'));
    await watch.request({ type: 'subscribe', data: { events: ['user.status_changed'] } });
  });
  after(async () => {
    watch.close();
    await server.close();
  });

  function statuses(): string[] {
    return watch
      .ofType('user.status_changed')
      .map((m) => `${String(m.data.user_id)}:${String(m.data.status)}`);
  }

  /** A user coming and going after the case: what the case announced is in by then. */
  async function marker(userId: string): Promise<void> {
    const client = await TestClient.open(server.wsUrl, server.token(userId));
    await eventually(() => statuses().includes(`${userId}:online`), 3000, 'marker online');
    client.close();
    await eventually(() => statuses().includes(`${userId}:offline`), 3000, 'marker offline');
  }

  it('announces nothing for a user whose only connection closed in the observer', async () => {
    host.refuse.add('ghost');
    const ghost = TestClient.connect(server.wsUrl, server.token('ghost'));
    assert.equal((await ghost.waitClose()).code, 4004);
    await marker('marker-1');
    assert.deepEqual(statuses(), ['marker-1:online', 'marker-1:offline'], 'no ghost:offline');
  });

  it('announces a user once while a new connection replaces the old one in the observer', async () => {
    host.replace.add('swap');
    const first = await TestClient.open(server.wsUrl, server.token('swap'));
    await eventually(() => statuses().includes('swap:online'), 3000, 'swap online');
    const second = await TestClient.open(server.wsUrl, server.token('swap'));
    assert.equal((await first.waitClose()).code, 4004);
    await marker('marker-2');
    second.close();
    await eventually(() => statuses().includes('swap:offline'), 3000, 'swap offline');
    await watch.request({ type: 'ping' });
    assert.deepEqual(
      statuses().filter((s) => s.startsWith('swap:')),
      ['swap:online', 'swap:offline'],
      'never online twice: the user stayed connected throughout',
    );
  });
});
