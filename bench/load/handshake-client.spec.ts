import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer } from 'ws';
import { handshake } from './handshake-client.js';

const who = { index: 7, user: 'u 7', token: 'a.b.c' };
const established = (pad = '') =>
  JSON.stringify({ type: 'connection.established', data: { user_id: 'u 7', pad } });

async function wsServer(first: (url: string) => string | undefined): Promise<WebSocketServer> {
  const server = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: ({ req }: { req: IncomingMessage }) => req.url !== '/ws?token=refused&user=u%207',
  });
  server.on('connection', (socket, request) => {
    const message = first(request.url ?? '');
    if (message !== undefined) socket.send(message);
  });
  await once(server, 'listening');
  return server;
}

const portOf = (server: WebSocketServer | Server) => (server.address() as { port: number }).port;

/** Like `handshake`, but a client that connected when it should not have is closed, not leaked. */
async function refusedHandshake(port: number, identity: typeof who): Promise<void> {
  const client = await handshake(port, identity);
  client.close();
  throw new Error('handshake resolved');
}

describe('handshake (the connect rounds client)', () => {
  const servers: { close(): unknown }[] = [];
  after(() => servers.forEach((server) => server.close()));

  it('resolves at connection.established, with the token and user in the query', async () => {
    let url = '';
    const server = await wsServer((requestUrl) => {
      url = requestUrl;
      return established('x'.repeat(400)); // over 125 bytes: a 16-bit length
    });
    servers.push(server);
    const client = await handshake(portOf(server), who);
    assert.equal(url, '/ws?token=a.b.c&user=u%207');
    const [socket] = [...server.clients];
    const closed = once(socket!, 'close');
    client.close();
    await closed;
  });

  it('rejects a first message of another type', async () => {
    const server = await wsServer(() => JSON.stringify({ type: 'error', data: {} }));
    servers.push(server);
    await assert.rejects(refusedHandshake(portOf(server), who), /client 7: first message was not/);
  });

  it('rejects a refused upgrade with the status line', async () => {
    const server = await wsServer(() => established());
    servers.push(server);
    await assert.rejects(
      refusedHandshake(portOf(server), { ...who, token: 'refused' }),
      /answered HTTP\/1\.1 401 Unauthorized/,
    );
  });

  it('rejects a close before any message', async () => {
    const server = await wsServer(() => undefined);
    server.on('connection', (socket) => socket.close(4001, 'Unauthorized'));
    servers.push(server);
    await assert.rejects(refusedHandshake(portOf(server), who), /first frame has opcode 8/);
  });

  it('waits for a response head and frame that arrive a few bytes at a time', async () => {
    const message = Buffer.from(established('y'.repeat(200)));
    const bytes = Buffer.concat([
      Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n'),
      Buffer.from([0x81, 126, message.length >> 8, message.length & 0xff]),
      message,
    ]);
    const server = createServer((socket: Socket) => {
      socket.once('data', async () => {
        for (let at = 0; at < bytes.length; at += 37) {
          socket.write(bytes.subarray(at, at + 37));
          await sleep(1);
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
    const client = await handshake(portOf(server), who);
    client.close();
  });
});
