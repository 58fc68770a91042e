import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ReconnectTogether } from '../src/realtime/bus/reconnect-together.js';
import { FAIL_FAST, failFastConnection } from '../src/realtime/bus/redis-connections.js';
import { requireRedis, startRedisServer, type RedisServer } from './support/redis-server.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';
import { eventually } from './support/test-client.js';

/** Bound on a connection's first connection, and on its noticing a cut. */
const WAIT_MS = 5_000;
/** Longer than a connection attempt to a local port takes. */
const SETTLE_MS = 300;
/** Past the attempts whose backoff is under a second (50 ms up to 0.25, 0.45, 0.85 s). */
const BACKOFF_GROWN_MS = 4_000;

describe('ReconnectTogether: connections of one module to Redis', () => {
  let redis: RedisServer | undefined;
  let proxy: TcpProxy | undefined;
  const made: Redis[] = [];

  before(async () => {
    redis = await startRedisServer();
    if (redis) proxy = await startTcpProxy(redis.port);
  });
  after(async () => {
    for (const connection of made) connection.disconnect();
    await proxy?.close();
    await redis?.stop();
  });

  /**
   * Two connections of one group through the proxy, both connected; with `hostFirst`, the first
   * is a host's, only watched by the group.
   */
  async function connectedPair({ hostFirst = false } = {}): Promise<[Redis, Redis]> {
    const reconnects = new ReconnectTogether();
    const url = `redis://127.0.0.1:${proxy!.port}`;
    const pair: [Redis, Redis] = [
      hostFirst ? watchedHostConnection(url, reconnects) : failFastConnection(url, reconnects),
      failFastConnection(url, reconnects),
    ];
    made.push(...pair);
    await eventually(
      () => pair.every((connection) => connection.status === 'ready'),
      WAIT_MS,
      'both connected',
    );
    return pair;
  }

  /** A connection as a host makes it (not the module's), which the group only watches. */
  function watchedHostConnection(url: string, reconnects: ReconnectTogether): Redis {
    const host = new Redis(url, FAIL_FAST);
    host.on('error', () => undefined);
    reconnects.watch(host);
    return host;
  }

  /** Connects now, unless its own backoff timer just did. */
  async function connectNow(connection: Redis): Promise<void> {
    if (connection.status === 'reconnecting') await connection.connect();
    await eventually(() => connection.status === 'ready', WAIT_MS, 'connected');
  }

  /** Cuts the path until the pair's backoff between attempts grew to seconds, then restores it. */
  async function cutLong(pair: readonly Redis[]): Promise<void> {
    await proxy!.cut();
    await eventually(
      () => pair.every((connection) => connection.status === 'reconnecting'),
      WAIT_MS,
      'both waiting to reconnect',
    );
    // Attempts fail at once while the port is closed: their backoff grows to seconds.
    await sleep(BACKOFF_GROWN_MS);
    await proxy!.restore();
  }

  it('one closed by its owner stays closed when its old backoff timer connects it again', async (t) => {
    if (!requireRedis(t, redis)) return;
    const [closed, open] = await connectedPair();

    closed.disconnect();
    await eventually(() => closed.status === 'end', WAIT_MS, 'closed');
    // What ioredis's timer does when it fires after a nudged attempt took its place and the
    // owner closed the connection since.
    closed.connect().catch(() => undefined);
    await sleep(SETTLE_MS);

    assert.equal(closed.status, 'end');
    assert.equal(open.status, 'ready');
    assert.equal(proxy!.openConnections(), 1, 'only the open one is relayed');
  });

  it('one that is still between attempts when another is back tries at once', async (t) => {
    if (!requireRedis(t, redis)) return;
    const [first, second] = await connectedPair();
    await cutLong([first, second]);
    // Redis answers the first; the second's backoff (up to 5 s) is not waited out.
    await connectNow(first);
    await eventually(() => second.status === 'ready', SETTLE_MS, 'the second back with it');
  });

  it('a host’s connection, only watched: its return brings the module’s back', async (t) => {
    if (!requireRedis(t, redis)) return;
    const [host, own] = await connectedPair({ hostFirst: true });
    await cutLong([host, own]);
    await connectNow(host);
    await eventually(() => own.status === 'ready', SETTLE_MS, 'the module’s back with it');
  });

  it('takes its listener off a host’s connection at shutdown: the connection outlives the module', () => {
    const host = new Redis({ lazyConnect: true });
    const before = host.listenerCount('ready');
    const reconnects = new ReconnectTogether();
    reconnects.watch(host);
    assert.equal(host.listenerCount('ready'), before + 1);
    reconnects.onApplicationShutdown();
    assert.equal(host.listenerCount('ready'), before);
  });
});
