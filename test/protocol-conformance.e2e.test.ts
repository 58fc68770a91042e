import { type OnGatewayConnection, SubscribeMessage } from '@nestjs/websockets';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SocketWriter } from '../src/realtime/gateway/socket-writer.js';
import {
  ClientMessageType,
  RealtimeGateway,
  type RealtimeReply,
  RealtimeService,
} from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, type ReceivedMessage, TestClient } from './support/test-client.js';
import { assertAllEnvelopes, assertPingWorks, ISO_UTC } from './support/wire.js';

/**
 * A conformance audit of the WebSocket side against PROTOCOL.md, section by section, with real
 * `ws` clients. Each `it` names the statement it checks; other files go deeper on each area.
 */

const LIMIT = 5;

/** Host handlers whose replies cannot be put on the wire as an object (section 3). */
@RealtimeGateway()
class ConformanceGateway {
  @SubscribeMessage('conformance.bigint')
  bigint(): RealtimeReply {
    return { type: 'conformance.reply', data: { n: 1n } };
  }

  @SubscribeMessage('conformance.cycle')
  cycle(): RealtimeReply {
    const data: Record<string, unknown> = {};
    data.self = data;
    return { type: 'conformance.reply', data };
  }

  @SubscribeMessage('conformance.date')
  date(): RealtimeReply {
    return { type: 'conformance.reply', data: new Date(0) };
  }

  @SubscribeMessage('conformance.to-json')
  toJson(): RealtimeReply {
    return { type: 'conformance.reply', data: { toJSON: () => ({ ok: true }) } };
  }
}

/** The keys of an object, sorted: data shapes are compared key for key. */
function keys(value: object): string[] {
  return Object.keys(value).sort();
}

/** Sends `frame` as is and returns the reply carrying `id`. */
async function replyTo(client: TestClient, frame: string, id: string): Promise<ReceivedMessage> {
  client.send(frame);
  await eventually(() => client.received.some((m) => m.in_reply_to === id), 3000, `reply ${id}`);
  return client.received.find((m) => m.in_reply_to === id)!;
}

function assertError(reply: ReceivedMessage, code: string, id?: string): void {
  assert.equal(reply.type, 'error', JSON.stringify(reply));
  assert.equal(reply.data.code, code);
  assert.equal(typeof reply.data.message, 'string');
  assert.ok(reply.data.message.length > 0);
  assert.deepEqual(keys(reply.data), ['code', 'message'], 'error data is { code, message }');
  assert.equal(reply.in_reply_to, id);
}

/** Sends `type` with each of `payloads` (ids `<idPrefix>-<n>`): each is INVALID_MESSAGE_FORMAT. */
async function assertEachRefused(
  client: TestClient,
  type: string,
  idPrefix: string,
  payloads: unknown[],
): Promise<void> {
  for (const [n, data] of payloads.entries()) {
    const id = `${idPrefix}-${n}`;
    assertError(await client.request({ type, data, id }), 'INVALID_MESSAGE_FORMAT', id);
  }
}

describe('PROTOCOL conformance: envelope, client messages, errors (sections 3, 4, 5, 6)', () => {
  let server: TestApp;
  let users = 0;
  before(async () => {
    server = await startTestApp({
      realtime: {
        maxMessageSize: 4096,
        subscriptionAuthorizer: (name) => name.startsWith('room:'),
      },
      providers: [ConformanceGateway],
    });
  });
  after(() => server.close());

  function open(): Promise<TestClient> {
    return TestClient.open(server.wsUrl, server.token(`conformance-${++users}`));
  }

  it('5: connection.established comes first, with the data of section 5 exactly', async () => {
    const client = await open();
    const first = client.received[0]!;
    assert.equal(first.type, 'connection.established');
    assert.equal('in_reply_to' in first, false);
    assert.deepEqual(keys(first.data), [
      'connection_id',
      'features',
      'limits',
      'server_time',
      'user_id',
    ]);
    assert.equal(first.data.user_id, `conformance-${users}`);
    assert.match(first.data.server_time, ISO_UTC);
    for (const type of Object.values(ClientMessageType)) {
      assert.ok(first.data.features.includes(type), `features lists ${type}`);
    }
    assert.deepEqual(keys(first.data.limits), [
      'connection_timeout',
      'heartbeat_interval',
      'max_connections_per_user',
      'max_message_size',
      'rate_limit_messages',
      'rate_limit_window',
    ]);
    assert.deepEqual(first.data.limits, {
      max_message_size: 4096,
      rate_limit_messages: 100,
      rate_limit_window: 60,
      heartbeat_interval: 30,
      connection_timeout: 60,
      max_connections_per_user: 3,
    });
    assertAllEnvelopes(client);
    client.close();
  });

  it('3: accepts a message with only a type, any string timestamp, and ignores extra fields', async () => {
    const client = await open();
    const pong = await replyTo(
      client,
      '{"type":"ping","timestamp":"not a date","id":"only-type","extra":{"a":[1]}}',
      'only-type',
    );
    assert.equal(pong.type, 'pong');
    assert.deepEqual(keys(pong.data), ['timestamp']);
    assertAllEnvelopes(client);
    client.close();
  });

  it('3: every reply carries in_reply_to = the id of the message, of every kind', async () => {
    const client = await open();
    const requests: [string, unknown, string][] = [
      ['ping', { pingId: 'p' }, 'pong'],
      ['subscribe', { events: ['file.ready'] }, 'subscription.acknowledged'],
      ['unsubscribe', { events: ['file.ready'] }, 'unsubscription.acknowledged'],
      ['upload.cancel', { upload_id: 'u-1' }, 'upload.cancel.acknowledged'],
      ['resume', { positions: [{ stream: 'all', offset: '0', epoch: 'e' }] }, 'resume.result'],
      ['no.such.type', {}, 'error'],
      ['ping', { pingId: 5 }, 'error'],
    ];
    for (const [n, [type, data, expected]] of requests.entries()) {
      const reply = await client.request({ type, data, id: `kind-${n}` });
      assert.equal(reply.type, expected, type);
      assert.equal(reply.in_reply_to, `kind-${n}`);
    }
    assertAllEnvelopes(client);
    const ids = client.received.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, 'every server message has its own id');
    client.close();
  });

  it('4 ping: pong { timestamp, pingId }, pingId echoed', async () => {
    const client = await open();
    const pong = await client.request({ type: 'ping', data: { pingId: 'abc' } });
    assert.equal(pong.type, 'pong');
    assert.deepEqual(keys(pong.data), ['pingId', 'timestamp']);
    assert.equal(pong.data.pingId, 'abc');
    assert.match(pong.data.timestamp, ISO_UTC);
    client.close();
  });

  it('4 heartbeat, pong: answered with nothing, even with an id', async () => {
    const client = await open();
    client.send({ type: 'heartbeat', data: {}, id: 'hb' });
    client.send({ type: 'pong', data: {}, id: 'pg' });
    client.send({ type: 'heartbeat' });
    await assertPingWorks(client, 'after');
    assert.deepEqual(
      client.received.map((m) => m.type),
      ['connection.established', 'pong'],
      'only the ping was answered',
    );
    client.close();
  });

  it('4 subscribe: { events, invalid_events }, then SUBSCRIPTION_FAILED when all are refused', async () => {
    const client = await open();
    const ack = await client.request({
      type: 'subscribe',
      data: { events: ['upload.progress', 'nope', 'room:1'] },
      id: 's-1',
    });
    assert.equal(ack.type, 'subscription.acknowledged');
    assert.deepEqual(ack.data, { events: ['upload.progress', 'room:1'], invalid_events: ['nope'] });
    client.send({ type: 'subscribe', data: { events: ['nope', 'nada'] }, id: 's-2' });
    await eventually(() => client.received.filter((m) => m.in_reply_to === 's-2').length === 2);
    const [refusedAck, failed] = client.received.filter((m) => m.in_reply_to === 's-2');
    assert.equal(refusedAck!.type, 'subscription.acknowledged');
    assert.deepEqual(refusedAck!.data, { events: [], invalid_events: ['nope', 'nada'] });
    assertError(failed!, 'SUBSCRIPTION_FAILED', 's-2');
    await assertEachRefused(client, 'subscribe', 'bad-s', [
      { events: [] },
      { events: Array.from({ length: 51 }, (_, i) => `room:${i}`) },
      { events: [1] },
      { events: 'upload.progress' },
      {},
    ]);
    assertAllEnvelopes(client);
    client.close();
  });

  it('4 subscribe: a string that is no event name is an unknown name, listed in invalid_events', async () => {
    const client = await open();
    // Spaces, control characters, non-ASCII: refused one by one, never shown to the authorizer
    // (which accepts every room:*), while the valid names of the same message are subscribed.
    const odd = ['room:a b', 'room:\u0007', 'room:é', ' ', 'upload.progress\n'];
    const ack = await client.request({
      type: 'subscribe',
      data: { events: ['upload.progress', ...odd, 'room:ok'] },
      id: 's-odd',
    });
    assert.equal(ack.type, 'subscription.acknowledged');
    assert.deepEqual(ack.data, { events: ['upload.progress', 'room:ok'], invalid_events: odd });
    client.send({ type: 'subscribe', data: { events: ['room:a b'] }, id: 's-odd-2' });
    await eventually(() => client.received.filter((m) => m.in_reply_to === 's-odd-2').length === 2);
    const [, failed] = client.received.filter((m) => m.in_reply_to === 's-odd-2');
    assertError(failed!, 'SUBSCRIPTION_FAILED', 's-odd-2');
    // Longer than any name can be (200): a malformed message, refused as a whole.
    assertError(
      await client.request({
        type: 'subscribe',
        data: { events: ['x'.repeat(201)] },
        id: 's-long',
      }),
      'INVALID_MESSAGE_FORMAT',
      's-long',
    );
    assertAllEnvelopes(client);
    client.close();
  });

  it('4 unsubscribe: { events: string[] } of any length is acknowledged with { events }', async () => {
    const client = await open();
    const names = Array.from({ length: 100 }, (_, i) => `room:${i}`);
    for (const chunk of [names.slice(0, 50), names.slice(50)]) {
      const ack = await client.request({ type: 'subscribe', data: { events: chunk } });
      assert.deepEqual(ack.data.events, chunk);
    }
    // Every name this connection holds goes in one unsubscribe (maxSubscriptionsPerConnection is
    // 100, past the 50 of one subscribe), and an empty list is a list.
    const all = await client.request({ type: 'unsubscribe', data: { events: names } });
    assert.equal(all.type, 'unsubscription.acknowledged', JSON.stringify(all.data));
    assert.deepEqual(all.data, { events: names });
    const none = await client.request({ type: 'unsubscribe', data: { events: [] } });
    assert.equal(none.type, 'unsubscription.acknowledged', JSON.stringify(none.data));
    assert.deepEqual(none.data, { events: [] });
    const unknown = await client.request({ type: 'unsubscribe', data: { events: ['has space'] } });
    assert.deepEqual(unknown.data, { events: [] }, 'a name not held is not removed');
    await assertEachRefused(client, 'unsubscribe', 'bad-u', [
      { events: [1] },
      { events: 'room:1' },
      {},
    ]);
    assertAllEnvelopes(client);
    client.close();
  });

  it('4 upload.cancel: { upload_id } acknowledged, anything else INVALID_MESSAGE_FORMAT', async () => {
    const client = await open();
    const ack = await client.request({ type: 'upload.cancel', data: { upload_id: 'u-9' } });
    assert.equal(ack.type, 'upload.cancel.acknowledged');
    assert.deepEqual(ack.data, { upload_id: 'u-9' });
    await assertEachRefused(client, 'upload.cancel', 'bad-c', [
      {},
      { upload_id: 9 },
      { upload_id: null },
    ]);
    client.close();
  });

  it('4, 9 resume: resume.result { recovered, streams: [{ stream, recovered, replayed }] }', async () => {
    const client = await open();
    const result = await client.request({
      type: 'resume',
      data: { positions: [{ stream: 'all', offset: '0', epoch: 'e' }] },
    });
    assert.equal(result.type, 'resume.result');
    assert.equal(typeof result.data.recovered, 'boolean');
    assert.equal(result.data.streams.length, 1);
    const [stream] = result.data.streams;
    assert.equal(stream.stream, 'all');
    assert.equal(typeof stream.recovered, 'boolean');
    assert.equal(typeof stream.replayed, 'number');
    await assertEachRefused(client, 'resume', 'bad-r', [
      {},
      { positions: [] },
      { positions: [{ stream: 'all', offset: 'x', epoch: 'e' }] },
    ]);
    client.close();
  });

  it('6: a type not in section 4 is INVALID_MESSAGE_TYPE, however long, server types included', async () => {
    const client = await open();
    for (const [n, type] of [
      'no.such.type',
      'PING',
      'connection.established',
      'error',
      't'.repeat(101),
      'x'.repeat(2000),
    ].entries()) {
      assertError(
        await client.request({ type, id: `type-${n}` }),
        'INVALID_MESSAGE_TYPE',
        `type-${n}`,
      );
    }
    assert.ok(
      client.ofType('error').every((m) => m.data.message.length <= 200),
      'the type is not echoed in full',
    );
    await assertPingWorks(client);
    client.close();
  });

  it('6: INVALID_MESSAGE_FORMAT for each kind of malformed envelope, open after each', async () => {
    const client = await open();
    const frames = [
      'not json',
      '[]',
      '"ping"',
      'null',
      '{}',
      '{"type":42}',
      '{"type":"ping","data":[]}',
      '{"type":"ping","data":"x"}',
      '{"type":"ping","id":7}',
      '{"type":"ping","timestamp":7}',
      `{"type":"ping","data":{"a":${'['.repeat(31)}${']'.repeat(31)}}}`,
    ];
    for (const frame of frames) client.send(frame);
    client.socket.send(Buffer.from('{"type":"ping"}'), { binary: true });
    await eventually(() => client.ofType('error').length === frames.length + 1, 3000, 'errors');
    for (const error of client.ofType('error')) assertError(error, 'INVALID_MESSAGE_FORMAT');
    await assertPingWorks(client);
    assert.equal(client.closeInfo, undefined);
    assertAllEnvelopes(client);
    client.close();
  });

  it('3, 6: a handler reply that cannot be sent as an object answers INTERNAL_ERROR, not silence', async () => {
    const client = await open();
    for (const type of ['conformance.bigint', 'conformance.cycle', 'conformance.date']) {
      const reply = await client.request({ type, id: type });
      assertError(reply, 'INTERNAL_ERROR', type);
    }
    // A toJSON that yields an object is an object on the wire: sent.
    const fine = await client.request({ type: 'conformance.to-json' });
    assert.equal(fine.type, 'conformance.reply');
    assert.deepEqual(fine.data, { ok: true });
    assert.equal(client.ofType('conformance.reply').length, 1);
    await assertPingWorks(client);
    assertAllEnvelopes(client);
    client.close();
  });
});

describe('PROTOCOL conformance: announced limits are the enforced ones (sections 2, 5, 6, 7)', () => {
  let server: TestApp;
  let users = 0;
  before(async () => {
    server = await startTestApp({
      realtime: { maxMessageSize: 1000, rateLimitMessages: LIMIT, rateLimitWindowMs: 60_000 },
    });
  });
  after(() => server.close());

  async function open(): Promise<{ client: TestClient; limits: Record<string, number> }> {
    const client = await TestClient.open(server.wsUrl, server.token(`limits-${++users}`));
    return { client, limits: client.received[0]!.data.limits };
  }

  /** A ping frame of exactly `bytes` bytes of UTF-8, padded with two-byte characters. */
  function pingOf(bytes: number, id: string): string {
    const empty = JSON.stringify({ type: 'ping', id, pad: '' });
    const room = bytes - Buffer.byteLength(empty);
    const frame = JSON.stringify({
      type: 'ping',
      id,
      pad: 'é'.repeat(room >> 1) + 'e'.repeat(room & 1),
    });
    assert.equal(Buffer.byteLength(frame), bytes);
    return frame;
  }

  it('max_message_size: exactly at it is answered, one byte over closes 1009 "Message too big"', async () => {
    const { client, limits } = await open();
    assert.equal(limits.max_message_size, 1000);
    const at = await replyTo(client, pingOf(limits.max_message_size, 'at'), 'at');
    assert.equal(at.type, 'pong');
    // Split in fragments, the message is still one message of that size.
    const frame = pingOf(limits.max_message_size, 'frag');
    client.socket.send(frame.slice(0, 10), { fin: false });
    client.socket.send(frame.slice(10), { fin: true });
    await eventually(() => client.received.some((m) => m.in_reply_to === 'frag'));
    client.send(pingOf(limits.max_message_size + 1, 'over'));
    assert.deepEqual(await client.waitClose(), { code: 1009, reason: 'Message too big' });
    assert.equal(
      client.received.some((m) => m.in_reply_to === 'over'),
      false,
    );
  });

  it('rate_limit_messages: N answered, N+1..2N RATE_LIMIT_EXCEEDED with reset_time, 2N+1 closes 1008', async () => {
    const { client, limits } = await open();
    const n = limits.rate_limit_messages!;
    assert.equal(n, LIMIT);
    assert.equal(limits.rate_limit_window, 60);
    const ids = Array.from({ length: 2 * n }, (_, i) => `r-${i + 1}`);
    // Invalid messages count too: one of the first N is not JSON (answered with an error).
    client.send('not json');
    for (const id of ids.slice(1)) client.send({ type: 'ping', id });
    await eventually(() => client.received.length === 1 + 2 * n, 3000, 'every reply');
    const replies = client.received.slice(1);
    assertError(replies[0]!, 'INVALID_MESSAGE_FORMAT');
    for (const reply of replies.slice(1, n)) assert.equal(reply.type, 'pong');
    const started = Math.floor(Date.now() / 1000);
    for (const [i, reply] of replies.slice(n).entries()) {
      assert.equal(reply.type, 'error');
      assert.equal(reply.data.code, 'RATE_LIMIT_EXCEEDED');
      assert.equal(reply.in_reply_to, ids[n + i]);
      assert.deepEqual(keys(reply.data), ['code', 'message', 'reset_time']);
      assert.ok(Number.isInteger(reply.data.reset_time), 'reset_time is unix seconds');
      assert.ok(reply.data.reset_time > started && reply.data.reset_time <= started + 61);
    }
    assert.equal(client.closeInfo, undefined, 'open at exactly 2N');
    client.send({ type: 'ping', id: 'one-more' });
    assert.deepEqual(await client.waitClose(), { code: 1008, reason: 'Policy violation' });
    assert.equal(client.received.length, 1 + 2 * n, 'the 2N+1st message is not answered');
  });
});

describe('PROTOCOL conformance: a server fault (sections 2, 6)', () => {
  let server: TestApp;
  let failing = false;
  before(async () => {
    server = await startTestApp({
      realtime: {
        // A host's shared rate-limit storage that can be made to fail.
        throttlerStorage: {
          increment: () =>
            failing
              ? Promise.reject(new Error('storage unreachable'))
              : Promise.resolve({
                  totalHits: 1,
                  timeToExpire: 60,
                  isBlocked: false,
                  timeToBlockExpire: 0,
                }),
        },
      },
    });
  });
  after(() => server.close());

  it('answers INTERNAL_ERROR in reply to the message, and stays open, when the server fails it', async () => {
    const client = await TestClient.open(server.wsUrl, server.token('fault-1'));
    failing = true;
    try {
      assertError(await client.request({ type: 'ping', id: 'f-1' }), 'INTERNAL_ERROR', 'f-1');
      client.socket.send(Buffer.from('x'), { binary: true });
      await eventually(() => client.ofType('error').length === 2);
      assertError(client.ofType('error')[1]!, 'INTERNAL_ERROR');
    } finally {
      failing = false;
    }
    await assertPingWorks(client);
    assert.equal(client.closeInfo, undefined);
    assertAllEnvelopes(client);
    client.close();
  });

  it('closes 1011 "Internal error" when not even the error can be written', async () => {
    const client = await TestClient.open(server.wsUrl, server.token('fault-2'));
    const writer = server.app.get(SocketWriter, { strict: false });
    const sendError = writer.sendError;
    failing = true;
    writer.sendError = () => {
      throw new Error('writer broken');
    };
    try {
      client.send({ type: 'ping', id: 'f-2' });
      assert.deepEqual(await client.waitClose(), { code: 1011, reason: 'Internal error' });
    } finally {
      failing = false;
      writer.sendError = sendError;
    }
    await assertPingWorks(await TestClient.open(server.wsUrl, server.token('fault-3')));
  });
});

describe('PROTOCOL conformance: close codes and reasons (section 2)', () => {
  let server: TestApp;
  const origin = 'https://app.example';
  before(async () => {
    server = await startTestApp({
      realtime: { allowedOrigins: [origin], maxTotalConnections: 4 },
    });
  });
  after(() => server.close());

  function connect(token: string | undefined, headers: Record<string, string> = {}): TestClient {
    return TestClient.connect(server.wsUrl, token, { headers });
  }

  it('4001 "Unauthorized" without a token, 4001 "Token expired" with an expired one', async () => {
    assert.deepEqual(await connect(undefined).waitClose(), { code: 4001, reason: 'Unauthorized' });
    const expired = server.token('closes', {}, { expiresIn: -10 });
    assert.deepEqual(await connect(expired).waitClose(), { code: 4001, reason: 'Token expired' });
  });

  it('4003 "Forbidden origin" for an origin not in the list', async () => {
    const client = connect(server.token('closes'), { origin: 'https://evil.example' });
    assert.deepEqual(await client.waitClose(), { code: 4003, reason: 'Forbidden origin' });
  });

  it('1007 "Invalid payload" for a text frame that is not UTF-8', async () => {
    const client = await TestClient.open(server.wsUrl, server.token('closes'), {
      headers: { origin },
    });
    client.socket.send(Buffer.from([0xc3, 0x28]), { binary: false });
    assert.deepEqual(await client.waitClose(), { code: 1007, reason: 'Invalid payload' });
  });

  it('4004 "Disconnected by admin" on DELETE /ws/connections/:id', async () => {
    const client = await TestClient.open(server.wsUrl, server.token('closes'));
    const id = client.received[0]!.data.connection_id as string;
    const deleted = await server.http('DELETE', `/ws/connections/${id}`, server.adminToken());
    assert.equal(deleted.status, 200);
    assert.deepEqual(await client.waitClose(), { code: 4004, reason: 'Disconnected by admin' });
  });

  it('4008 "Connection limit exceeded" after CONNECTION_LIMIT_EXCEEDED for the oldest of 4', async () => {
    const clients: TestClient[] = [];
    for (let i = 0; i < 3; i++)
      clients.push(await TestClient.open(server.wsUrl, server.token('many')));
    clients.push(await TestClient.open(server.wsUrl, server.token('many')));
    const oldest = clients[0]!;
    assert.deepEqual(await oldest.waitClose(), { code: 4008, reason: 'Connection limit exceeded' });
    assert.equal(oldest.received.at(-1)!.data.code, 'CONNECTION_LIMIT_EXCEEDED');
    for (const client of clients) client.close();
    await eventually(async () => {
      const stats = await server.http('GET', '/ws/stats', server.adminToken());
      return stats.body.data.total_connections === 0;
    });
  });

  it('1013 "Try again later" after CONNECTION_LIMIT_EXCEEDED past maxTotalConnections', async () => {
    const clients: TestClient[] = [];
    for (let i = 0; i < 4; i++) {
      clients.push(await TestClient.open(server.wsUrl, server.token(`full-${i}`)));
    }
    const refused = connect(server.token('full-x'));
    assert.deepEqual(await refused.waitClose(), { code: 1013, reason: 'Try again later' });
    assert.deepEqual(
      refused.received.map((m) => [m.type, m.data.code]),
      [['error', 'CONNECTION_LIMIT_EXCEEDED']],
    );
    for (const client of clients) client.close();
  });

  it('1001 "Going away" to every client when the server shuts down', async () => {
    await eventually(async () => {
      const stats = await server.http('GET', '/ws/stats', server.adminToken());
      return stats.body.data.total_connections === 0;
    });
    const client = await TestClient.open(server.wsUrl, server.token('last'));
    await server.close();
    assert.deepEqual(await client.waitClose(), { code: 1001, reason: 'Going away' });
  });
});

/** Sends to everyone, the connection being opened included, from its connect hook. */
@RealtimeGateway()
class GreetingGateway implements OnGatewayConnection {
  constructor(private readonly realtime: RealtimeService) {}

  handleConnection(): void {
    void this.realtime.broadcast('host.hello', {});
  }
}

describe('PROTOCOL 5: connection.established is first whatever the host sends at connect', () => {
  for (const history of [false, undefined] as const) {
    it(`when the host sends on connectionOpened$ (history: ${history ?? 'on'})`, async () => {
      const server = await startTestApp({ realtime: { history } });
      try {
        const service = server.app.get(RealtimeService);
        const subscription = service.connectionOpened$.subscribe((event) => {
          void service.sendToConnection(event.connectionId, 'host.welcome', { n: 1 });
          void service.sendToUser(event.userId, 'host.welcome', { n: 2 });
        });
        const client = TestClient.connect(server.wsUrl, server.token('welcome'));
        await eventually(() => client.received.length >= 3);
        subscription.unsubscribe();
        assert.deepEqual(
          client.received.map((m) => [m.type, m.data.n]),
          [
            ['connection.established', undefined],
            ['host.welcome', 1],
            ['host.welcome', 2],
          ],
        );
        client.close();
      } finally {
        await server.close();
      }
    });

    it(`when a host gateway sends in handleConnection (history: ${history ?? 'on'})`, async () => {
      const server = await startTestApp({ realtime: { history }, providers: [GreetingGateway] });
      try {
        // The first connection is the one the adapter learns the gateways on; the second is not.
        for (const user of ['greeted-1', 'greeted-2']) {
          const client = TestClient.connect(server.wsUrl, server.token(user));
          await eventually(() => client.ofType('host.hello').length >= 1);
          assert.equal(client.received[0]!.type, 'connection.established', user);
          client.close();
        }
      } finally {
        await server.close();
      }
    });
  }

  it('holds at most maxBufferedBytes before it: past that, 4010 and no message', async () => {
    const server = await startTestApp({
      realtime: { history: false, maxBufferedBytes: 4096, maxMessageSize: 4096 },
    });
    try {
      const service = server.app.get(RealtimeService);
      const subscription = service.connectionOpened$.subscribe((event) => {
        for (let i = 0; i < 10; i++) {
          void service.sendToConnection(event.connectionId, 'host.big', { pad: 'x'.repeat(1000) });
        }
      });
      const client = TestClient.connect(server.wsUrl, server.token('flooded'));
      const info = await client.waitClose();
      subscription.unsubscribe();
      assert.equal(info.code, 4010);
      assert.deepEqual(client.ofType('host.big'), []);
    } finally {
      await server.close();
    }
  });
});

describe('PROTOCOL conformance: resume without a history (sections 4, 9)', () => {
  it('4, 6: resume, a section 4 type, is answered resume.result with history: false', async () => {
    const server = await startTestApp({ realtime: { history: false } });
    try {
      const client = await TestClient.open(server.wsUrl, server.token('no-history'));
      const reply = await client.request({
        type: 'resume',
        data: { positions: [{ stream: 'all', offset: '1', epoch: 'e' }] },
      });
      assert.equal(reply.type, 'resume.result');
      assert.equal(reply.data.recovered, false);
      client.close();
    } finally {
      await server.close();
    }
  });
});
