import { ValidationPipe } from '@nestjs/common';
import { APP_PIPE } from '@nestjs/core';
import { MessageBody, SubscribeMessage, WsException } from '@nestjs/websockets';
import { IsNotEmpty, IsString, Matches, MaxLength } from 'class-validator';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CurrentConnection,
  RealtimeException,
  RealtimeGateway,
  type RealtimeConnection,
  type RealtimeReply,
} from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import { assertAllEnvelopes, assertPingWorks } from './support/wire.js';

const SECRET_TEXT = 'secret internal /srv/app/internal/db.ts';

class TestChatDto {
  @IsString()
  @Matches(/^[\w-]{1,64}$/, { message: 'room must be 1-64 letters, digits, _ or -' })
  room!: string;

  @IsString()
  @IsNotEmpty()
  @MaxLength(500)
  text!: string;
}

@RealtimeGateway()
class TestGateway {
  @SubscribeMessage('chat.send')
  send(
    @MessageBody() dto: TestChatDto,
    @CurrentConnection() connection: RealtimeConnection,
  ): RealtimeReply {
    return {
      type: 'chat.sent',
      data: {
        room: dto.room,
        from: connection.userId,
        isDto: dto instanceof TestChatDto,
        fields: Object.keys(dto).sort(),
      },
    };
  }

  @SubscribeMessage('test.crash')
  crash(): never {
    throw new Error(SECRET_TEXT);
  }

  @SubscribeMessage('test.crash-async')
  async crashLater(): Promise<never> {
    await Promise.resolve();
    throw new Error(SECRET_TEXT);
  }

  @SubscribeMessage('test.reject')
  reject(): never {
    throw new WsException('nope');
  }

  @SubscribeMessage('test.custom')
  custom(): never {
    throw new RealtimeException('CUSTOM_CODE', 'msg');
  }

  @SubscribeMessage('test.bad-reply')
  badReply(): unknown[] {
    return [
      { type: 'test.null-data', data: null },
      { type: 'test.array-data', data: [1, 2] },
      { type: 'test.good', data: { ok: true } },
    ];
  }

  @SubscribeMessage('test.huge-reply')
  hugeReply(): RealtimeReply {
    return { type: 'test.huge', data: { blob: 'x'.repeat(70 * 1024) } };
  }

  @SubscribeMessage('test.many')
  many(): RealtimeReply[] {
    return [
      { type: 'test.one', data: { n: 1 } },
      { type: 'test.two', data: { n: 2 } },
    ];
  }
}

const HOST_TYPES = ['chat.send', 'test.crash', 'test.reject', 'test.custom'];

describe('host-defined handlers (@RealtimeGateway)', () => {
  let server: TestApp;
  let users = 0;
  before(async () => {
    server = await startTestApp({
      realtime: { rateLimitMessages: 5, rateLimitWindowMs: 60_000 },
      providers: [TestGateway],
    });
  });
  after(() => server.close());

  /** A fresh user per test: each test stays within the per-user limit of 5 messages. */
  function open(): Promise<TestClient> {
    return TestClient.open(server.wsUrl, server.token(`host-${++users}`));
  }

  it('lists the host types in connection.established features', async () => {
    const client = await open();
    const { features } = client.received[0]!.data;
    for (const type of [...HOST_TYPES, 'ping', 'subscribe', 'upload.cancel']) {
      assert.ok(features.includes(type), `features include ${type}`);
    }
    client.close();
  });

  it('answers a valid message with the handler reply, in reply to its id', async () => {
    const client = await open();
    const reply = await client.request({
      type: 'chat.send',
      data: { room: 'lobby', text: 'hello', extra: 'stripped' },
      id: 'chat-1',
    });
    assert.equal(reply.type, 'chat.sent');
    assert.equal(reply.in_reply_to, 'chat-1');
    assert.deepEqual(reply.data, {
      room: 'lobby',
      from: `host-${users}`,
      isDto: true,
      fields: ['room', 'text'],
    });
    assertAllEnvelopes(client);
    client.close();
  });

  it('sends every reply of a handler that returns several, in order', async () => {
    const client = await open();
    client.send({ type: 'test.many', id: 'many-1' });
    const first = await client.next();
    const second = await client.next();
    assert.deepEqual(
      [first.type, second.type, first.in_reply_to, second.in_reply_to],
      ['test.one', 'test.two', 'many-1', 'many-1'],
    );
    client.close();
  });

  it('answers INTERNAL_ERROR, and sends none of it, when a handler returns a malformed reply', async () => {
    const client = await open();
    const reply = await client.request({ type: 'test.bad-reply', id: 'bad-reply-1' });
    assert.equal(reply.type, 'error');
    assert.equal(reply.data.code, 'INTERNAL_ERROR');
    await assertPingWorks(client);
    assert.deepEqual(
      client.received.filter((m) => m.type.startsWith('test.')).map((m) => m.type),
      [],
    );
    assert.ok(server.logger.lines.some((line) => line.includes('handler.invalid_reply')));
    assertAllEnvelopes(client);
    client.close();
  });

  it('never sends a reply over max_message_size: answers MESSAGE_TOO_LARGE instead', async () => {
    const client = await open();
    const limit = client.received[0]!.data.limits.max_message_size as number;
    let biggest = 0;
    client.socket.on('message', (data: Buffer) => (biggest = Math.max(biggest, data.length)));
    const reply = await client.request({ type: 'test.huge-reply', id: 'huge-1' });
    assert.equal(reply.type, 'error');
    assert.equal(reply.data.code, 'MESSAGE_TOO_LARGE');
    await assertPingWorks(client);
    assert.ok(biggest <= limit, `no frame over ${limit} bytes (got ${biggest})`);
    assert.equal(client.ofType('test.huge').length, 0);
    client.close();
  });

  it('answers a DTO violation with INVALID_MESSAGE_FORMAT', async () => {
    const client = await open();
    for (const data of [
      { room: 'lobby' },
      { room: 'no spaces!', text: 'x' },
      { room: 1, text: 2 },
    ]) {
      const reply = await client.request({ type: 'chat.send', data });
      assert.equal(reply.type, 'error');
      assert.equal(reply.data.code, 'INVALID_MESSAGE_FORMAT');
      assert.match(reply.data.message, /room|text/);
    }
    await assertPingWorks(client);
    client.close();
  });

  it('answers a handler failure with INTERNAL_ERROR that does not leak the error', async () => {
    const client = await open();
    const bystander = await open();
    for (const type of ['test.crash', 'test.crash-async']) {
      const reply = await client.request({ type, id: `${type}-1` });
      assert.equal(reply.type, 'error');
      assert.equal(reply.data.code, 'INTERNAL_ERROR');
      assert.equal(reply.in_reply_to, `${type}-1`);
      assert.ok(!reply.data.message.includes('secret'), 'no error text');
      assert.ok(!reply.data.message.includes('/srv'), 'no internal path');
      assert.ok(!/\bat\s/.test(reply.data.message), 'no stack');
    }
    assert.ok(client.received.every((m) => !JSON.stringify(m).includes('secret')));
    await assertPingWorks(client);
    await assertPingWorks(bystander);
    assert.equal(client.closeInfo, undefined);
    assert.equal(bystander.closeInfo, undefined);
    client.close();
    bystander.close();
  });

  it('answers a WsException with REQUEST_REJECTED and its message', async () => {
    const client = await open();
    const reply = await client.request({ type: 'test.reject', id: 'rej-1' });
    assert.equal(reply.type, 'error');
    assert.equal(reply.in_reply_to, 'rej-1');
    assert.deepEqual(reply.data, { code: 'REQUEST_REJECTED', message: 'nope' });
    await assertPingWorks(client);
    client.close();
  });

  it('answers a RealtimeException with its own code', async () => {
    const client = await open();
    const reply = await client.request({ type: 'test.custom', id: 'custom-1' });
    assert.equal(reply.type, 'error');
    assert.equal(reply.in_reply_to, 'custom-1');
    assert.deepEqual(reply.data, { code: 'CUSTOM_CODE', message: 'msg' });
    await assertPingWorks(client);
    client.close();
  });

  it('applies the per-user rate limit to host types', async () => {
    const client = await open();
    const ids = Array.from({ length: 6 }, (_, i) => `rl-${i}`);
    for (const id of ids) client.send({ type: 'chat.send', data: { room: 'r', text: 't' }, id });
    await eventually(
      () => ids.every((id) => client.received.some((m) => m.in_reply_to === id)),
      3000,
      'six replies',
    );
    const replies = ids.map((id) => client.received.find((m) => m.in_reply_to === id)!);
    assert.deepEqual(
      replies.map((m) => m.type),
      ['chat.sent', 'chat.sent', 'chat.sent', 'chat.sent', 'chat.sent', 'error'],
    );
    assert.equal(replies[5]!.data.code, 'RATE_LIMIT_EXCEEDED');
    client.close();
  });
});

describe('host handlers with a host-wide ValidationPipe (APP_PIPE)', () => {
  let server: TestApp;
  let users = 0;
  before(async () => {
    server = await startTestApp({
      providers: [TestGateway, { provide: APP_PIPE, useValue: new ValidationPipe() }],
    });
  });
  after(() => server.close());

  function open(): Promise<TestClient> {
    return TestClient.open(server.wsUrl, server.token(`global-pipe-${++users}`));
  }

  it('still answers a bad subscribe with INVALID_MESSAGE_FORMAT', async () => {
    const client = await open();
    for (const data of [{ events: [] }, { events: [1] }, {}]) {
      const reply = await client.request({ type: 'subscribe', data });
      assert.equal(reply.type, 'error');
      assert.equal(reply.data.code, 'INVALID_MESSAGE_FORMAT');
    }
    const ok = await client.request({ type: 'subscribe', data: { events: ['file.ready'] } });
    assert.deepEqual(ok.data, { events: ['file.ready'], invalid_events: [] });
    client.close();
  });

  it('still answers built-in and host messages normally', async () => {
    const client = await open();
    await assertPingWorks(client);
    client.send({ type: 'heartbeat' });
    const cancel = await client.request({ type: 'upload.cancel', data: { upload_id: 'u1' } });
    assert.equal(cancel.type, 'upload.cancel.acknowledged');
    const chat = await client.request({ type: 'chat.send', data: { room: 'a', text: 'b' } });
    assert.equal(chat.type, 'chat.sent');
    const bad = await client.request({ type: 'chat.send', data: { room: 'a' } });
    assert.equal(bad.data.code, 'INVALID_MESSAGE_FORMAT');
    assert.equal(client.ofType('error').length, 1, 'the heartbeat was not answered with an error');
    client.close();
  });
});
