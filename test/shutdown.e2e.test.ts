import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tryUpgrade } from './support/jwt-craft.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TestClient } from './support/test-client.js';

const GOING_AWAY = { code: 1001, reason: 'Going away' };
const CLOSE_BOUND_MS = 10_000;

/** `app.close()`, failing instead of hanging when it does not resolve within the bound. */
async function closeWithin(server: TestApp, ms = CLOSE_BOUND_MS): Promise<void> {
  const timeout = sleep(ms, 'timeout' as const, { ref: false });
  const result = await Promise.race([server.close().then(() => 'closed' as const), timeout]);
  assert.equal(result, 'closed', `app.close() did not resolve within ${ms} ms`);
}

describe('shutdown: connected clients', () => {
  let server: TestApp;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startTestApp();
  });
  after(async () => {
    for (const client of clients) client.close();
    await server.close();
  });

  it('sends system.maintenance then closes 1001 "Going away" to every client on app.close()', async () => {
    clients.push(await TestClient.open(server.wsUrl, server.token('s1')));
    clients.push(await TestClient.open(server.wsUrl, server.token('s2')));
    const [a, b] = clients as [TestClient, TestClient];
    const closing = closeWithin(server);
    for (const client of [a, b]) {
      const maintenance = await client.next('system.maintenance');
      assert.equal(typeof maintenance.data.message, 'string');
      assert.ok(maintenance.data.message.length > 0);
      assert.ok(!Number.isNaN(Date.parse(maintenance.data.timestamp)));
      assert.deepEqual(await client.waitClose(), GOING_AWAY);
      assert.equal(client.received.at(-1)!.type, 'system.maintenance', 'maintenance comes last');
    }
    await closing;
  });

  it('refuses new connections after app.close()', async () => {
    const outcome = await tryUpgrade(server.wsUrl, {
      authorization: `Bearer ${server.token('late')}`,
    });
    assert.equal(outcome.kind, 'refused');
    assert.match(outcome.kind === 'refused' ? outcome.message : '', /ECONNREFUSED/);
  });
});

describe('shutdown: a client that stops reading', () => {
  let server: TestApp;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startTestApp({ realtime: { closeGraceMs: 500 } });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server.close();
  });

  it('does not make app.close() hang when a client never reads (paused socket)', async () => {
    const stuck = await TestClient.open(server.wsUrl, server.token('stuck'));
    clients.push(stuck);
    stuck.socket.pause();
    const rawStuck = await TestClient.open(server.wsUrl, server.token('raw-stuck'));
    clients.push(rawStuck);
    (rawStuck.socket as any)._socket.pause();
    const healthy = await TestClient.open(server.wsUrl, server.token('healthy'));
    clients.push(healthy);

    const closing = closeWithin(server);
    // the reading client gets the orderly close while the stuck ones hold the grace period
    await healthy.next('system.maintenance');
    assert.deepEqual(await healthy.waitClose(), GOING_AWAY);

    // shutting down: a new connection is closed 1001 without being admitted (or, once the
    // HTTP server has closed too, refused outright)
    const late = TestClient.connect(server.wsUrl, server.token('late'));
    clients.push(late);
    late.opened.catch(() => undefined);
    const info = await late.waitClose();
    assert.equal(late.ofType('connection.established').length, 0);
    assert.ok(info.code === 1001 || info.code === 1006, `closed ${info.code} ${info.reason}`);
    if (info.code === 1001) assert.equal(info.reason, 'Going away');

    await closing;
  });

  it('refuses new connections once closed', async () => {
    const outcome = await tryUpgrade(server.wsUrl, {
      authorization: `Bearer ${server.token('late')}`,
    });
    assert.equal(outcome.kind, 'refused');
    assert.match(outcome.kind === 'refused' ? outcome.message : '', /ECONNREFUSED/);
  });
});

describe('shutdown: an idle client', () => {
  let server: TestApp;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startTestApp({ realtime: { closeGraceMs: 500 } });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server.close();
  });

  it('closes without hanging while a client that sends nothing holds an open connection', async () => {
    const idle = await TestClient.open(server.wsUrl, server.token('idle'), { autoPong: false });
    clients.push(idle);
    await closeWithin(server);
    assert.deepEqual(await idle.waitClose(), GOING_AWAY);
  });
});

describe('shutdown: a peer refused with 404 that keeps its side open', () => {
  let server: TestApp;
  let peer: Socket | undefined;
  before(async () => {
    server = await startTestApp();
  });
  after(async () => {
    peer?.destroy();
    await server.close();
  });

  it('drops the refused socket, so that app.close() does not wait for the peer', async () => {
    const { port } = new URL(server.wsUrl);
    // allowHalfOpen: the peer reads the answer and its end, and never ends its own side.
    peer = connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
    peer.on('error', () => undefined);
    await once(peer, 'connect');
    let answer = '';
    peer.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    const ended = once(peer, 'end');
    peer.write(
      `GET /other HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
    );
    await ended;
    assert.match(answer, /^HTTP\/1\.1 404 /);
    await closeWithin(server);
  });
});
