import type { Provider } from '@nestjs/common';
import {
  type OnGatewayConnection,
  type OnGatewayDisconnect,
  SubscribeMessage,
} from '@nestjs/websockets';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import {
  CurrentConnection,
  type RealtimeConnection,
  RealtimeGateway,
  type RealtimeReply,
} from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import { assertPingWorks } from './support/wire.js';

/**
 * Quiet gateways (static, no connection hooks, direct handlers only) skip Nest's connect callback
 * after the first connection. Every test opens several connections one after the other: the first
 * one runs Nest's callbacks as they are, the later ones take the shortcut.
 */

interface HookCall {
  gateway: string;
  kind: 'connect' | 'disconnect';
  socket: WebSocket;
  authorization?: string;
}
const hookCalls: HookCall[] = [];

@RealtimeGateway()
class QuietGateway {
  @SubscribeMessage('quiet.echo')
  echo(): RealtimeReply {
    return { type: 'quiet.echoed', data: { ok: true } };
  }
}

/** A gateway with no handlers and no hooks: nothing to do per connection. */
@RealtimeGateway()
class EmptyGateway {}

@RealtimeGateway()
class HookedGateway implements OnGatewayConnection, OnGatewayDisconnect {
  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    hookCalls.push({
      gateway: 'hooked',
      kind: 'connect',
      socket,
      authorization: request.headers.authorization,
    });
  }

  handleDisconnect(socket: WebSocket): void {
    hookCalls.push({ gateway: 'hooked', kind: 'disconnect', socket });
  }

  @SubscribeMessage('hooked.echo')
  echo(): RealtimeReply {
    return { type: 'hooked.echoed', data: { ok: true } };
  }
}

/** Hooks and no handlers: its callback cannot be told from another by what it binds. */
@RealtimeGateway()
class HookOnlyGateway implements OnGatewayConnection, OnGatewayDisconnect {
  handleConnection(socket: WebSocket): void {
    hookCalls.push({ gateway: 'hook-only', kind: 'connect', socket });
  }

  handleDisconnect(socket: WebSocket): void {
    hookCalls.push({ gateway: 'hook-only', kind: 'disconnect', socket });
  }
}

/**
 * Two gateways handling one type: neither handler is direct (which one answers is Nest's binding
 * order), so both stay on Nest's path, bound to each socket.
 */
@RealtimeGateway()
class SharedTypeGateway {
  @SubscribeMessage('shared.echo')
  echo(@CurrentConnection() connection: RealtimeConnection): RealtimeReply {
    return { type: 'shared.echoed', data: { by: 'first', user: connection.userId } };
  }
}

@RealtimeGateway()
class SharedTypeAgainGateway {
  @SubscribeMessage('shared.echo')
  echo(@CurrentConnection() connection: RealtimeConnection): RealtimeReply {
    return { type: 'shared.echoed', data: { by: 'second', user: connection.userId } };
  }
}

const MODULE_TYPES = ['ping', 'subscribe', 'unsubscribe', 'upload.cancel'];

async function withApp(providers: Provider[], body: (server: TestApp) => Promise<void>) {
  hookCalls.length = 0;
  const server = await startTestApp({ providers });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

let users = 0;
function open(server: TestApp): { token: string; client: Promise<TestClient> } {
  const token = server.token(`quiet-${++users}`);
  return { token, client: TestClient.open(server.wsUrl, token) };
}

/** Sends `shared.echo`: the answer must come from the connection it was sent on. */
async function assertShared(client: TestClient): Promise<string> {
  const reply = await client.request({ type: 'shared.echo' });
  assert.equal(reply.type, 'shared.echoed', JSON.stringify(reply.data));
  assert.equal(reply.data.user, client.received[0]!.data.user_id, 'bound to its own socket');
  return reply.data.by as string;
}

async function assertAnswers(client: TestClient, type: string, replyType: string): Promise<void> {
  const reply = await client.request({ type, id: `${type}-1` });
  assert.equal(reply.type, replyType, `${type} answered: ${JSON.stringify(reply.data)}`);
  assert.equal(reply.in_reply_to, `${type}-1`);
}

function features(client: TestClient): string[] {
  return client.received[0]!.data.features as string[];
}

/** The close listeners on the server side of the connection the hooked gateway saw last. */
function serverCloseListeners(): number {
  const connect = hookCalls.filter((call) => call.kind === 'connect').at(-1)!;
  return connect.socket.listenerCount('close');
}

describe('quiet gateways (connect shortcut)', () => {
  // Nest binds the first gateway it finds last: the hooked one is bound first, then last.
  for (const providers of [
    [QuietGateway, HookedGateway],
    [HookedGateway, QuietGateway],
  ]) {
    const order = providers.map((gateway) => gateway.name).join(', ');
    it(`calls handleConnection and handleDisconnect for every connection (${order})`, async () => {
      await withApp(providers, async (server) => {
        const listeners: number[] = [];
        for (let n = 1; n <= 4; n++) {
          const { token, client: opening } = open(server);
          const client = await opening;
          const connects = hookCalls.filter((c) => c.gateway === 'hooked' && c.kind === 'connect');
          assert.equal(connects.length, n, `handleConnection for connection ${n}`);
          const { socket, authorization } = connects.at(-1)!;
          assert.ok(socket instanceof WebSocket, 'handleConnection gets the socket');
          assert.equal(socket.readyState, WebSocket.OPEN);
          assert.equal(authorization, `Bearer ${token}`, 'and the upgrade request');
          listeners.push(serverCloseListeners());
          await assertAnswers(client, 'hooked.echo', 'hooked.echoed');
          await assertAnswers(client, 'quiet.echo', 'quiet.echoed');
          client.close();
          await eventually(
            () => hookCalls.some((c) => c.kind === 'disconnect' && c.socket === socket),
            3000,
            `handleDisconnect for connection ${n}`,
          );
          const disconnects = hookCalls.filter((c) => c.kind === 'disconnect');
          assert.equal(disconnects.length, n, 'handleDisconnect once per connection');
        }
        // The quiet gateways bound after the hooked one took the shortcut on later connections
        // (no close listener of their own); those bound before it kept Nest's callback.
        const skipped = providers[0] === QuietGateway ? 2 : 0;
        assert.equal(listeners[0]! - listeners[1]!, skipped, `listeners: ${listeners.join(', ')}`);
        assert.deepEqual(listeners.slice(1), [listeners[1], listeners[1], listeners[1]]);
      });
    });
  }

  it('calls the hooks of a gateway without handlers on every connection', async () => {
    await withApp([QuietGateway, HookOnlyGateway, EmptyGateway], async (server) => {
      const sockets: WebSocket[] = [];
      for (let n = 1; n <= 3; n++) {
        const client = await open(server).client;
        const connects = hookCalls.filter((c) => c.kind === 'connect');
        assert.equal(connects.length, n, `handleConnection for connection ${n}`);
        sockets.push(connects.at(-1)!.socket);
        await assertAnswers(client, 'quiet.echo', 'quiet.echoed');
        client.close();
      }
      await eventually(
        () =>
          sockets.every((s) => hookCalls.some((c) => c.kind === 'disconnect' && c.socket === s)),
        3000,
        'handleDisconnect for every connection',
      );
      assert.equal(hookCalls.filter((c) => c.kind === 'disconnect').length, 3);
    });
  });

  it("serves the module's handlers and a host gateway's direct handler on every connection", async () => {
    await withApp([QuietGateway, EmptyGateway], async (server) => {
      const seen: string[][] = [];
      const clients: TestClient[] = [];
      for (let n = 1; n <= 4; n++) {
        const client = await open(server).client;
        clients.push(client);
        seen.push(features(client));
        await assertPingWorks(client, `ping-${n}`);
        await assertAnswers(client, 'quiet.echo', 'quiet.echoed');
        const ok = await client.request({ type: 'subscribe', data: { events: ['file.ready'] } });
        assert.deepEqual(ok.data, { events: ['file.ready'], invalid_events: [] });
        const cancel = await client.request({ type: 'upload.cancel', data: { upload_id: 'u1' } });
        assert.equal(cancel.type, 'upload.cancel.acknowledged');
      }
      for (const type of [...MODULE_TYPES, 'quiet.echo']) {
        assert.ok(seen[0]!.includes(type), `features include ${type}`);
      }
      // The same features, in the same order, whether Nest bound them or the shortcut did.
      for (const later of seen.slice(1)) assert.deepEqual(later, seen[0]);
      // Every connection still answers after the others connected.
      for (const client of clients) await assertAnswers(client, 'quiet.echo', 'quiet.echoed');
      for (const client of clients) client.close();
    });
  });

  it('serves handlers that are not direct on every connection', async () => {
    await withApp([SharedTypeGateway, QuietGateway, SharedTypeAgainGateway], async (server) => {
      const answeredBy: string[] = [];
      const clients: TestClient[] = [];
      for (let n = 1; n <= 4; n++) {
        const client = await open(server).client;
        clients.push(client);
        assert.ok(features(client).includes('shared.echo'));
        answeredBy.push(await assertShared(client));
        await assertAnswers(client, 'quiet.echo', 'quiet.echoed');
        await assertPingWorks(client);
      }
      // As on the first connection (the gateway Nest bound last answers).
      assert.deepEqual(answeredBy, Array(4).fill(answeredBy[0]));
      for (const client of clients) await assertShared(client);
      for (const client of clients) client.close();
    });
  });

  it('mixes quiet and non-quiet gateways in one app', async () => {
    await withApp(
      [QuietGateway, HookedGateway, SharedTypeGateway, EmptyGateway, SharedTypeAgainGateway],
      async (server) => {
        const seen: string[][] = [];
        const sockets: WebSocket[] = [];
        const clients: TestClient[] = [];
        const listeners: number[] = [];
        const answeredBy: string[] = [];
        for (let n = 1; n <= 4; n++) {
          const client = await open(server).client;
          clients.push(client);
          seen.push(features(client));
          const connects = hookCalls.filter((c) => c.kind === 'connect');
          assert.equal(connects.length, n, `handleConnection for connection ${n}`);
          sockets.push(connects.at(-1)!.socket);
          listeners.push(serverCloseListeners());
          await assertAnswers(client, 'hooked.echo', 'hooked.echoed');
          await assertAnswers(client, 'quiet.echo', 'quiet.echoed');
          answeredBy.push(await assertShared(client));
          await assertPingWorks(client);
        }
        // The same features, in the same order, whether Nest bound them or the shortcut did.
        for (const later of seen.slice(1)) assert.deepEqual(later, seen[0]);
        for (const type of [...MODULE_TYPES, 'hooked.echo', 'quiet.echo', 'shared.echo']) {
          assert.ok(seen[0]!.includes(type), `features include ${type}`);
        }
        assert.deepEqual(answeredBy, Array(4).fill(answeredBy[0]));
        // Bound after the hooked one, the quiet, empty and module gateways took the shortcut on later connections.
        assert.equal(listeners[0]! - listeners[1]!, 3, `listeners: ${listeners.join(', ')}`);
        // Earlier connections are unaffected by the later ones' maps.
        for (const client of clients) {
          await assertAnswers(client, 'quiet.echo', 'quiet.echoed');
          await assertShared(client);
        }
        for (const client of clients) client.close();
        await eventually(
          () =>
            sockets.every((s) => hookCalls.some((c) => c.kind === 'disconnect' && c.socket === s)),
          3000,
          'handleDisconnect for every connection',
        );
        assert.equal(hookCalls.filter((c) => c.kind === 'disconnect').length, 4);
      },
    );
  });
});
