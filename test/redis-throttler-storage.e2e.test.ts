import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisThrottlerStorage } from '../src/realtime/bus/redis-throttler-storage.js';
import { requireRedis, startRedisServer, type RedisServer } from './support/redis-server.js';

const NAMESPACE = 'rt-storage-test';
const THROTTLER = 'default';
const TTL_MS = 60_000;
/** Bound on waiting for the storage's connection to (re)connect. */
const READY_TIMEOUT_MS = 15_000;

/** `calls`, and `failed_calls` + `rejected_calls`, of `name` in `INFO commandstats`; zeros when never run. */
async function commandStats(
  admin: Redis,
  name: string,
): Promise<{ calls: number; errors: number }> {
  const line = (await admin.info('commandstats'))
    .split('\r\n')
    .find((l) => l.startsWith(`cmdstat_${name}:`));
  const field = (key: string) => Number(new RegExp(`[:,]${key}=(\\d+)`).exec(line ?? '')?.[1] ?? 0);
  return { calls: field('calls'), errors: field('failed_calls') + field('rejected_calls') };
}

/** The sorted set in which Redis counts `key`'s hits. */
function redisKey(key: string): string {
  return `${NAMESPACE}:rate:${THROTTLER}:${key}`;
}

/**
 * Resolves once a hit from `storage` is counted in Redis (its connection is up), with a probe
 * key of its own; throws after {@link READY_TIMEOUT_MS}.
 */
async function untilShared(storage: RedisThrottlerStorage, admin: Redis): Promise<void> {
  const probe = `probe-${Math.random().toString(36).slice(2)}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    await storage.increment(probe, TTL_MS, 1_000_000, 0, THROTTLER);
    if ((await admin.exists(redisKey(probe))) === 1) return;
    await sleep(25);
  }
  throw new Error(`the storage did not reach Redis within ${READY_TIMEOUT_MS} ms`);
}

/** `count` hits on `key`, in order; each answer's totalHits and isBlocked. */
async function hits(
  storage: RedisThrottlerStorage,
  key: string,
  limit: number,
  count: number,
): Promise<Array<[number, boolean]>> {
  const answers: Array<[number, boolean]> = [];
  for (let i = 0; i < count; i++) {
    const record = await storage.increment(key, TTL_MS, limit, 0, THROTTLER);
    assert.ok(record.timeToExpire > 0 && record.timeToExpire <= TTL_MS / 1000);
    answers.push([record.totalHits, record.isBlocked]);
  }
  return answers;
}

/** What a sliding-window limit answers to hits `from`..`to` (1-based) with none expired. */
function expected(limit: number, from: number, to: number): Array<[number, boolean]> {
  const answers: Array<[number, boolean]> = [];
  for (let n = from; n <= to; n++) answers.push(n <= limit ? [n, false] : [limit + 1, true]);
  return answers;
}

/** Silences the storage's logger for this test; the warn and log mocks, to inspect. */
function quietLogger(t: TestContext) {
  return {
    warn: t.mock.method(Logger.prototype, 'warn', () => undefined),
    log: t.mock.method(Logger.prototype, 'log', () => undefined),
  };
}

/** The `event` fields the storage logged through `mock`. */
function events(mock: ReturnType<typeof quietLogger>['warn']): unknown[] {
  return mock.mock.calls.map((call) => (call.arguments[0] as { event?: unknown }).event);
}

describe('RedisThrottlerStorage against a real Redis', () => {
  let redis: RedisServer | undefined;
  let admin: Redis | undefined;

  before(async () => {
    redis = await startRedisServer();
    if (!redis) return;
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
  });
  after(async () => {
    admin?.disconnect();
    await redis?.stop();
  });

  it('sends each hit as EVALSHA, the script itself once per connection', async (t) => {
    if (!requireRedis(t, redis)) return;
    quietLogger(t);
    const storage = new RedisThrottlerStorage(redis.url, NAMESPACE);
    try {
      await untilShared(storage, admin!);
      await admin!.config('RESETSTAT');
      const limit = 150;
      const count = 200;
      assert.deepEqual(await hits(storage, 'ann', limit, count), expected(limit, 1, count));
      assert.equal(await admin!.zcard(redisKey('ann')), limit, 'the hits are counted in Redis');
      const evalsha = await commandStats(admin!, 'evalsha');
      const evalCalls = (await commandStats(admin!, 'eval')).calls;
      assert.equal(evalsha.calls + evalCalls, count, 'one script call per hit');
      assert.ok(evalCalls <= 1, `the script body is sent at most once, not ${evalCalls} times`);
      assert.equal(evalsha.errors, 0);
    } finally {
      storage.onApplicationShutdown();
    }
  });

  it('keeps the same counts after SCRIPT FLUSH (NOSCRIPT: sent again with its body)', async (t) => {
    if (!requireRedis(t, redis)) return;
    const logger = quietLogger(t);
    const storage = new RedisThrottlerStorage(redis.url, NAMESPACE);
    try {
      await untilShared(storage, admin!);
      const limit = 8;
      assert.deepEqual(await hits(storage, 'bea', limit, 5), expected(limit, 1, 5));
      const evalsBefore = (await commandStats(admin!, 'eval')).calls;
      const noscriptsBefore = (await commandStats(admin!, 'evalsha')).errors;
      const warnsBefore = logger.warn.mock.callCount();
      assert.equal(await admin!.script('FLUSH'), 'OK');
      assert.deepEqual(await hits(storage, 'bea', limit, 5), expected(limit, 6, 10));
      assert.equal(await admin!.zcard(redisKey('bea')), limit, 'counted in Redis, not locally');
      assert.equal(
        (await commandStats(admin!, 'eval')).calls,
        evalsBefore + 1,
        'the script is loaded again once, then called by its hash',
      );
      assert.equal(
        (await commandStats(admin!, 'evalsha')).errors,
        noscriptsBefore + 1,
        'one NOSCRIPT',
      );
      assert.equal(
        logger.warn.mock.callCount(),
        warnsBefore,
        'no hit fell back to the local count',
      );
    } finally {
      storage.onApplicationShutdown();
    }
  });

  it('works on a copy of a host connection, which it leaves as it was', async (t) => {
    if (!requireRedis(t, redis)) return;
    quietLogger(t);
    const host = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    host.on('error', () => undefined);
    const storage = new RedisThrottlerStorage(host, NAMESPACE);
    try {
      await untilShared(storage, admin!);
      await admin!.config('RESETSTAT');
      const limit = 3;
      assert.deepEqual(await hits(storage, 'cal', limit, 5), expected(limit, 1, 5));
      assert.equal((await commandStats(admin!, 'evalsha')).calls, 5);
      // defineCommand adds a method to the connection it is called on: not to the host's.
      assert.equal('realtimeRateLimitIncrement' in host, false, 'no command defined on the host');
      assert.equal(host.options.enableOfflineQueue, true, 'the host keeps its own settings');
      assert.equal(await host.ping(), 'PONG');
    } finally {
      storage.onApplicationShutdown();
      host.disconnect();
    }
  });

  it('counts locally while Redis is down, says so once, and shares again after', async (t) => {
    if (!requireRedis(t, redis)) return;
    const logger = quietLogger(t);
    const storage = new RedisThrottlerStorage(redis.url, NAMESPACE);
    try {
      await untilShared(storage, admin!);
      const limit = 4;
      assert.deepEqual(await hits(storage, 'dee', limit, 2), expected(limit, 1, 2));
      // Connecting, the storage may have counted locally for a moment: only what follows counts.
      const [warnsBefore, logsBefore] = [logger.warn, logger.log].map((m) => m.mock.callCount());
      await redis.stop();
      try {
        // The local count starts afresh.
        assert.deepEqual(await hits(storage, 'dee', limit, 5), expected(limit, 1, 5));
        assert.deepEqual(events(logger.warn).slice(warnsBefore), ['rate_limit.local_only']);
      } finally {
        await redis.start();
      }
      // A new Redis (no data, no scripts): the connection loads the script again.
      await untilShared(storage, admin!);
      assert.deepEqual(events(logger.log).slice(logsBefore), ['rate_limit.shared']);
      assert.deepEqual(await hits(storage, 'dee', limit, 5), expected(limit, 1, 5));
      assert.equal(await admin!.zcard(redisKey('dee')), limit);
    } finally {
      storage.onApplicationShutdown();
    }
  });
});
