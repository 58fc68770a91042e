import {
  Body,
  Controller,
  type DynamicModule,
  HttpCode,
  type INestApplication,
  Post,
  RequestMethod,
  VersioningType,
} from '@nestjs/common';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RouterModule } from '@nestjs/core';
import { RealtimeModule, RealtimeService } from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, type ReceivedMessage, TestClient } from './support/test-client.js';

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type HttpResult = { status: number; body: any };

/** A 200 `{ status: "success", data }` and nothing else; returns `data`. */
function success(response: HttpResult): any {
  assert.equal(response.status, 200, `expected 200, got ${JSON.stringify(response)}`);
  assert.deepEqual(Object.keys(response.body).sort(), ['data', 'status']);
  assert.equal(response.body.status, 'success');
  return response.body.data;
}

/** An admin error: `{ status: "error", error: { code, message } }` with no stack trace. */
function failure(response: HttpResult, code: number): string {
  assert.equal(response.status, code, `expected ${code}, got ${JSON.stringify(response)}`);
  assertNoStack(response.body);
  assert.equal(response.body.status, 'error');
  assert.equal(response.body.error.code, code);
  assert.equal(typeof response.body.error.message, 'string');
  assert.ok(response.body.error.message.length > 0);
  return response.body.error.message;
}

function assertNoStack(body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  assert.doesNotMatch(text, /\bstack\b/i);
  assert.doesNotMatch(text, /\n\s*at /);
  assert.doesNotMatch(text, /\bat [^ ]+ \(.*:\d+:\d+\)/);
  assert.doesNotMatch(text, /node_modules|\/src\/|\/build\//);
}

function connectionIdOf(client: TestClient): string {
  return client.received[0]!.data.connection_id as string;
}

/**
 * Proves a client got nothing more than what it has: a frame written to it before the HTTP
 * answer precedes the pong of a later ping on the same socket.
 */
async function drain(client: TestClient): Promise<ReceivedMessage[]> {
  await client.request({ type: 'ping', data: {} });
  return client.received;
}

async function subscribe(client: TestClient, events: string[]): Promise<void> {
  const ack = await client.request({ type: 'subscribe', data: { events } });
  assert.equal(ack.type, 'subscription.acknowledged');
  assert.deepEqual(ack.data.events, events);
}

/** Opens clients and terminates them all at the end of a suite. */
function clientPool(server: () => TestApp) {
  const clients: TestClient[] = [];
  return {
    async open(sub: string): Promise<TestClient> {
      const client = await TestClient.open(server().wsUrl, server().token(sub));
      clients.push(client);
      return client;
    },
    closeAll(): void {
      for (const client of clients) client.close();
    },
  };
}

describe('admin API: authentication and authorization', () => {
  let server: TestApp;
  before(async () => {
    server = await startTestApp();
  });
  after(() => server.close());

  it('answers 401 without a token', async () => {
    failure(await server.http('GET', '/ws/stats'), 401);
  });

  it('answers 401 with a garbage token', async () => {
    failure(await server.http('GET', '/ws/stats', 'not-a-jwt'), 401);
    const message = failure(await server.http('GET', '/ws/stats', 'a.b.c'), 401);
    assert.equal(message, 'Invalid token');
  });

  it('answers 401 with a token signed by another key', async () => {
    const forged = `${server.adminToken().slice(0, -4)}AAAA`;
    failure(await server.http('GET', '/ws/stats', forged), 401);
  });

  it('answers 401 "Token expired" with an expired admin token', async () => {
    const expired = server.token('admin-1', { role: 'admin' }, { expiresIn: -60 });
    const message = failure(await server.http('GET', '/ws/stats', expired), 401);
    assert.equal(message, 'Token expired');
  });

  it('answers 401 on a malformed Authorization header', async () => {
    const response = await fetch(`${server.httpUrl}/ws/stats`, {
      headers: { authorization: `Basic ${server.adminToken()}` },
      signal: AbortSignal.timeout(5000),
    });
    failure({ status: response.status, body: await response.json() }, 401);
  });

  it('answers 403 with a valid token that has no admin claim', async () => {
    const message = failure(await server.http('GET', '/ws/stats', server.token('user-1')), 403);
    assert.match(message, /admin/i);
  });

  it('answers 403 for look-alike claims that do not grant admin', async () => {
    for (const claims of [
      { role: 'Admin' },
      { role: 'user' },
      { is_admin: 'true' },
      { is_admin: 1 },
      { roles: 'admin' },
      { roles: ['user', 'administrator'] },
    ]) {
      const token = server.token('user-2', claims);
      failure(await server.http('GET', '/ws/stats', token), 403);
    }
  });

  it('answers 403 on every route, not only stats', async () => {
    const token = server.token('user-3');
    failure(await server.http('GET', '/ws/connections', token), 403);
    failure(await server.http('GET', '/ws/connections/x', token), 403);
    failure(await server.http('DELETE', '/ws/connections/x', token), 403);
    failure(await server.http('POST', '/ws/broadcast', token, { type: 't', data: {} }), 403);
  });

  it('accepts role: "admin"', async () => {
    success(await server.http('GET', '/ws/stats', server.token('a-role', { role: 'admin' })));
  });

  it('accepts is_admin: true', async () => {
    success(await server.http('GET', '/ws/stats', server.token('a-flag', { is_admin: true })));
  });

  it('accepts roles containing "admin"', async () => {
    const token = server.token('a-roles', { roles: ['editor', 'admin'] });
    success(await server.http('GET', '/ws/stats', token));
  });

  it('accepts a numeric sub', async () => {
    success(await server.http('GET', '/ws/stats', server.token(7, { role: 'admin' })));
  });
});

describe('admin API: GET /ws/stats', () => {
  let server: TestApp;
  const pool = clientPool(() => server);
  let alice1: TestClient;
  let alice2: TestClient;
  let bob: TestClient;
  before(async () => {
    server = await startTestApp({
      realtime: {
        maxConnectionsPerUser: 4,
        maxTotalConnections: 50,
        rateLimitMessages: 70,
        rateLimitWindowMs: 30_000,
        heartbeatIntervalMs: 15_000,
        connectionTimeoutMs: 45_000,
      },
    });
  });
  after(async () => {
    pool.closeAll();
    await server.close();
  });

  it('reports zeros with no connection', async () => {
    const stats = success(await server.http('GET', '/ws/stats', server.adminToken()));
    assert.equal(stats.total_connections, 0);
    assert.equal(stats.unique_users, 0);
    assert.deepEqual(stats.connections_per_user, {});
    assert.equal(stats.average_connections_per_user, 0);
    assert.deepEqual(stats.subscriptions, {});
    assert.deepEqual(stats.rooms, {});
    assert.equal(stats.messages_in, 0);
    assert.equal(stats.messages_out, 0);
  });

  it('counts real connections, subscriptions, rooms and messages', async () => {
    alice1 = await pool.open('alice');
    alice2 = await pool.open('alice');
    bob = await pool.open('bob');
    await subscribe(alice1, ['upload.progress', 'review.updated']);
    await subscribe(bob, ['upload.progress']);
    const realtime = server.app.get(RealtimeService);
    assert.equal(await realtime.joinRoom('team', { userId: 'alice' }), 2);
    assert.equal(await realtime.joinRoom('solo', { connectionId: connectionIdOf(bob) }), 1);

    const stats = success(await server.http('GET', '/ws/stats', server.adminToken()));
    assert.equal(stats.total_connections, 3);
    assert.equal(stats.unique_users, 2);
    assert.deepEqual(stats.connections_per_user, { alice: 2, bob: 1 });
    assert.equal(stats.average_connections_per_user, 1.5);
    assert.deepEqual(stats.subscriptions, { 'upload.progress': 2, 'review.updated': 1 });
    assert.deepEqual(stats.rooms, { team: 2, solo: 1 });
    // Two subscribes in; three connection.established and two acknowledgements out.
    assert.equal(stats.messages_in, 2);
    assert.equal(stats.messages_out, 5);
  });

  it('reports server_info from the configured limits, in seconds', async () => {
    const stats = success(await server.http('GET', '/ws/stats', server.adminToken()));
    const info = stats.server_info;
    assert.equal(info.max_connections_per_user, 4);
    assert.equal(info.max_total_connections, 50);
    assert.equal(info.rate_limit_messages, 70);
    assert.equal(info.rate_limit_window, 30);
    assert.equal(info.heartbeat_interval, 15);
    assert.equal(info.connection_timeout, 45);
  });

  it('counts every message in and out', async () => {
    const before = success(await server.http('GET', '/ws/stats', server.adminToken()));
    await alice2.request({ type: 'ping', data: { pingId: 'p1' } });
    await bob.request({ type: 'ping', data: { pingId: 'p2' } });
    const invalid = await bob.request({ type: 'no.such.type', data: {} });
    assert.equal(invalid.type, 'error');
    const stats = success(await server.http('GET', '/ws/stats', server.adminToken()));
    assert.equal(stats.messages_in, before.messages_in + 3);
    assert.equal(stats.messages_out, before.messages_out + 3);
  });

  it('follows unsubscribes and disconnects', async () => {
    await alice1.request({ type: 'unsubscribe', data: { events: ['review.updated'] } });
    alice2.close();
    await alice2.waitClose();
    await eventually(
      async () => {
        const s = success(await server.http('GET', '/ws/stats', server.adminToken()));
        return s.total_connections === 2;
      },
      3000,
      'total_connections back to 2',
    );
    const stats = success(await server.http('GET', '/ws/stats', server.adminToken()));
    assert.equal(stats.unique_users, 2);
    assert.deepEqual(stats.connections_per_user, { alice: 1, bob: 1 });
    assert.equal(stats.average_connections_per_user, 1);
    assert.deepEqual(stats.subscriptions, { 'upload.progress': 2 });
    assert.deepEqual(stats.rooms, { team: 1, solo: 1 });
  });
});

describe('admin API: GET /ws/connections', () => {
  let server: TestApp;
  const pool = clientPool(() => server);
  let ids: string[];
  before(async () => {
    server = await startTestApp();
    const clients = [await pool.open('alice'), await pool.open('bob'), await pool.open('alice')];
    ids = clients.map(connectionIdOf);
    await subscribe(clients[0]!, ['upload.progress', 'file.ready']);
    server.app.get(RealtimeService).joinRoom('lobby', { connectionId: ids[1]! });
  });
  after(async () => {
    pool.closeAll();
    await server.close();
  });

  it('lists connection summaries in connection order', async () => {
    const page = success(await server.http('GET', '/ws/connections', server.adminToken()));
    assert.equal(page.total, 3);
    assert.equal(page.limit, 100);
    assert.equal(page.offset, 0);
    assert.deepEqual(
      page.connections.map((c: any) => c.connection_id),
      ids,
    );
    assert.deepEqual(
      page.connections.map((c: any) => c.user_id),
      ['alice', 'bob', 'alice'],
    );
    for (const summary of page.connections) {
      assert.match(summary.connected_at, ISO_UTC);
      assert.match(summary.last_activity, ISO_UTC);
      assert.equal(summary.remote_address, '127.0.0.1');
    }
    assert.equal(page.connections[0].subscriptions, 2);
    assert.equal(page.connections[0].rooms, 0);
    assert.equal(page.connections[1].subscriptions, 0);
    assert.equal(page.connections[1].rooms, 1);
  });

  it('filters by ?user_id=', async () => {
    const alice = success(
      await server.http('GET', '/ws/connections?user_id=alice', server.adminToken()),
    );
    assert.equal(alice.total, 2);
    assert.deepEqual(
      alice.connections.map((c: any) => c.connection_id),
      [ids[0], ids[2]],
    );
    const nobody = success(
      await server.http('GET', '/ws/connections?user_id=nobody', server.adminToken()),
    );
    assert.equal(nobody.total, 0);
    assert.deepEqual(nobody.connections, []);
    const empty = success(
      await server.http('GET', '/ws/connections?user_id=', server.adminToken()),
    );
    const all = success(await server.http('GET', '/ws/connections', server.adminToken()));
    assert.equal(empty.total, all.total, 'an empty user_id is no filter');
  });

  it('paginates with limit and offset', async () => {
    const admin = server.adminToken();
    const first = success(await server.http('GET', '/ws/connections?limit=2', admin));
    assert.equal(first.total, 3);
    assert.equal(first.limit, 2);
    assert.deepEqual(
      first.connections.map((c: any) => c.connection_id),
      [ids[0], ids[1]],
    );
    const second = success(await server.http('GET', '/ws/connections?limit=2&offset=2', admin));
    assert.equal(second.offset, 2);
    assert.deepEqual(
      second.connections.map((c: any) => c.connection_id),
      [ids[2]],
    );
    const past = success(await server.http('GET', '/ws/connections?offset=3', admin));
    assert.equal(past.total, 3);
    assert.deepEqual(past.connections, []);
    const filtered = success(
      await server.http('GET', '/ws/connections?user_id=alice&limit=1&offset=1', admin),
    );
    assert.equal(filtered.total, 2);
    assert.deepEqual(
      filtered.connections.map((c: any) => c.connection_id),
      [ids[2]],
    );
  });

  it('bounds ?user_id= as token verification bounds sub: 256 UTF-16 code units', async () => {
    const admin = server.adminToken();
    const get = (userId: string) =>
      server.http('GET', `/ws/connections?user_id=${encodeURIComponent(userId)}`, admin);
    // 😀 counts 2: 128 of them are the longest id; a filter for it is a filter.
    assert.equal(success(await get('😀'.repeat(128))).total, 0);
    for (const userId of ['😀'.repeat(129), 'u'.repeat(257), 'a\nb', 'a\u0000b']) {
      assert.match(failure(await get(userId), 400), /user_id must/, JSON.stringify(userId));
    }
  });

  for (const query of [
    'limit=0',
    'limit=abc',
    'offset=-1',
    'limit=1.5',
    'limit=1001',
    'offset=x',
    // Past it, offset + limit is no longer an exact integer for the other instances.
    'offset=1e20',
    // A misspelled filter would otherwise list every connection.
    'userId=alice',
  ]) {
    it(`answers 400 on ?${query}`, async () => {
      failure(await server.http('GET', `/ws/connections?${query}`, server.adminToken()), 400);
    });
  }
});

describe('admin API: GET and DELETE /ws/connections/:id', () => {
  let server: TestApp;
  const pool = clientPool(() => server);
  before(async () => {
    server = await startTestApp();
  });
  after(async () => {
    pool.closeAll();
    await server.close();
  });

  it('details one connection with real counters', async () => {
    const client = await pool.open('dora');
    const id = connectionIdOf(client);
    const sent: string[] = [];
    const send = async (message: { type: string; data: unknown; id: string }) => {
      sent.push(JSON.stringify(message));
      client.send(sent.at(-1)!);
      await eventually(() => client.received.some((m) => m.in_reply_to === message.id));
    };
    await send({ type: 'subscribe', data: { events: ['upload.progress'] }, id: 's1' });
    await send({ type: 'ping', data: { pingId: 'x' }, id: 'p1' });
    await send({ type: 'nope', data: {}, id: 'e1' });
    server.app.get(RealtimeService).joinRoom('desk', { userId: 'dora' });

    const details = success(await server.http('GET', `/ws/connections/${id}`, server.adminToken()));
    assert.equal(details.connection_id, id);
    assert.equal(details.user_id, 'dora');
    assert.equal(details.is_admin, false);
    for (const field of ['connected_at', 'last_activity', 'last_heartbeat']) {
      assert.match(details[field], ISO_UTC, field);
    }
    assert.ok(Date.parse(details.last_activity) >= Date.parse(details.connected_at));
    assert.ok(Date.parse(details.last_heartbeat) >= Date.parse(details.connected_at));
    assert.deepEqual(details.subscriptions, ['upload.progress']);
    assert.deepEqual(details.rooms, ['desk']);
    assert.equal(details.messages_in, 3);
    // connection.established, subscription.acknowledged, pong, error.
    assert.equal(details.messages_out, 4);
    assert.equal(details.message_count, 7);
    assert.equal(details.error_count, 1);
    const bytesIn = sent.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
    const bytesOut = client.received.reduce(
      (sum, message) => sum + Buffer.byteLength(JSON.stringify(message)),
      0,
    );
    assert.equal(details.bytes_in, bytesIn);
    assert.equal(details.bytes_out, bytesOut);
    assert.equal(details.remote_address, '127.0.0.1');
  });

  it('marks an admin connection as admin', async () => {
    const client = await TestClient.open(server.wsUrl, server.adminToken('admin-ws'));
    try {
      const id = connectionIdOf(client);
      const details = success(
        await server.http('GET', `/ws/connections/${id}`, server.adminToken()),
      );
      assert.equal(details.is_admin, true);
    } finally {
      client.close();
    }
  });

  it('answers 404 for an unknown id', async () => {
    const message = failure(
      await server.http(
        'GET',
        '/ws/connections/00000000-0000-4000-8000-000000000000',
        server.adminToken(),
      ),
      404,
    );
    assert.match(message, /No connection/);
  });

  it('DELETE ends the connection with 4004 "Disconnected by admin"', async () => {
    const target = await pool.open('erin');
    const sibling = await pool.open('erin');
    const id = connectionIdOf(target);
    const data = success(await server.http('DELETE', `/ws/connections/${id}`, server.adminToken()));
    assert.deepEqual(data, { connection_id: id, disconnected: true });
    const closed = await target.waitClose();
    assert.equal(closed.code, 4004);
    assert.equal(closed.reason, 'Disconnected by admin');
    failure(await server.http('GET', `/ws/connections/${id}`, server.adminToken()), 404);
    // The user's other connection is untouched.
    const pong = await sibling.request({ type: 'ping', data: {} });
    assert.equal(pong.type, 'pong');
    const erin = success(
      await server.http('GET', '/ws/connections?user_id=erin', server.adminToken()),
    );
    assert.deepEqual(
      erin.connections.map((c: any) => c.connection_id),
      [connectionIdOf(sibling)],
    );
  });

  it('DELETE answers 404 for an unknown or already ended id', async () => {
    failure(await server.http('DELETE', '/ws/connections/no-such-id', server.adminToken()), 404);
    const client = await pool.open('fay');
    const id = connectionIdOf(client);
    success(await server.http('DELETE', `/ws/connections/${id}`, server.adminToken()));
    await client.waitClose();
    failure(await server.http('DELETE', `/ws/connections/${id}`, server.adminToken()), 404);
  });
});

describe('admin API: POST /ws/broadcast', () => {
  let server: TestApp;
  const pool = clientPool(() => server);
  let alice1: TestClient;
  let alice2: TestClient;
  let bob: TestClient;
  let carol: TestClient;
  let everyone: TestClient[];
  before(async () => {
    server = await startTestApp();
    alice1 = await pool.open('alice');
    alice2 = await pool.open('alice');
    bob = await pool.open('bob');
    carol = await pool.open('carol');
    everyone = [alice1, alice2, bob, carol];
    await subscribe(alice1, ['review.updated']);
    await subscribe(carol, ['review.updated', 'upload.progress']);
    server.app.get(RealtimeService).joinRoom('ops', { userId: 'bob' });
  });
  after(async () => {
    pool.closeAll();
    await server.close();
  });

  async function broadcast(body: unknown): Promise<any> {
    return success(await server.http('POST', '/ws/broadcast', server.adminToken(), body));
  }

  /** Checks who got the message `id` (exactly once) and who did not. */
  async function assertDelivery(
    id: string,
    type: string,
    data: unknown,
    recipients: TestClient[],
  ): Promise<void> {
    for (const client of everyone) {
      const got = (await drain(client)).filter((m) => m.id === id);
      if (!recipients.includes(client)) {
        assert.equal(got.length, 0, `client of ${client.received[0]!.data.user_id} got ${id}`);
        continue;
      }
      assert.equal(got.length, 1);
      const message = got[0]!;
      assert.equal(message.type, type);
      assert.deepEqual(message.data, data);
      assert.match(message.timestamp, ISO_UTC);
      assert.equal(message.source, 'admin_broadcast');
      assert.equal(message.id, id);
    }
  }

  it('sends to every connection when there is no target', async () => {
    const data = { text: 'maintenance at noon', level: 'info' };
    const result = await broadcast({ type: 'system.notification', data });
    assert.deepEqual(Object.keys(result).sort(), [
      'connections_reached',
      'message_id',
      'message_sent',
    ]);
    assert.equal(result.message_sent, true);
    assert.equal(result.connections_reached, 4);
    assert.match(result.message_id, UUID);
    await assertDelivery(result.message_id, 'system.notification', data, everyone);
  });

  it('sends to every connection of target.users', async () => {
    const data = { n: 1 };
    const result = await broadcast({ type: 'note', data, target: { users: ['alice', 'carol'] } });
    assert.equal(result.message_sent, true);
    assert.equal(result.connections_reached, 3);
    await assertDelivery(result.message_id, 'note', data, [alice1, alice2, carol]);
  });

  it('delivers nested data exactly as posted', async () => {
    const data = {
      nested: { list: [1, { c: 'd' }, null, true, [2, [3]]], text: 'é ✓ "quoted" [x]' },
      when: '2025-01-08T10:30:00Z',
      n: 1.5,
      empty: {},
    };
    const result = await broadcast({ type: 'deploy', data, target: { users: ['carol'] } });
    assert.equal(result.connections_reached, 1);
    await assertDelivery(result.message_id, 'deploy', data, [carol]);
  });

  it('counts a user listed twice once', async () => {
    const result = await broadcast({ type: 'note', data: {}, target: { users: ['bob', 'bob'] } });
    assert.equal(result.connections_reached, 1);
    await assertDelivery(result.message_id, 'note', {}, [bob]);
  });

  it('sends to the subscribers of target.event only', async () => {
    const data = { review_id: 'r1' };
    const result = await broadcast({
      type: 'review.updated',
      data,
      target: { event: 'review.updated' },
    });
    assert.equal(result.message_sent, true);
    assert.equal(result.connections_reached, 2);
    await assertDelivery(result.message_id, 'review.updated', data, [alice1, carol]);
  });

  it('sends to the members of target.room only', async () => {
    const data = { alert: true };
    const result = await broadcast({ type: 'ops.alert', data, target: { room: 'ops' } });
    assert.equal(result.connections_reached, 1);
    await assertDelivery(result.message_id, 'ops.alert', data, [bob]);
  });

  it('says message_sent: false when nobody was reached', async () => {
    for (const target of [{ users: ['ghost'] }, { event: 'file.ready' }, { room: 'empty' }]) {
      const result = await broadcast({ type: 'void', data: {}, target });
      assert.equal(result.message_sent, false, JSON.stringify(target));
      assert.equal(result.connections_reached, 0);
      assert.match(result.message_id, UUID);
      await assertDelivery(result.message_id, 'void', {}, []);
    }
  });

  const invalidBodies: Array<[string, unknown]> = [
    ['a missing type', { data: {} }],
    ['an empty type', { type: '', data: {} }],
    ['a type that is not a string', { type: 42, data: {} }],
    ['a missing data', { type: 'x' }],
    ['data that is a string', { type: 'x', data: 'hello' }],
    ['data that is null', { type: 'x', data: null }],
    ['data that is an array', { type: 'x', data: [1, 2] }],
    ['two targets at once', { type: 'x', data: {}, target: { users: ['alice'], room: 'ops' } }],
    ['event and room at once', { type: 'x', data: {}, target: { event: 'a', room: 'b' } }],
    ['users that is not an array', { type: 'x', data: {}, target: { users: 'alice' } }],
    ['users that holds a number', { type: 'x', data: {}, target: { users: [1] } }],
    ['an empty users list', { type: 'x', data: {}, target: { users: [] } }],
    ['a target that is not an object', { type: 'x', data: {}, target: 'alice' }],
    ['an empty event', { type: 'x', data: {}, target: { event: '' } }],
    ['a JSON array', '[{"type": "x", "data": {}}]'],
    // A target that names nobody must not fall back to everyone.
    ['a target that is an empty object', { type: 'x', data: {}, target: {} }],
    ['a target that is null', { type: 'x', data: {}, target: null }],
    ['a target that is an array', { type: 'x', data: {}, target: [] }],
    ['users that is null', { type: 'x', data: {}, target: { users: null } }],
    ['an event that is null', { type: 'x', data: {}, target: { event: null } }],
    ['a room that is null', { type: 'x', data: {}, target: { room: null } }],
    ['a misspelled target key', { type: 'x', data: {}, target: { user: ['alice'] } }],
    ['an unknown top-level key', { type: 'x', data: {}, targets: { users: ['alice'] } }],
    // Nest's ValidationPipe would delete these keys, and the rest would be sent without them.
    ['a data key named constructor', '{"type": "x", "data": {"constructor": {"a": 1}, "b": 2}}'],
    ['a nested data key named __proto__', '{"type": "x", "data": {"a": [{"__proto__": {}}]}}'],
    ['a data key named prototype', '{"type": "x", "data": {"prototype": 2}}'],
  ];
  for (const [what, body] of invalidBodies) {
    it(`answers 400 on ${what}`, async () => {
      failure(await server.http('POST', '/ws/broadcast', server.adminToken(), body), 400);
    });
  }

  it('answers 400 in the admin shape on malformed JSON', async () => {
    // Refused by the host's body parser before the admin guard and filter run.
    const response = await server.http(
      'POST',
      '/ws/broadcast',
      server.adminToken(),
      '{"type": "x", "data": {',
    );
    failure(response, 400);
  });

  it('counts type and target.room in UTF-16 code units, as RealtimeService does', async () => {
    // 😀 is two UTF-16 code units; ❤️ is U+2764 and a variation selector, which class-validator's
    // MaxLength does not count at all.
    const emoji = '😀';
    const longestType = emoji.repeat(50);
    const longestRoom = emoji.repeat(100);
    const result = await broadcast({ type: longestType, data: {}, target: { users: ['carol'] } });
    assert.equal(result.connections_reached, 1);
    await assertDelivery(result.message_id, longestType, {}, [carol]);
    server.app.get(RealtimeService).joinRoom(longestRoom, { userId: 'bob' });
    const inRoom = await broadcast({ type: 'r', data: {}, target: { room: longestRoom } });
    assert.equal(inRoom.connections_reached, 1);
    await assertDelivery(inRoom.message_id, 'r', {}, [bob]);

    // One answer for a type one unit too long, whatever its characters: the DTO's, not a second
    // check further in that the DTO let through.
    const post = (body: unknown) => server.http('POST', '/ws/broadcast', server.adminToken(), body);
    const typeAnswer = failure(await post({ type: 't'.repeat(101), data: {} }), 400);
    assert.match(typeAnswer, /^type must be a string of 1 to 100 UTF-16 code units/);
    for (const type of [`${longestType}x`, '❤️'.repeat(51), emoji.repeat(100)]) {
      assert.equal(failure(await post({ type, data: {} }), 400), typeAnswer, type);
    }
    const roomAnswer = failure(
      await post({ type: 'r', data: {}, target: { room: 'r'.repeat(201) } }),
      400,
    );
    assert.match(roomAnswer, /room must be a string of 1 to 200 UTF-16 code units/);
    for (const room of [`${longestRoom}x`, '❤️'.repeat(101)]) {
      assert.equal(
        failure(await post({ type: 'r', data: {}, target: { room } }), 400),
        roomAnswer,
        room,
      );
    }
  });

  it('bounds target.event and target.users as RealtimeService does', async () => {
    const post = (body: unknown) => server.http('POST', '/ws/broadcast', server.adminToken(), body);
    // target.event: a name a client can subscribe to, 1 to 200 printable ASCII characters.
    const longestEvent = 'e'.repeat(200);
    const toEvent = await broadcast({ type: 'ev', data: {}, target: { event: longestEvent } });
    assert.equal(toEvent.connections_reached, 0);
    const eventAnswer = failure(
      await post({ type: 'x', data: {}, target: { event: `${longestEvent}e` } }),
      400,
    );
    assert.match(eventAnswer, /event must be 1 to 200 printable ASCII characters, no spaces/);
    for (const event of ['a b', 'café', 'a\nb', '😀']) {
      const answer = failure(await post({ type: 'x', data: {}, target: { event } }), 400);
      assert.equal(answer, eventAnswer, event);
    }

    // target.users: entries bounded as a token's sub is, in UTF-16 code units (😀 counts 2).
    const longestUser = '😀'.repeat(128);
    const longClient = await pool.open(longestUser);
    const toUser = await broadcast({ type: 'u', data: {}, target: { users: [longestUser] } });
    assert.equal(toUser.connections_reached, 1);
    assert.equal((await drain(longClient)).filter((m) => m.id === toUser.message_id).length, 1);
    for (const users of [
      ['u'.repeat(257)],
      ['carol', `${longestUser}x`],
      ['carol', ''],
      ['a\nb'],
      ['\ud800'],
    ]) {
      const answer = failure(await post({ type: 'x', data: {}, target: { users } }), 400);
      const index = users.length - 1;
      assert.match(answer, new RegExp(`users\\[${index}\\] must`), JSON.stringify(users));
    }
    // target.room: printable text, as joinRoom accepts.
    for (const room of ['a\u0000b', 'x\udc00']) {
      const answer = failure(await post({ type: 'x', data: {}, target: { room } }), 400);
      assert.match(answer, /room must not contain control characters or lone surrogates/);
    }
    longClient.close();
  });

  it('delivered none of the refused broadcasts', async () => {
    for (const client of everyone) {
      const received = await drain(client);
      assert.equal(received.filter((m) => m.type === 'x').length, 0);
    }
  });
});

/** A host route, to show that its errors keep the host's (Nest's default) shape. */
@Controller('echo')
class EchoController {
  @Post()
  @HttpCode(200)
  echo(@Body() body: unknown): unknown {
    return body;
  }
}

describe('admin API: errors raised before the controller runs', () => {
  let server: TestApp;
  before(async () => {
    server = await startTestApp({ controllers: [EchoController] });
  });
  after(() => server.close());

  const overLimit = JSON.stringify({ type: 'x', data: { blob: 'x'.repeat(110_000) } });

  it('answers a body of null with 400 in the admin shape', async () => {
    // The host's JSON parser is strict: an object or an array at the top, or 400.
    failure(await server.http('POST', '/ws/broadcast', server.adminToken(), 'null'), 400);
  });

  it('answers malformed JSON with 400 in the admin shape', async () => {
    const response = await server.http('POST', '/ws/broadcast', server.adminToken(), '{"type":');
    assert.match(failure(response, 400), /JSON/);
  });

  it('answers a body over the parser limit (100 kB) with 413 in the admin shape', async () => {
    failure(await server.http('POST', '/ws/broadcast', server.adminToken(), overLimit), 413);
  });

  it('answers an undecodable :id with 400 in the admin shape, on GET and DELETE', async () => {
    for (const method of ['GET', 'DELETE']) {
      const response = await server.http(method, '/ws/connections/%E0%A4%A', server.adminToken());
      assert.match(failure(response, 400), /decode/, method);
    }
  });

  it('answers them so before authentication, which cannot run first', async () => {
    failure(await server.http('POST', '/ws/broadcast', undefined, 'null'), 400);
    failure(await server.http('GET', '/ws/connections/%E0%A4%A'), 400);
  });

  it('leaves the same errors on host routes in the host shape', async () => {
    for (const [body, status] of [
      ['null', 400],
      [overLimit, 413],
    ] as const) {
      const response = await server.http('POST', '/echo', undefined, body);
      assert.equal(response.status, status);
      assert.equal(response.body.statusCode, status);
      assert.equal(response.body.status, undefined);
    }
    assert.deepEqual((await server.http('POST', '/echo', undefined, { a: 1 })).body, { a: 1 });
  });

  it('still serves the admin routes afterwards', async () => {
    success(await server.http('GET', '/ws/stats', server.adminToken()));
    const result = success(
      await server.http('POST', '/ws/broadcast', server.adminToken(), { type: 'x', data: {} }),
    );
    assert.equal(result.connections_reached, 0);
  });
});

describe('admin API: broadcast size limit', () => {
  let server: TestApp;
  const pool = clientPool(() => server);
  before(async () => {
    server = await startTestApp({ realtime: { maxMessageSize: 1024 } });
  });
  after(async () => {
    pool.closeAll();
    await server.close();
  });

  it('answers 400 and sends nothing when the message exceeds maxMessageSize', async () => {
    const client = await pool.open('gus');
    const response = await server.http('POST', '/ws/broadcast', server.adminToken(), {
      type: 'big',
      data: { blob: 'x'.repeat(2000) },
    });
    const message = failure(response, 400);
    assert.match(message, /maxMessageSize/);
    const received = await drain(client);
    assert.equal(received.filter((m) => m.type === 'big').length, 0);
  });

  it('still sends a message under the limit', async () => {
    const client = await pool.open('hal');
    const result = success(
      await server.http('POST', '/ws/broadcast', server.adminToken(), {
        type: 'small',
        data: { blob: 'x'.repeat(100) },
        target: { users: ['hal'] },
      }),
    );
    assert.equal(result.connections_reached, 1);
    const got = await client.next('small');
    assert.equal(got.id, result.message_id);
  });
});

describe('admin API: rate limit', () => {
  let server: TestApp;
  before(async () => {
    server = await startTestApp({ realtime: { adminRateLimit: 3 } });
  });
  after(() => server.close());

  it('answers 429 to the 4th request of an admin within a minute', async () => {
    const token = server.adminToken('busy-admin');
    for (let i = 0; i < 3; i++) success(await server.http('GET', '/ws/stats', token));
    failure(await server.http('GET', '/ws/stats', token), 429);
    failure(await server.http('GET', '/ws/connections', token), 429);
  });

  it('counts each admin separately', async () => {
    success(await server.http('GET', '/ws/stats', server.adminToken('other-admin')));
  });
});

describe('admin API: adminPrefix "rt-admin"', () => {
  let server: TestApp;
  before(async () => {
    server = await startTestApp({ extras: { adminPrefix: 'rt-admin' } });
  });
  after(() => server.close());

  it('serves the routes under /rt-admin', async () => {
    const client = await TestClient.open(server.wsUrl, server.token('ivy'));
    try {
      const admin = server.adminToken();
      const stats = success(await server.http('GET', '/rt-admin/stats', admin));
      assert.equal(stats.total_connections, 1);
      const list = success(await server.http('GET', '/rt-admin/connections', admin));
      assert.equal(list.connections[0].connection_id, connectionIdOf(client));
      failure(await server.http('GET', '/rt-admin/stats'), 401);
    } finally {
      client.close();
    }
  });

  it('answers body parser errors in the admin shape under its own prefix only', async () => {
    const malformed = '{"type": "x", "data": {';
    failure(await server.http('POST', '/rt-admin/broadcast', server.adminToken(), malformed), 400);
    // /ws/broadcast is no admin route here: the host's default answer stays.
    const elsewhere = await server.http('POST', '/ws/broadcast', server.adminToken(), malformed);
    assert.equal(elsewhere.status, 400);
    assert.equal(elsewhere.body.statusCode, 400);
    assert.equal(elsewhere.body.status, undefined);
  });

  it('no longer serves /ws/stats', async () => {
    const admin = server.adminToken();
    assert.equal((await server.http('GET', '/ws/stats', admin)).status, 404);
    assert.equal((await server.http('GET', '/ws/connections', admin)).status, 404);
  });
});

/** Where the host's routes put the admin API: the errors before it must follow. */
function earlyErrorsUnder(
  base: string,
  elsewhere: readonly string[],
  configure: (app: INestApplication) => void,
  imports: DynamicModule[] = [],
) {
  let server: TestApp;
  before(async () => {
    server = await startTestApp({ controllers: [EchoController], configure, imports });
  });
  after(() => server.close());

  it(`serves the admin routes under ${base}`, async () => {
    success(await server.http('GET', `${base}/stats`, server.adminToken()));
    failure(await server.http('GET', `${base}/stats`), 401);
  });

  it('answers body parser and :id decoding errors there in the admin shape', async () => {
    const admin = server.adminToken();
    assert.match(
      failure(await server.http('POST', `${base}/broadcast`, admin, '{"type":'), 400),
      /JSON/,
    );
    failure(await server.http('POST', `${base}/broadcast`, undefined, 'null'), 400);
    const undecodable = await server.http('DELETE', `${base}/connections/%E0%A4%A`, admin);
    assert.match(failure(undecodable, 400), /decode/);
    // Express matches routes ignoring case and one trailing slash; so do these answers.
    failure(await server.http('POST', `${base.toUpperCase()}/BROADCAST/`, admin, 'null'), 400);
  });

  it('leaves the same errors elsewhere in the host shape', async () => {
    for (const path of [...elsewhere, `${base}/stats`]) {
      const response = await server.http('POST', path, undefined, '{"type":');
      assert.equal(response.status, 400, path);
      assert.equal(response.body.statusCode, 400, path);
      assert.equal(response.body.status, undefined, path);
    }
  });
}

describe('admin API: under a global prefix and URI versioning', () => {
  earlyErrorsUnder('/api/v1/ws', ['/api/v1/echo', '/ws/broadcast', '/api/ws/broadcast'], (app) => {
    app.setGlobalPrefix('api');
    app.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' });
  });
});

describe('admin API: with the admin routes excluded from a global prefix', () => {
  earlyErrorsUnder('/ws', ['/api/echo', '/api/ws/broadcast'], (app) => {
    app.setGlobalPrefix('api', { exclude: [{ path: 'ws/*path', method: RequestMethod.ALL }] });
  });
});

describe('admin API: under a RouterModule path', () => {
  earlyErrorsUnder('/rt/ws', ['/ws/broadcast'], () => {}, [
    RouterModule.register([{ path: 'rt', module: RealtimeModule }]),
  ]);
});

describe('admin API: adminPrefix false', () => {
  let server: TestApp;
  before(async () => {
    server = await startTestApp({ extras: { adminPrefix: false } });
  });
  after(() => server.close());

  it('serves no admin route', async () => {
    const admin = server.adminToken();
    assert.equal((await server.http('GET', '/ws/stats', admin)).status, 404);
    assert.equal((await server.http('GET', '/ws/connections', admin)).status, 404);
    assert.equal((await server.http('GET', '/ws/connections/x', admin)).status, 404);
    assert.equal((await server.http('DELETE', '/ws/connections/x', admin)).status, 404);
    const post = await server.http('POST', '/ws/broadcast', admin, { type: 'x', data: {} });
    assert.equal(post.status, 404);
  });

  it('still accepts WebSocket connections', async () => {
    const client = await TestClient.open(server.wsUrl, server.token('jon'));
    client.close();
  });
});
