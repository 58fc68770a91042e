import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { firstValueFrom, filter, take, timeout } from 'rxjs';
import {
  type ConnectionClosedEvent,
  ConnectionRegistry,
  type ConnectionOpenedEvent,
  type InboundMessageEvent,
  RealtimeSendError,
  RealtimeService,
  RoomFullError,
} from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import {
  assertAllEnvelopes,
  assertNotReceived as notReceived,
  ISO_UTC,
  receivedUpToMarker,
  UUID_V4,
} from './support/wire.js';
import { invalidFormat } from './support/send-errors.js';

const MAX_ROOM_SIZE = 3;

describe('RealtimeService', () => {
  let server: TestApp;
  let service: RealtimeService;
  let users = 0;
  const open: TestClient[] = [];
  before(async () => {
    server = await startTestApp({
      realtime: {
        maxRoomSize: MAX_ROOM_SIZE,
        // Lets the name-limit tests subscribe to names of any length (the DTO still bounds them).
        subscriptionAuthorizer: (name) => name.startsWith('long.'),
      },
    });
    service = server.app.get(RealtimeService);
  });
  after(async () => {
    for (const client of open) client.close();
    await server.close();
  });

  function user(): string {
    return `svc-${++users}`;
  }

  async function connect(userId: string): Promise<TestClient> {
    const client = await TestClient.open(server.wsUrl, server.token(userId));
    open.push(client);
    return client;
  }

  function connectionIdOf(client: TestClient): string {
    return client.received[0]!.data.connection_id as string;
  }

  function closeAll(...clients: TestClient[]): void {
    for (const client of clients) client.close();
  }

  /** Asserts that `client` (of `userId`) never received a message of `type`. */
  function assertNotReceived(
    client: TestClient,
    userId: string,
    type: string,
    where?: (data: any) => boolean,
  ): Promise<void> {
    return notReceived(service, client, userId, type, where);
  }

  it('sendToUser reaches every connection of the user and resolves to the count', async () => {
    const alice = user();
    const a1 = await connect(alice);
    const a2 = await connect(alice);
    const otherId = user();
    const other = await connect(otherId);
    assert.equal(await service.sendToUser(alice, 'note.created', { n: 1 }), 2);
    const [m1, m2] = [await a1.next('note.created'), await a2.next('note.created')];
    assert.deepEqual(m1.data, { n: 1 });
    assert.equal(m1.id, m2.id, 'every recipient sees the same id');
    assert.equal('in_reply_to' in m1, false);
    await assertNotReceived(other, otherId, 'note.created');
    assert.equal(await service.sendToUser('nobody-here', 'note.created', {}), 0);
    assertAllEnvelopes(a1);
    closeAll(a1, a2, other);
  });

  it('sendToUsers reaches every connection of each user, once', async () => {
    const [a, b, c] = [user(), user(), user()];
    const a1 = await connect(a);
    const a2 = await connect(a);
    const b1 = await connect(b);
    const c1 = await connect(c);
    assert.equal(await service.sendToUsers([a, b, a, 'nobody'], 'multi', { x: 1 }), 3);
    const ids = new Set<string>();
    for (const client of [a1, a2, b1]) ids.add((await client.next('multi')).id);
    assert.equal(ids.size, 1);
    await assertNotReceived(c1, c, 'multi');
    const toA1 = await receivedUpToMarker(service, a1, a);
    assert.equal(toA1.filter((m) => m.type === 'multi').length, 1, 'a repeated user gets it once');
    closeAll(a1, a2, b1, c1);
  });

  it('sendToEvent reaches only the subscribers of the event', async () => {
    const [s, n] = [user(), user()];
    const subscriber = await connect(s);
    const bystander = await connect(n);
    await subscriber.request({ type: 'subscribe', data: { events: ['file.processing'] } });
    await bystander.request({ type: 'subscribe', data: { events: ['file.ready'] } });
    assert.equal(await service.sendToEvent('file.processing', { file_id: 'f1' }), 1);
    const message = await subscriber.next('file.processing');
    assert.deepEqual(message.data, { file_id: 'f1' });
    await assertNotReceived(bystander, n, 'file.processing');
    closeAll(subscriber, bystander);
  });

  it('sendToRoom reaches a user joined by userId, on every connection, later ones too', async () => {
    const room = 'room-user';
    const u = user();
    const first = await connect(u);
    const second = await connect(u);
    const outsiderId = user();
    const outsider = await connect(outsiderId);
    assert.equal(await service.joinRoom(room, { userId: u }), 2);
    assert.equal(await service.getRoomSize(room), 2);
    assert.deepEqual((await service.getRoomMembers(room)).userIds, [u]);
    assert.deepEqual(
      (await service.getRoomMembers(room)).connectionIds.sort(),
      [connectionIdOf(first), connectionIdOf(second)].sort(),
    );
    assert.equal(await service.sendToRoom(room, 'room.msg', { seq: 1 }), 2);
    assert.equal((await first.next('room.msg')).data.seq, 1);
    assert.equal((await second.next('room.msg')).data.seq, 1);

    const later = await connect(u);
    assert.equal(await service.getRoomSize(room), 3);
    assert.equal(await service.sendToRoom(room, 'room.msg', { seq: 2 }), 3);
    for (const client of [first, second, later]) {
      assert.equal((await client.next('room.msg')).data.seq, 2);
    }
    await assertNotReceived(outsider, outsiderId, 'room.msg');
    assert.equal(await service.leaveRoom(room, { userId: u }), 3);
    closeAll(first, second, later, outsider);
  });

  it('joinRoom by connectionId adds that connection only', async () => {
    const room = 'room-conn';
    const u = user();
    const chosen = await connect(u);
    const sibling = await connect(u);
    assert.equal(await service.joinRoom(room, { connectionId: connectionIdOf(chosen) }), 1);
    assert.equal(await service.joinRoom(room, { connectionId: connectionIdOf(chosen) }), 0);
    assert.equal(await service.joinRoom(room, { connectionId: 'no-such-connection' }), 0);
    assert.deepEqual(await service.getRoomMembers(room), {
      connectionIds: [connectionIdOf(chosen)],
      userIds: [u],
    });
    assert.equal(await service.sendToRoom(room, 'room.msg', { only: true }), 1);
    assert.equal((await chosen.next('room.msg')).data.only, true);
    await assertNotReceived(sibling, u, 'room.msg');
    closeAll(chosen, sibling);
    await eventually(
      async () => (await service.getRoomSize(room)) === 0,
      3000,
      'the room empties on close',
    );
  });

  it('leaveRoom removes a connection or a user, who then gets nothing', async () => {
    const room = 'room-leave';
    const [u, v] = [user(), user()];
    const u1 = await connect(u);
    const u2 = await connect(u);
    const v1 = await connect(v);
    await service.joinRoom(room, { userId: u });
    await service.joinRoom(room, { connectionId: connectionIdOf(v1) });
    assert.equal(await service.getRoomSize(room), 3);

    assert.equal(await service.leaveRoom(room, { connectionId: connectionIdOf(v1) }), 1);
    assert.equal(await service.leaveRoom(room, { connectionId: connectionIdOf(v1) }), 0);
    assert.equal(await service.getRoomSize(room), 2);
    assert.equal(await service.sendToRoom(room, 'room.msg', { step: 1 }), 2);
    await u1.next('room.msg');
    await u2.next('room.msg');
    await assertNotReceived(v1, v, 'room.msg');

    assert.equal(await service.leaveRoom(room, { userId: u }), 2);
    assert.equal(await service.getRoomSize(room), 0);
    assert.deepEqual(await service.getRoomMembers(room), { connectionIds: [], userIds: [] });
    assert.equal(await service.sendToRoom(room, 'room.msg', { step: 2 }), 0);
    // A later connection of the user does not rejoin a room the user left.
    const u3 = await connect(u);
    assert.equal(await service.getRoomSize(room), 0);
    await assertNotReceived(u1, u, 'room.msg', (data) => data.step === 2);
    await assertNotReceived(u3, u, 'room.msg');
    closeAll(u1, u2, u3, v1);
  });

  it('refuses to grow a room past maxRoomSize with RoomFullError', async () => {
    const room = 'room-full';
    const clients: TestClient[] = [];
    for (let i = 0; i < MAX_ROOM_SIZE; i++) clients.push(await connect(user()));
    for (const client of clients) {
      await service.joinRoom(room, { connectionId: connectionIdOf(client) });
    }
    assert.equal(await service.getRoomSize(room), MAX_ROOM_SIZE);
    const extraId = user();
    const extra = await connect(extraId);
    await assert.rejects(
      service.joinRoom(room, { connectionId: connectionIdOf(extra) }),
      RoomFullError,
    );
    await assert.rejects(service.joinRoom(room, { userId: extraId }), RoomFullError);
    assert.equal(await service.getRoomSize(room), MAX_ROOM_SIZE);
    assert.equal(await service.sendToRoom(room, 'room.msg', {}), MAX_ROOM_SIZE);
    await assertNotReceived(extra, extraId, 'room.msg');
    closeAll(...clients, extra);
  });

  it('never lets a later connection of a joined user grow a room past maxRoomSize', async () => {
    const room = 'room-full-later';
    const joinedId = user();
    const joined = await connect(joinedId);
    await service.joinRoom(room, { userId: joinedId });
    const others: TestClient[] = [];
    for (let i = 1; i < MAX_ROOM_SIZE; i++) {
      const client = await connect(user());
      others.push(client);
      await service.joinRoom(room, { connectionId: connectionIdOf(client) });
    }
    assert.equal(await service.getRoomSize(room), MAX_ROOM_SIZE);
    const later = await connect(joinedId);
    assert.ok(
      (await service.getRoomSize(room)) <= MAX_ROOM_SIZE,
      'the room stays within its bound',
    );
    assert.equal(await service.sendToRoom(room, 'room.msg', {}), MAX_ROOM_SIZE);
    closeAll(joined, later, ...others);
  });

  it('broadcast reaches everyone, or everyone but one user', async () => {
    const [a, b] = [user(), user()];
    const a1 = await connect(a);
    const a2 = await connect(a);
    const b1 = await connect(b);
    // Connections of earlier tests end asynchronously: wait until only these remain.
    await eventually(
      async () => (await service.getConnectedUsers()).sort().join() === [a, b].sort().join(),
      3000,
      'only a and b to be connected',
    );
    assert.equal(await service.broadcast('news', { headline: 'hi' }), 3);
    const received = [await a1.next('news'), await a2.next('news'), await b1.next('news')];
    assert.equal(new Set(received.map((m) => m.id)).size, 1, 'one id for every recipient');
    assert.match(received[0]!.id, UUID_V4);

    const reached = await service.broadcast('news', { headline: 'not for a' }, { exceptUserId: a });
    assert.equal(reached, 1);
    assert.equal((await b1.next('news')).data.headline, 'not for a');
    for (const client of [a1, a2]) {
      await assertNotReceived(client, a, 'news', (data) => data.headline === 'not for a');
    }
    closeAll(a1, a2, b1);
  });

  it('sendToConnection reaches that connection only', async () => {
    const u = user();
    const target = await connect(u);
    const sibling = await connect(u);
    assert.equal(await service.sendToConnection(connectionIdOf(target), 'direct', { a: 1 }), 1);
    assert.deepEqual((await target.next('direct')).data, { a: 1 });
    await assertNotReceived(sibling, u, 'direct');
    assert.equal(await service.sendToConnection('no-such-connection', 'direct', {}), 0);
    closeAll(target, sibling);
  });

  it('tells who is connected', async () => {
    const u = user();
    assert.equal(await service.isUserConnected(u), false);
    assert.equal((await service.getConnectedUsers()).includes(u), false);
    const first = await connect(u);
    const second = await connect(u);
    assert.equal(await service.isUserConnected(u), true);
    assert.equal((await service.getConnectedUsers()).filter((id) => id === u).length, 1);
    const registry = server.app.get(ConnectionRegistry);
    first.close();
    await eventually(() => registry.ofUser(u).size === 1, 3000, 'the first connection to end');
    assert.equal(await service.isUserConnected(u), true);
    second.close();
    await eventually(
      async () => !(await service.isUserConnected(u)),
      3000,
      'the user to disappear',
    );
    assert.equal((await service.getConnectedUsers()).includes(u), false);
  });

  it('disconnectConnection closes one connection with 4004', async () => {
    const u = user();
    const target = await connect(u);
    const sibling = await connect(u);
    assert.equal(await service.disconnectConnection(connectionIdOf(target)), true);
    const closed = await target.waitClose();
    assert.equal(closed.code, 4004);
    assert.equal(closed.reason, 'Disconnected by admin');
    assert.equal(await service.disconnectConnection(connectionIdOf(target)), false);
    assert.equal(await service.disconnectConnection('no-such-connection'), false);
    assert.equal(sibling.closeInfo, undefined);
    assert.equal(await service.sendToUser(u, 'still', {}), 1);
    await sibling.next('still');
    closeAll(target, sibling);
  });

  it('disconnectUser closes every connection of the user with 4004', async () => {
    const [u, v] = [user(), user()];
    const u1 = await connect(u);
    const u2 = await connect(u);
    const v1 = await connect(v);
    assert.equal(await service.disconnectUser(u), 2);
    for (const client of [u1, u2]) {
      const closed = await client.waitClose();
      assert.equal(closed.code, 4004);
    }
    assert.equal(await service.isUserConnected(u), false);
    assert.equal(await service.disconnectUser(u), 0);
    assert.equal(v1.closeInfo, undefined);
    closeAll(u1, u2, v1);
  });

  it('rejects a send over maxMessageSize with MESSAGE_TOO_LARGE, and sends nothing', async () => {
    const u = user();
    const client = await connect(u);
    const big = { blob: 'x'.repeat(64 * 1024) };
    for (const send of [
      () => service.sendToUser(u, 'big', big),
      () => service.broadcast('big', big),
      () => service.sendToConnection(connectionIdOf(client), 'big', big),
    ]) {
      await assert.rejects(send(), (error: unknown) => {
        assert.ok(error instanceof RealtimeSendError);
        assert.equal(error.code, 'MESSAGE_TOO_LARGE');
        return true;
      });
    }
    await assertNotReceived(client, u, 'big');
    closeAll(client);
  });

  it('rejects an invalid type or non-object data with INVALID_MESSAGE_FORMAT', async () => {
    const u = user();
    const client = await connect(u);
    const bad: Array<() => Promise<number>> = [
      () => service.sendToUser(u, '', {}),
      () => service.sendToUser(u, 42 as any, {}),
      () => service.sendToUser(u, 't'.repeat(101), {}),
      () => service.sendToUser(u, 'ok.type', [] as any),
      () => service.sendToUser(u, 'ok.type', null as any),
      () => service.sendToUser(u, 'ok.type', 'text' as any),
      () => service.broadcast('ok.type', 7 as any),
      () => service.sendToEvent('', {}),
      // Not encodable as JSON: a plain TypeError from JSON.stringify otherwise.
      () => service.sendToUser(u, 'ok.type', { n: 1n } as any),
      () => {
        const circular: Record<string, unknown> = {};
        circular.self = circular;
        return service.sendToUser(u, 'ok.type', circular);
      },
      // Encoded as something other than the object they are: {} or a string.
      () => service.sendToUser(u, 'ok.type', new Map([['a', 1]]) as any),
      () => service.sendToUser(u, 'ok.type', new Set([1]) as any),
      () => service.sendToUser(u, 'ok.type', new Date(0) as any),
    ];
    for (const [i, send] of bad.entries()) {
      await assert.rejects(send(), (error: unknown) => {
        assert.ok(error instanceof RealtimeSendError, `case ${i}`);
        assert.equal(error.code, 'INVALID_MESSAGE_FORMAT', `case ${i}`);
        return true;
      });
    }
    const seen = await receivedUpToMarker(service, client, u);
    assert.deepEqual(
      seen.map((m) => m.type),
      ['connection.established'],
    );
    closeAll(client);
  });

  it('counts type in UTF-16 code units, as the wire protocol does', async () => {
    const u = user();
    const client = await connect(u);
    // 😀 is two UTF-16 code units: 50 of them are the longest type.
    const longest = '😀'.repeat(50);
    assert.equal(await service.sendToUser(u, longest, { n: 1 }), 1);
    assert.equal((await client.next(longest)).data.n, 1);
    for (const type of [`${longest}x`, '❤️'.repeat(51)]) {
      await assert.rejects(service.sendToUser(u, type, {}), (error: unknown) => {
        assert.ok(error instanceof RealtimeSendError, type);
        assert.equal(error.code, 'INVALID_MESSAGE_FORMAT');
        assert.match(error.message, /^type must be a string of 1 to 100 UTF-16 code units/);
        return true;
      });
    }
    closeAll(client);
  });

  it('refuses room names outside 1 to 200 UTF-16 code units on every room method', async () => {
    const u = user();
    const client = await connect(u);
    const connectionId = connectionIdOf(client);
    // 200 code units, 100 characters: the longest room name.
    const longest = '😀'.repeat(100);
    assert.equal(await service.joinRoom(longest, { userId: u }), 1);
    assert.equal(await service.getRoomSize(longest), 1);
    assert.equal(await service.sendToRoom(longest, 'room.msg', { longest: true }), 1);
    assert.equal((await client.next('room.msg')).data.longest, true);
    assert.equal(await service.leaveRoom(longest, { userId: u }), 1);

    const badRoom = (error: unknown): boolean => {
      assert.ok(error instanceof RealtimeSendError);
      assert.equal(error.code, 'INVALID_MESSAGE_FORMAT');
      assert.match(error.message, /^room must be a string of 1 to 200 UTF-16 code units/);
      return true;
    };
    const bad = ['', 'r'.repeat(201), `${longest}x`, '❤️'.repeat(101), 42 as unknown as string];
    for (const room of bad) {
      await assert.rejects(service.joinRoom(room, { userId: u }), badRoom);
      await assert.rejects(service.joinRoom(room, { connectionId }), badRoom);
      await assert.rejects(service.leaveRoom(room, { userId: u }), badRoom);
      await assert.rejects(service.leaveRoom(room, { connectionId }), badRoom);
      await assert.rejects(service.sendToRoom(room, 'room.msg', {}), badRoom);
      await assert.rejects(service.publish('room.msg', {}, { kind: 'room', room }), badRoom);
      await assert.rejects(service.getRoomMembers(room), badRoom);
      await assert.rejects(service.getRoomSize(room), badRoom);
    }
    const rooms = Object.keys(server.app.get(ConnectionRegistry).roomCounts());
    assert.deepEqual(
      rooms.filter((room) => room.length === 0 || room.length > 200),
      [],
    );
    await assertNotReceived(client, u, 'room.msg', (data) => data.longest !== true);
    closeAll(client);
  });

  it('bounds event targets as subscribe bounds names: 1 to 200 printable ASCII', async () => {
    const u = user();
    const client = await connect(u);
    // 200 characters: the longest name a client can subscribe to, so the longest event target.
    const longest = `long.${'e'.repeat(195)}`;
    const ack = await client.request({ type: 'subscribe', data: { events: [longest] } });
    assert.deepEqual(ack.data.events, [longest]);
    const refused = await client.request({
      type: 'subscribe',
      data: { events: [`${longest}e`] },
    });
    assert.equal(refused.data.code, 'INVALID_MESSAGE_FORMAT', 'subscribe refuses 201 too');
    assert.equal(await service.publish('long.msg', { n: 1 }, { kind: 'event', event: longest }), 1);
    assert.equal((await client.next('long.msg')).data.n, 1);

    const badEvent = invalidFormat(/^event must be 1 to 200 printable ASCII characters, no spaces/);
    // Names no subscription can have: they would reach nobody, silently.
    const bad = ['', `${longest}e`, 'long.a b', 'long.café', 'long.a\nb', 42 as unknown as string];
    for (const event of bad) {
      await assert.rejects(service.publish('long.msg', {}, { kind: 'event', event }), badEvent);
      await assert.rejects(
        service.publishMessage('long.msg', {}, { kind: 'event', event }),
        badEvent,
      );
      await assert.rejects(service.sendToEvent(event, {}), badEvent);
    }
    await assertNotReceived(client, u, 'long.msg', (data) => data.n !== 1);
    closeAll(client);
  });

  it('sendToEvent refuses an event name longer than a type (100) with a clear error', async () => {
    const client = await connect(user());
    const longestType = `long.${'t'.repeat(95)}`;
    const over = `${longestType}t`;
    await client.request({ type: 'subscribe', data: { events: [longestType, over] } });
    assert.equal(await service.sendToEvent(longestType, { n: 1 }), 1);
    assert.equal((await client.next(longestType)).data.n, 1);
    await assert.rejects(
      service.sendToEvent(over, { n: 2 }),
      invalidFormat(/^sendToEvent sends the event name as the type: at most 100 UTF-16 code units/),
    );
    // Still reachable, with a type of its own.
    assert.equal(await service.publish('long.short', { n: 3 }, { kind: 'event', event: over }), 1);
    assert.equal((await client.next('long.short')).data.n, 3);
    assert.equal(client.ofType(over).length, 0);
    closeAll(client);
  });

  it('bounds user ids as token verification bounds sub: 1 to 256 UTF-16 code units', async () => {
    // 256 code units, the longest sub a token may carry: 😀 counts 2.
    for (const longest of ['u'.repeat(256), '😀'.repeat(128)]) {
      const client = await connect(longest);
      assert.equal(await service.sendToUser(longest, 'long.user', { n: 1 }), 1);
      assert.equal((await client.next('long.user')).data.n, 1);
      assert.equal(await service.joinRoom('room-long-user', { userId: longest }), 1);
      assert.equal(await service.leaveRoom('room-long-user', { userId: longest }), 1);
      assert.equal(await service.isUserConnected(longest), true);
      assert.equal(await service.disconnectUser(longest), 1);
      await client.waitClose();
    }
    // One more, and the token is refused at connect...
    const refused = TestClient.connect(server.wsUrl, server.token('u'.repeat(257)));
    open.push(refused);
    assert.equal((await refused.waitClose()).code, 4001);

    // ...and every service method that names a user refuses it: no user can have that id.
    const badUser = invalidFormat(
      /^(user id|userIds\[1\]|exceptUserId) must be a string of 1 to 256 UTF-16 code units/,
    );
    const bad = ['', 'u'.repeat(257), `${'😀'.repeat(128)}x`, 42 as unknown as string];
    for (const userId of bad) {
      await assert.rejects(service.sendToUser(userId, 'long.user', {}), badUser);
      await assert.rejects(service.sendToUsers(['ok', userId], 'long.user', {}), badUser);
      await assert.rejects(
        service.publish('long.user', {}, { kind: 'users', userIds: [userId] }),
        badUser,
      );
      await assert.rejects(service.broadcast('long.user', {}, { exceptUserId: userId }), badUser);
      await assert.rejects(service.sendUploadProgress(userId, 'up1', 1), badUser);
      await assert.rejects(service.joinRoom('room-bad-user', { userId }), badUser);
      await assert.rejects(service.leaveRoom('room-bad-user', { userId }), badUser);
      await assert.rejects(service.isUserConnected(userId), badUser);
      await assert.rejects(service.disconnectUser(userId), badUser);
    }
  });

  it('refuses control characters and lone surrogates in room names and user ids', async () => {
    const u = user();
    const client = await connect(u);
    // Printable Unicode is fine: accents, spaces, an emoji (a surrogate pair).
    const printable = 'Zoë 😀 room';
    assert.equal(await service.joinRoom(printable, { userId: u }), 1);
    assert.equal(await service.sendToRoom(printable, 'room.ok', { n: 1 }), 1);
    assert.equal((await client.next('room.ok')).data.n, 1);
    assert.equal(await service.leaveRoom(printable, { userId: u }), 1);

    const badRoom = invalidFormat(/^room must not contain control characters or lone surrogates/);
    const badUser = invalidFormat(
      /^user id must not contain control characters or lone surrogates/,
    );
    const half = '😀'.slice(0, 1);
    const bad = [
      'a\u0000b',
      'a\nb',
      'tab\t',
      '\u001b[31m',
      'del\u007f',
      '\ud800',
      'x\udc00',
      `${half}x`,
    ];
    for (const name of bad) {
      await assert.rejects(service.joinRoom(name, { userId: u }), badRoom);
      await assert.rejects(service.leaveRoom(name, { userId: u }), badRoom);
      await assert.rejects(service.sendToRoom(name, 'room.bad', {}), badRoom);
      await assert.rejects(service.getRoomMembers(name), badRoom);
      await assert.rejects(service.sendToUser(name, 'room.bad', {}), badUser);
      await assert.rejects(service.joinRoom('room-ok', { userId: name }), badUser);
    }
    const rooms = Object.keys(server.app.get(ConnectionRegistry).roomCounts());
    assert.deepEqual(
      rooms.filter((room) => bad.includes(room)),
      [],
    );
    await assertNotReceived(client, u, 'room.bad');
    closeAll(client);
  });

  it('typed helpers send the data shapes of PROTOCOL section 5', async () => {
    const u = user();
    const client = await connect(u);
    await client.request({
      type: 'subscribe',
      data: {
        events: ['review.created', 'review.updated', 'review.deleted', 'user.status_changed'],
      },
    });
    const expectData = async (type: string, expected: Record<string, unknown>) => {
      const message = await client.next(type);
      const { timestamp, ...rest } = message.data;
      assert.match(timestamp, ISO_UTC, `${type} has an ISO timestamp`);
      assert.deepEqual(rest, expected, type);
    };
    assert.equal(await service.sendUploadProgress(u, 'up1', 42.5), 1);
    await expectData('upload.progress', { upload_id: 'up1', progress: 42.5 });
    await service.sendUploadProgress(u, 'up1', 150);
    await expectData('upload.progress', { upload_id: 'up1', progress: 100 });
    await service.sendUploadProgress(u, 'up1', -3);
    await expectData('upload.progress', { upload_id: 'up1', progress: 0 });
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      await assert.rejects(service.sendUploadProgress(u, 'up1', bad), {
        name: 'RealtimeSendError',
        code: 'INVALID_MESSAGE_FORMAT',
      });
    }
    await service.sendUploadCompleted(u, 'up1', { url: '/files/1' });
    await expectData('upload.completed', { upload_id: 'up1', result: { url: '/files/1' } });
    await service.sendUploadError(u, 'up2', 'disk full');
    await expectData('upload.error', { upload_id: 'up2', error: 'disk full' });
    await service.sendUploadCancelled(u, 'up3');
    await expectData('upload.cancelled', { upload_id: 'up3' });
    assert.equal(await service.sendReviewCreated('r1', { stars: 5 }), 1);
    await expectData('review.created', { review_id: 'r1', changes: { stars: 5 } });
    await service.sendReviewUpdated('r1');
    await expectData('review.updated', { review_id: 'r1' });
    await service.sendReviewDeleted('r1');
    await expectData('review.deleted', { review_id: 'r1' });
    await service.sendSystemNotification('hello', 'warning', u);
    await expectData('system.notification', { message: 'hello', level: 'warning' });
    await service.sendSystemNotification('to all');
    await expectData('system.notification', { message: 'to all', level: 'info' });
    const startsAt = new Date('2030-01-02T03:04:05.000Z');
    await service.sendSystemMaintenance('soon', startsAt);
    await expectData('system.maintenance', {
      message: 'soon',
      starts_at: '2030-01-02T03:04:05.000Z',
    });
    await service.sendSystemMaintenance('now');
    await expectData('system.maintenance', { message: 'now' });
    await service.sendUserStatusChanged('someone', 'away');
    // Other users' automatic online/offline announcements may come first: wait for this one.
    let status = await client.next('user.status_changed');
    for (let i = 0; i < 20 && status.data.user_id !== 'someone'; i++) {
      status = await client.next('user.status_changed');
    }
    const { timestamp: statusTime, ...statusRest } = status.data;
    assert.match(statusTime, ISO_UTC);
    assert.deepEqual(statusRest, { user_id: 'someone', status: 'away' });
    await service.sendFileProcessing(u, 'f1', 30);
    await expectData('file.processing', { file_id: 'f1', status: 'processing', progress: 30 });
    await service.sendFileProcessing(u, 'f2');
    await expectData('file.processing', { file_id: 'f2', status: 'processing' });
    await service.sendFileReady(u, 'f1');
    await expectData('file.ready', { file_id: 'f1', status: 'ready' });
    assertAllEnvelopes(client);
    closeAll(client);
  });

  it('streams connectionOpened$, messageReceived$ and connectionClosed$', async () => {
    const u = user();
    const opened = firstValueFrom(
      service.connectionOpened$.pipe(
        filter((e: ConnectionOpenedEvent) => e.userId === u),
        take(1),
        timeout(3000),
      ),
    );
    const client = await connect(u);
    const openEvent = await opened;
    assert.equal(openEvent.connectionId, connectionIdOf(client));
    assert.equal(openEvent.remoteAddress, '127.0.0.1');
    assert.ok(openEvent.connectedAt instanceof Date);

    const received = firstValueFrom(
      service.messageReceived$.pipe(
        filter((e: InboundMessageEvent) => e.userId === u),
        take(1),
        timeout(3000),
      ),
    );
    await client.request({ type: 'ping', data: { pingId: 'seen' }, id: 'm-1' });
    assert.deepEqual(await received, {
      connectionId: connectionIdOf(client),
      userId: u,
      type: 'ping',
      data: { pingId: 'seen' },
      id: 'm-1',
    });

    const closed = firstValueFrom(
      service.connectionClosed$.pipe(
        filter((e: ConnectionClosedEvent) => e.userId === u),
        take(1),
        timeout(3000),
      ),
    );
    client.socket.close(1000, 'bye');
    assert.deepEqual(await closed, {
      connectionId: connectionIdOf(client),
      userId: u,
      code: 1000,
      reason: 'bye',
    });

    const other = await connect(u);
    const disconnected = firstValueFrom(
      service.connectionClosed$.pipe(
        filter((e: ConnectionClosedEvent) => e.userId === u),
        take(1),
        timeout(3000),
      ),
    );
    assert.equal(await service.disconnectConnection(connectionIdOf(other)), true);
    const event = await disconnected;
    assert.equal(event.code, 4004);
    assert.equal(event.reason, 'Disconnected by admin');
    await other.waitClose();
    closeAll(client, other);
  });
});
