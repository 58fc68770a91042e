import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { hs256Token, nowSeconds } from './support/jwt-craft.js';
import { clientPool } from './support/client-pool.js';
import { startTestApp, TEST_SECRET, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';

const HEARTBEAT_MS = 100;
const TIMEOUT_MS = 400;
const CONNECTION_TIMEOUT = { code: 4000, reason: 'Connection timeout' };
const TOKEN_EXPIRED = { code: 4001, reason: 'Token expired' };

async function assertUsable(client: TestClient): Promise<void> {
  const reply = await client.request({ type: 'ping', data: { pingId: 'alive' } });
  assert.equal(reply.type, 'pong');
  assert.equal(client.closeInfo, undefined);
}

describe('liveness: server pings and connection timeout', () => {
  let server: TestApp;
  const pool = clientPool();
  before(async () => {
    server = await startTestApp({
      realtime: { heartbeatIntervalMs: HEARTBEAT_MS, connectionTimeoutMs: TIMEOUT_MS },
    });
  });
  afterEach(() => pool.closeAll());
  after(() => server.close());

  it('announces the heartbeat interval and connection timeout in connection.established', async () => {
    const client = await pool.open(server.wsUrl, server.token('l0'));
    const { limits } = client.received[0]!.data;
    assert.equal(limits.heartbeat_interval, HEARTBEAT_MS / 1000);
    assert.equal(limits.connection_timeout, TIMEOUT_MS / 1000);
  });

  it('sends WebSocket ping frames to the client', async () => {
    const client = await pool.open(server.wsUrl, server.token('l1'));
    let pings = 0;
    client.socket.on('ping', () => pings++);
    await eventually(() => pings >= 3, 3000, 'three ping frames arrived');
  });

  it('closes with 4000 "Connection timeout" a client that answers no ping and sends nothing', async () => {
    const client = await pool.open(server.wsUrl, server.token('l2'), { autoPong: false });
    let pings = 0;
    client.socket.on('ping', () => pings++);
    const info = await client.waitClose(5000);
    assert.deepEqual(info, CONNECTION_TIMEOUT);
    assert.ok(pings >= 1, 'it was pinged before being timed out');
  });

  it('keeps open a client that answers pings (autoPong) past several timeouts', async () => {
    const client = await pool.open(server.wsUrl, server.token('l3'));
    await sleep(TIMEOUT_MS * 4);
    assert.equal(client.closeInfo, undefined);
    await assertUsable(client);
  });

  it('keeps open a client without autoPong that sends heartbeat messages', async () => {
    const client = await pool.open(server.wsUrl, server.token('l4'), { autoPong: false });
    for (let i = 0; i < 16; i++) {
      client.send({ type: 'heartbeat', data: {} });
      await sleep(HEARTBEAT_MS);
      assert.equal(client.closeInfo, undefined, `open after ${i + 1} heartbeats`);
    }
    await assertUsable(client);
    // heartbeat has no answer
    assert.deepEqual(
      client.received.map((m) => m.type),
      ['connection.established', 'pong'],
    );
  });

  it('keeps open a client without autoPong that sends ping messages, then times it out when it stops', async () => {
    const client = await pool.open(server.wsUrl, server.token('l5'), { autoPong: false });
    for (let i = 0; i < 8; i++) {
      await assertUsable(client);
      await sleep(HEARTBEAT_MS * 2);
    }
    assert.deepEqual(await client.waitClose(5000), CONNECTION_TIMEOUT);
  });

  it('times out one silent client without touching the others', async () => {
    const silent = await pool.open(server.wsUrl, server.token('l6'), { autoPong: false });
    const live = await pool.open(server.wsUrl, server.token('l6'));
    assert.deepEqual(await silent.waitClose(5000), CONNECTION_TIMEOUT);
    await assertUsable(live);
  });
});

describe('liveness: server pings of a burst of connections', () => {
  // Liveness ticks every 200 ms (a tenth of the timeout), three per heartbeat interval.
  const HEARTBEAT = 600;
  const TICK = 200;
  let server: TestApp;
  const pool = clientPool();
  before(async () => {
    server = await startTestApp({
      realtime: { heartbeatIntervalMs: HEARTBEAT, connectionTimeoutMs: 2000 },
    });
  });
  afterEach(() => pool.closeAll());
  after(() => server.close());

  it('spreads the first pings over the interval instead of sending them all in one tick', async () => {
    const opened = performance.now();
    const clients = await Promise.all(
      Array.from({ length: 30 }, (_, i) => pool.open(server.wsUrl, server.token(`burst-${i}`))),
    );
    const firstPings: number[] = [];
    for (const client of clients) {
      client.socket.once('ping', () => firstPings.push(performance.now()));
    }
    await eventually(() => firstPings.length === clients.length, 5000, 'every client pinged');
    const spread = Math.max(...firstPings) - Math.min(...firstPings);
    // In one tick they would all arrive within a few ms; three groups span two ticks.
    assert.ok(spread >= TICK * 0.75, `first pings within ${spread.toFixed(0)} ms`);
    // And none later than an interval and a tick after the burst, with room for a slow machine.
    const latest = Math.max(...firstPings) - opened;
    assert.ok(
      latest <= HEARTBEAT + 2 * TICK + 500,
      `last first ping after ${latest.toFixed(0)} ms`,
    );
    for (const client of clients) await assertUsable(client);
  });
});

describe('liveness: token expiry', () => {
  let server: TestApp;
  const pool = clientPool();
  before(async () => {
    server = await startTestApp();
  });
  afterEach(() => pool.closeAll());
  after(() => server.close());

  it('closes with 4001 "Token expired" when the token expires while connected, and works until then', async () => {
    const exp = nowSeconds() + 2;
    const client = await pool.open(server.wsUrl, hs256Token({ sub: 'e1', exp }, TEST_SECRET));
    await assertUsable(client);
    const info = await client.waitClose(4000);
    assert.deepEqual(info, TOKEN_EXPIRED);
    assert.ok(Date.now() >= exp * 1000, 'not closed before exp');
  });

  it('closes with 4001 "Token expired" an expired connection that keeps sending', async () => {
    const exp = nowSeconds() + 2;
    const client = await pool.open(server.wsUrl, hs256Token({ sub: 'e2', exp }, TEST_SECRET));
    for (let i = 0; i < 40 && !client.closeInfo; i++) {
      client.send({ type: 'heartbeat', data: {} });
      await sleep(100);
    }
    assert.deepEqual(await client.waitClose(1000), TOKEN_EXPIRED);
  });
});

describe('liveness: token expiry with clock tolerance', () => {
  const TOLERANCE_S = 3;
  let server: TestApp;
  const pool = clientPool();
  before(async () => {
    server = await startTestApp({
      realtime: { jwt: { secret: TEST_SECRET, clockToleranceSeconds: TOLERANCE_S } },
    });
  });
  afterEach(() => pool.closeAll());
  after(() => server.close());

  it('accepts a token that expired within jwt.clockToleranceSeconds, then closes it 4001 "Token expired" when the tolerance runs out', async () => {
    const exp = nowSeconds() - 1;
    const client = await pool.open(server.wsUrl, hs256Token({ sub: 't1', exp }, TEST_SECRET));
    await assertUsable(client);
    const info = await client.waitClose(4000);
    assert.deepEqual(info, TOKEN_EXPIRED);
    assert.ok(Date.now() >= (exp + TOLERANCE_S) * 1000, 'not closed before exp + tolerance');
  });

  it('keeps a connection open past exp while within the tolerance', async () => {
    const exp = nowSeconds() + 1;
    const client = await pool.open(server.wsUrl, hs256Token({ sub: 't2', exp }, TEST_SECRET));
    const pastExp = exp * 1000 + 300;
    await sleep(Math.max(0, pastExp - Date.now()));
    await assertUsable(client); // exp has passed, the tolerance has not
    const info = await client.waitClose(5000);
    assert.deepEqual(info, TOKEN_EXPIRED);
  });

  it('still refuses at connect a token expired by more than the tolerance', async () => {
    const token = hs256Token({ sub: 't3', exp: nowSeconds() - TOLERANCE_S - 5 }, TEST_SECRET);
    const client = TestClient.connect(server.wsUrl, token);
    try {
      assert.deepEqual(await client.waitClose(), TOKEN_EXPIRED);
    } finally {
      client.close();
    }
  });
});

describe('liveness: handshake timeout', () => {
  let server: TestApp;
  let raw: Socket | undefined;
  before(async () => {
    server = await startTestApp();
  });
  after(async () => {
    raw?.destroy();
    await server.close();
  });

  it('drops an upgrade request whose headers never complete, after the 10 s handshake timeout', async () => {
    raw = connect(server.port, '127.0.0.1');
    raw.on('error', () => undefined);
    let answer = '';
    raw.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    await once(raw, 'connect');
    raw.write(
      'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n',
    );
    const closed = once(raw, 'close').then(() => 'closed' as const);
    // 10 s timeout, checked every second by Node, plus slack; Node's own default would be 30-40 s
    const result = await Promise.race([closed, sleep(15_000, 'timeout' as const, { ref: false })]);
    assert.equal(result, 'closed', 'the stalled upgrade request was not dropped');
    assert.match(answer, /^HTTP\/1\.1 408 /);
  });
});
