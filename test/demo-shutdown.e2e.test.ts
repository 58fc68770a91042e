import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplication } from '@nestjs/common';
import { createDemoApp } from '../src/demo/bootstrap.js';
import { loadDemoConfig } from '../src/demo/demo-config.js';
import { DemoTokens } from '../src/demo/demo.tokens.js';
import { TestClient } from './support/test-client.js';

const SECRET = 'demo-shutdown-test-secret-0123456789abcdef';
// Well under the 10 s the module bounds a request's headers by: a connection that held close up
// would be dropped by that timeout, not by the close.
const CLOSE_BOUND_MS = 5_000;

const opened: Socket[] = [];

/** A TCP connection to the app that has sent `text` and nothing more. */
async function rawConnection(port: number, text: string): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  opened.push(socket);
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(text);
  return socket;
}

describe('demo: app.close() with HTTP connections open', () => {
  let app: INestApplication;
  let port: number;
  before(async () => {
    const env = { PORT: '0', JWT_SECRET: SECRET, LOG_LEVEL: 'error' } as NodeJS.ProcessEnv;
    app = await createDemoApp(loadDemoConfig(env));
    await app.listen(0, '127.0.0.1');
    port = (app.getHttpServer().address() as AddressInfo).port;
  });
  after(async () => {
    // On a failure, these would keep the test process alive.
    for (const socket of opened) socket.destroy();
    await app.close().catch(() => undefined);
  });

  it('ends an unfinished request and an idle keep-alive connection, after closing WebSockets with 1001', async () => {
    const client = await TestClient.open(
      `ws://127.0.0.1:${port}/ws`,
      new DemoTokens(SECRET).sign('closing-user', false, 600),
    );
    // Headers never finished: Node counts this request as active, and its server.close() waits.
    const unfinished = await rawConnection(port, 'GET /demo HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // A whole request answered, the connection kept for the next one.
    const keptAlive = await rawConnection(
      port,
      'GET /ws/not-found HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n',
    );
    await once(keptAlive, 'data');
    const ended = [unfinished, keptAlive].map((socket) => once(socket, 'close'));

    const closing = app.close().then(() => 'closed' as const);
    const bound = sleep(CLOSE_BOUND_MS, 'timeout' as const, { ref: false });
    assert.equal(await Promise.race([closing, bound]), 'closed', 'app.close() was held up');
    await Promise.all(ended);
    // The WebSocket was closed as the module closes it, not dropped with the HTTP connections.
    assert.equal((await client.next('system.maintenance')).type, 'system.maintenance');
    assert.deepEqual(await client.waitClose(), { code: 1001, reason: 'Going away' });
  });
});
