import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RealtimeSendError, RealtimeService } from '../src/realtime/index.js';
import { clientPool } from './support/client-pool.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';

const TRY_AGAIN_LATER = { code: 1013, reason: 'Try again later' };
const LIMIT_EXCEEDED = { code: 4008, reason: 'Connection limit exceeded' };

/** Expects `error` CONNECTION_LIMIT_EXCEEDED as the only message, then the close `expected`. */
async function expectLimitRefusal(client: TestClient, expected: { code: number; reason: string }) {
  const info = await client.waitClose();
  assert.deepEqual(info, expected);
  assert.deepEqual(
    client.received.map((m) => m.type),
    ['error'],
    'only the error, no connection.established',
  );
  assert.equal(client.received[0]!.data.code, 'CONNECTION_LIMIT_EXCEEDED');
  assert.equal(typeof client.received[0]!.data.message, 'string');
}

async function assertUsable(client: TestClient): Promise<void> {
  const reply = await client.request({ type: 'ping', data: { pingId: 'still-here' } });
  assert.equal(reply.type, 'pong');
  assert.equal(reply.data.pingId, 'still-here');
  assert.equal(client.closeInfo, undefined);
}

/** Opens connections until one is admitted (each refusal is a closed 1013), bounded. */
async function openWhenAdmitted(
  pool: ReturnType<typeof clientPool>,
  url: string,
  token: string,
): Promise<TestClient> {
  let admitted: TestClient | undefined;
  await eventually(
    async () => {
      const client = pool.connect(url, token);
      const outcome = await Promise.race([
        client.next('connection.established').then(() => true),
        client.closed.then(() => false),
      ]).catch(() => false);
      if (outcome) admitted = client;
      else client.close();
      return outcome;
    },
    3000,
    'a connection was admitted',
  );
  return admitted!;
}

describe('limits: maxTotalConnections', () => {
  let server: TestApp;
  const pool = clientPool();
  before(async () => {
    server = await startTestApp({ realtime: { maxTotalConnections: 2, maxConnectionsPerUser: 5 } });
  });
  afterEach(async () => {
    pool.closeAll();
    // every test starts with an empty server
    await eventually(
      async () =>
        (await server.http('GET', '/ws/stats', server.adminToken())).body?.data
          ?.total_connections === 0,
      3000,
      'the server is empty',
    );
  });
  after(() => server.close());

  it('closes the third connection with error CONNECTION_LIMIT_EXCEEDED then 1013 "Try again later"', async () => {
    const a = await pool.open(server.wsUrl, server.token('a'));
    const b = await pool.open(server.wsUrl, server.token('b'));
    const c = pool.connect(server.wsUrl, server.token('c'));
    await expectLimitRefusal(c, TRY_AGAIN_LATER);
    await assertUsable(a);
    await assertUsable(b);
  });

  it('admits a new connection once a close frees a slot', async () => {
    const a = await pool.open(server.wsUrl, server.token('a'));
    await pool.open(server.wsUrl, server.token('b'));
    await expectLimitRefusal(pool.connect(server.wsUrl, server.token('c')), TRY_AGAIN_LATER);
    a.socket.close(1000);
    await a.waitClose();
    const c = await openWhenAdmitted(pool, server.wsUrl, server.token('c'));
    await assertUsable(c);
  });

  it('admits a new connection once an abruptly dropped one is noticed', async () => {
    const a = await pool.open(server.wsUrl, server.token('a'));
    await pool.open(server.wsUrl, server.token('b'));
    a.close(); // terminate: no close frame
    const c = await openWhenAdmitted(pool, server.wsUrl, server.token('c'));
    await assertUsable(c);
  });

  it("checks capacity before the per-user limit: at capacity a user's extra connection is refused 1013 and evicts nobody", async () => {
    const a1 = await pool.open(server.wsUrl, server.token('a'));
    const a2 = await pool.open(server.wsUrl, server.token('a'));
    await expectLimitRefusal(pool.connect(server.wsUrl, server.token('a')), TRY_AGAIN_LATER);
    await assertUsable(a1);
    await assertUsable(a2);
  });

  it('checks the token before capacity: a bad token at capacity is closed 4001', async () => {
    await pool.open(server.wsUrl, server.token('a'));
    await pool.open(server.wsUrl, server.token('b'));
    const bad = pool.connect(server.wsUrl, 'garbage');
    assert.deepEqual(await bad.waitClose(), { code: 4001, reason: 'Unauthorized' });
    assert.equal(bad.received.length, 0);
  });
});

describe('limits: maxConnectionsPerUser', () => {
  let server: TestApp;
  const pool = clientPool();
  before(async () => {
    server = await startTestApp({ realtime: { maxConnectionsPerUser: 2 } });
  });
  afterEach(() => pool.closeAll());
  after(() => server.close());

  it('evicts the oldest connection with error CONNECTION_LIMIT_EXCEEDED then 4008 "Connection limit exceeded"', async () => {
    const other1 = await pool.open(server.wsUrl, server.token('other'));
    const other2 = await pool.open(server.wsUrl, server.token('other'));
    const oldest = await pool.open(server.wsUrl, server.token('u'));
    await sleep(5); // distinct connected_at: the order must not hinge on a millisecond tie
    const middle = await pool.open(server.wsUrl, server.token('u'));
    await sleep(5);
    const newest = await pool.open(server.wsUrl, server.token('u'));

    const info = await oldest.waitClose();
    assert.deepEqual(info, LIMIT_EXCEEDED);
    const error = oldest.ofType('error');
    assert.equal(error.length, 1);
    assert.equal(error[0]!.data.code, 'CONNECTION_LIMIT_EXCEEDED');
    assert.equal(
      oldest.received.at(-1)!.type,
      'error',
      'the error comes last, just before the close',
    );

    await assertUsable(middle);
    await assertUsable(newest);
    await assertUsable(other1);
    await assertUsable(other2);
    assert.equal(middle.ofType('error').length, 0);
    assert.equal(newest.ofType('error').length, 0);
  });

  it('keeps evicting the oldest as the user keeps opening connections', async () => {
    const opened: TestClient[] = [];
    for (let i = 0; i < 4; i++) {
      opened.push(await pool.open(server.wsUrl, server.token('serial')));
      await sleep(5);
    }
    assert.deepEqual(await opened[0]!.waitClose(), LIMIT_EXCEEDED);
    assert.deepEqual(await opened[1]!.waitClose(), LIMIT_EXCEEDED);
    await assertUsable(opened[2]!);
    await assertUsable(opened[3]!);
  });

  it('does not count a closed connection: after a close the user opens another without eviction', async () => {
    const a = await pool.open(server.wsUrl, server.token('w'));
    const b = await pool.open(server.wsUrl, server.token('w'));
    a.socket.close(1000);
    await a.waitClose();
    await eventually(
      async () =>
        (await server.http('GET', '/ws/stats', server.adminToken())).body?.data
          ?.connections_per_user?.w === 1,
      3000,
      'the server forgot the closed connection',
    );
    const c = await pool.open(server.wsUrl, server.token('w'));
    await assertUsable(b);
    await assertUsable(c);
    assert.equal(b.ofType('error').length, 0);
  });
});

describe('limits: maxConnectionsPerIp', () => {
  let server: TestApp;
  const pool = clientPool();
  before(async () => {
    server = await startTestApp({ realtime: { maxConnectionsPerIp: 2 } });
  });
  afterEach(() => pool.closeAll());
  after(() => server.close());

  it('closes the third connection from one address with error CONNECTION_LIMIT_EXCEEDED then 1013', async () => {
    const a = await pool.open(server.wsUrl, server.token('ip-a'));
    const b = await pool.open(server.wsUrl, server.token('ip-b'));
    await expectLimitRefusal(pool.connect(server.wsUrl, server.token('ip-c')), TRY_AGAIN_LATER);
    await assertUsable(a);
    await assertUsable(b);
    a.socket.close(1000);
    await a.waitClose();
    const c = await openWhenAdmitted(pool, server.wsUrl, server.token('ip-c'));
    await assertUsable(c);
    await assertUsable(b);
  });
});

describe('limits: maxMessageSize counts the stream position in bytes', () => {
  const LIMIT = 2048;
  let server: TestApp;
  const pool = clientPool();
  before(async () => {
    server = await startTestApp({
      realtime: { maxMessageSize: LIMIT, history: { maxMessages: 20 } },
    });
  });
  afterEach(() => pool.closeAll());
  after(() => server.close());

  it('refuses with MESSAGE_TOO_LARGE a send whose positioned frame (CJK user stream) would exceed it', async () => {
    const service = server.app.get(RealtimeService);
    // 200 characters, 600 bytes in UTF-8: the stream `user:<id>` is in every frame of the send.
    const userId = '\u7528'.repeat(200);
    const client = await pool.open(server.wsUrl, server.token(userId));
    const sizes: number[] = [];
    client.socket.on('message', (data: Buffer) => sizes.push(data.length));
    let refused = 0;
    let delivered = 0;
    for (let pad = 1000; pad <= 2000; pad += 8) {
      try {
        await service.sendToUser(userId, 'big', { pad: 'x'.repeat(pad) });
      } catch (error) {
        assert.ok(error instanceof RealtimeSendError);
        assert.equal(error.code, 'MESSAGE_TOO_LARGE');
        refused++;
        continue;
      }
      await client.next('big');
      delivered++;
    }
    await sleep(50);
    assert.ok(refused > 0 && delivered > 0, `${refused} refused, ${delivered} delivered`);
    assert.equal(client.ofType('big').length, delivered);
    const largest = Math.max(...sizes);
    assert.ok(largest <= LIMIT, `a frame of ${largest} bytes reached the client (limit ${LIMIT})`);
    // Not refused far below the limit either: the reserve for offset and epoch is small.
    assert.ok(largest > LIMIT - 200, `largest frame delivered: ${largest} bytes`);
    assert.equal(client.closeInfo, undefined);
  });
});
