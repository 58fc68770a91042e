import {
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  type NestInterceptor,
  ParseIntPipe,
  type PipeTransform,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
} from '@nestjs/common';
import { MessageBody, SubscribeMessage, WebSocketGateway, WsException } from '@nestjs/websockets';
import { IsString, MaxLength } from 'class-validator';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { map, type Observable, of } from 'rxjs';
import { compileDirectHandlers } from '../src/realtime/gateway/direct-handlers.js';
import { RealtimeExceptionFilter } from '../src/realtime/gateway/realtime-exception.filter.js';
import {
  RealtimeAuthGuard,
  RealtimeGateway,
  type RealtimeConnection,
  type RealtimeReply,
} from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import { assertPingWorks } from './support/wire.js';

/**
 * Guards and pipes a host puts on its handlers work as Nest runs them, now that the module calls
 * handlers directly instead of through Nest's per-message pipeline.
 */
class DenyGuard implements CanActivate {
  canActivate(): boolean {
    return false;
  }
}

class AsyncAllowGuard implements CanActivate {
  async canActivate(): Promise<boolean> {
    await Promise.resolve();
    return true;
  }
}

class ObservableDenyGuard implements CanActivate {
  canActivate(): Observable<boolean> {
    return of(false);
  }
}

class ThrowingGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const data = context.switchToWs().getData<{ who?: string }>();
    throw new WsException(`no entry for ${data.who ?? 'anyone'}`);
  }
}

class PassInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle();
  }
}

/** Marks the reply, so that a test sees the interceptor ran around the handler. */
class MarkInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next
      .handle()
      .pipe(map((reply: RealtimeReply) => ({ ...reply, data: { ...reply.data, marked: true } })));
  }
}

/** Answers later, as a pipe that looks something up would. */
class ShoutPipe implements PipeTransform {
  async transform(value: unknown): Promise<unknown> {
    await new Promise((resolve) => setImmediate(resolve));
    const dto = value as TextDto;
    return Object.assign(dto, { text: dto.text.toUpperCase() });
  }
}

class TextDto {
  @IsString()
  @MaxLength(20)
  text!: string;
}

/**
 * The module's auth guard made stricter by a host: as the only guard of a gateway it must run
 * as written (the module checks its own guard without an ExecutionContext, never a subclass).
 */
class NoGuestsGuard extends RealtimeAuthGuard {
  override canActivate(context: ExecutionContext): boolean {
    const inbound = context.switchToWs().getData<unknown>();
    const connection = context.getArgByIndex<{ connection: RealtimeConnection }>(2).connection;
    return (
      super.canActivate(context) && inbound !== undefined && !connection.userId.startsWith('guest')
    );
  }
}

@WebSocketGateway()
@UseGuards(NoGuestsGuard)
@UseFilters(RealtimeExceptionFilter)
class MembersGateway {
  @SubscribeMessage('members.only')
  members(): RealtimeReply {
    return { type: 'members.welcome', data: {} };
  }
}

@RealtimeGateway()
class EnhancedGateway {
  @SubscribeMessage('guard.deny')
  @UseGuards(DenyGuard)
  denied(): RealtimeReply {
    return { type: 'guard.passed', data: {} };
  }

  @SubscribeMessage('guard.async')
  @UseGuards(AsyncAllowGuard)
  asyncAllowed(): RealtimeReply {
    return { type: 'guard.passed', data: {} };
  }

  @SubscribeMessage('guard.observable')
  @UseGuards(ObservableDenyGuard)
  observableDenied(): RealtimeReply {
    return { type: 'guard.passed', data: {} };
  }

  @SubscribeMessage('guard.throws')
  @UseGuards(ThrowingGuard)
  guardThrows(): RealtimeReply {
    return { type: 'guard.passed', data: {} };
  }

  @SubscribeMessage('param.pipe')
  count(@MessageBody('n', ParseIntPipe) n: number): RealtimeReply {
    return { type: 'param.done', data: { n } };
  }

  @SubscribeMessage('async.pipe')
  @UsePipes(ShoutPipe)
  shout(@MessageBody() dto: TextDto): RealtimeReply {
    return { type: 'async.done', data: { text: dto.text, isDto: dto instanceof TextDto } };
  }

  @SubscribeMessage('intercepted')
  @UseInterceptors(PassInterceptor)
  intercepted(): void {
    interceptedCalls++;
  }

  @SubscribeMessage('intercepted.reply')
  @UseInterceptors(MarkInterceptor)
  async interceptedReply(@MessageBody() data: { n?: number }): Promise<RealtimeReply> {
    await Promise.resolve();
    return { type: 'intercepted.done', data: { n: data.n ?? 0 } };
  }

  @SubscribeMessage('observable.replies')
  observableReplies(): Observable<RealtimeReply> {
    return of({ type: 'observable.first', data: {} }, { type: 'observable.second', data: {} });
  }

  @SubscribeMessage('raw.args')
  raw(...args: unknown[]): RealtimeReply {
    return {
      type: 'raw.done',
      data: { count: args.length, data: args[1] as object, ack: typeof args[2] },
    };
  }
}

let interceptedCalls = 0;

describe('host handlers with their own guards and pipes', () => {
  let server: TestApp;
  let users = 0;
  before(async () => {
    server = await startTestApp({ providers: [EnhancedGateway, MembersGateway, ShoutPipe] });
  });
  after(() => server.close());

  function open(): Promise<TestClient> {
    return TestClient.open(server.wsUrl, server.token(`enhanced-${++users}`));
  }

  it('answers REQUEST_REJECTED "Forbidden resource" when a guard says no, sync or not', async () => {
    const client = await open();
    for (const type of ['guard.deny', 'guard.observable']) {
      const reply = await client.request({ type, id: `${type}-1` });
      assert.equal(reply.in_reply_to, `${type}-1`);
      assert.deepEqual(reply.data, { code: 'REQUEST_REJECTED', message: 'Forbidden resource' });
    }
    const allowed = await client.request({ type: 'guard.async' });
    assert.equal(allowed.type, 'guard.passed');
    await assertPingWorks(client);
    client.close();
  });

  it("runs a subclass of the module's auth guard as written, when it is the only guard", async () => {
    const guest = await TestClient.open(server.wsUrl, server.token(`guest-${++users}`));
    const refused = await guest.request({ type: 'members.only' });
    assert.deepEqual(refused.data, { code: 'REQUEST_REJECTED', message: 'Forbidden resource' });
    const member = await open();
    assert.equal((await member.request({ type: 'members.only' })).type, 'members.welcome');
    guest.close();
    member.close();
  });

  it('hands a guard the message data and answers what it throws', async () => {
    const client = await open();
    const reply = await client.request({ type: 'guard.throws', data: { who: 'eve' } });
    assert.deepEqual(reply.data, { code: 'REQUEST_REJECTED', message: 'no entry for eve' });
    client.close();
  });

  it('runs parameter pipes on a property of the data', async () => {
    const client = await open();
    const reply = await client.request({ type: 'param.pipe', data: { n: '42' } });
    assert.deepEqual(reply.data, { n: 42 });
    const bad = await client.request({ type: 'param.pipe', data: { n: 'many' } });
    assert.deepEqual(bad.data, {
      code: 'INVALID_MESSAGE_FORMAT',
      message: 'Validation failed (numeric string is expected)',
    });
    client.close();
  });

  it('runs an asynchronous method pipe after the validation, keeping replies in order', async () => {
    const client = await open();
    client.send({ type: 'async.pipe', data: { text: 'quiet' }, id: 'shout-1' });
    client.send({ type: 'ping', id: 'ping-after' });
    client.send({ type: 'async.pipe', data: { text: 'x'.repeat(21) }, id: 'shout-2' });
    await eventually(() => client.ofType('error').length === 1, 3000, 'three answers');
    const answers = client.received.filter((m) => m.in_reply_to !== undefined);
    assert.deepEqual(
      answers.map((m) => [m.in_reply_to, m.type]),
      [
        ['shout-1', 'async.done'],
        ['ping-after', 'pong'],
        ['shout-2', 'error'],
      ],
    );
    assert.deepEqual(answers[0]!.data, { text: 'QUIET', isDto: true });
    assert.equal(answers[2]!.data.code, 'INVALID_MESSAGE_FORMAT');
    client.close();
  });

  it('gives a handler without decorated parameters the socket, the data and no ack', async () => {
    const client = await open();
    const reply = await client.request({ type: 'raw.args', data: { a: 1 } });
    assert.deepEqual(reply.data, { count: 3, data: { a: 1 }, ack: 'undefined' });
    client.close();
  });

  it('runs a handler with interceptors, answering what the interceptors make of its reply', async () => {
    const client = await open();
    const reply = await client.request({ type: 'intercepted.reply', data: { n: 7 } });
    assert.equal(reply.type, 'intercepted.done');
    assert.deepEqual(reply.data, { n: 7, marked: true });
    const before = interceptedCalls;
    client.send({ type: 'intercepted', id: 'silent-1' });
    await assertPingWorks(client);
    assert.equal(interceptedCalls, before + 1);
    assert.equal(client.received.filter((m) => m.in_reply_to === 'silent-1').length, 0);
    client.close();
  });

  it('answers every value an Observable returned by a handler emits, in order', async () => {
    const client = await open();
    client.send({ type: 'observable.replies', id: 'obs-1' });
    await eventually(
      () => client.received.filter((m) => m.in_reply_to === 'obs-1').length === 2,
      3000,
      'two replies',
    );
    assert.deepEqual(
      client.received.filter((m) => m.in_reply_to === 'obs-1').map((m) => m.type),
      ['observable.first', 'observable.second'],
    );
    client.close();
  });

  it('calls handlers directly, except those with interceptors (Nest runs them)', () => {
    const direct = compileDirectHandlers(server.app);
    for (const type of ['ping', 'subscribe', 'resume', 'guard.deny', 'param.pipe', 'raw.args']) {
      assert.ok(direct.has(type), type);
    }
    assert.equal(direct.has('intercepted'), false);
  });
});
