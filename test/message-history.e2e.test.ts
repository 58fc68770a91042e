import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { compareOffsets } from '../src/protocol/index.js';
import { InMemoryMessageHistory } from '../src/realtime/recovery/in-memory-message-history.js';
import type { MessageHistory } from '../src/realtime/recovery/message-history.js';
import { RedisMessageHistory } from '../src/realtime/recovery/redis-message-history.js';
import { uniqueNamespace } from './support/cluster.js';
import { type RedisServer, requireRedis, startRedisServer } from './support/redis-server.js';
import { sleep } from './support/wire.js';

/**
 * One contract for both histories (PROTOCOL.md section 9): the in-memory one of a single
 * instance, and Redis Streams shared by several, against a real redis-server.
 */

interface Bounds {
  maxMessages: number;
  maxAgeMs: number;
}

const record = (n: number, exceptUserId?: string) => ({
  id: `id-${n}`,
  type: 'n',
  frame: `{"type":"n","data":{"n":${n}}}`,
  ...(exceptUserId === undefined ? {} : { exceptUserId }),
});

function contract(
  name: string,
  make: (t: TestContext, bounds: Bounds) => MessageHistory | undefined,
) {
  describe(`${name}: history contract`, () => {
    const opened: MessageHistory[] = [];
    after(async () => {
      for (const history of opened) await history.close();
    });
    const open = (t: TestContext, bounds: Bounds = { maxMessages: 5, maxAgeMs: 60_000 }) => {
      const history = make(t, bounds);
      if (history) opened.push(history);
      return history;
    };

    it('gives increasing offsets in one epoch and reads what came after, in order', async (t) => {
      const history = open(t);
      if (!history) return;
      const a = await history.append('s', record(1));
      const b = await history.append('s', record(2));
      const c = await history.append('s', record(3, 'left-out'));
      assert.equal(a.epoch, c.epoch);
      assert.ok(compareOffsets(a.offset, b.offset) < 0 && compareOffsets(b.offset, c.offset) < 0);
      const read = await history.readAfter('s', a.offset, a.epoch, 10);
      assert.deepEqual(
        read.entries.map(({ id, offset, exceptUserId }) => ({ id, offset, exceptUserId })),
        [
          { id: 'id-2', offset: b.offset, exceptUserId: undefined },
          { id: 'id-3', offset: c.offset, exceptUserId: 'left-out' },
        ],
      );
      assert.equal(read.entries[0]!.frame, record(2).frame);
      assert.equal(read.complete, true);
      assert.equal(read.lastOffset, c.offset);
      assert.equal((await history.readAfter('s', a.offset, a.epoch, 1)).entries.length, 1);
    });

    it('keeps maxMessages per stream: a gap reaching past them is incomplete', async (t) => {
      const history = open(t);
      if (!history) return;
      const positions = [];
      for (let n = 1; n <= 8; n++) positions.push(await history.append('count', record(n)));
      const [first] = positions;
      const read = await history.readAfter('count', first!.offset, first!.epoch, 10);
      assert.equal(read.complete, false);
      assert.deepEqual(
        read.entries.map((e) => e.id),
        ['id-4', 'id-5', 'id-6', 'id-7', 'id-8'],
      );
      // From the last dropped offset on, nothing is missing.
      const whole = await history.readAfter('count', positions[2]!.offset, first!.epoch, 10);
      assert.equal(whole.complete, true);
      assert.equal(whole.entries.length, 5);
    });

    it('drops messages older than maxAgeMs', async (t) => {
      const history = open(t, { maxMessages: 100, maxAgeMs: 200 });
      if (!history) return;
      const first = await history.append('age', record(1));
      await history.append('age', record(2));
      await sleep(350);
      const read = await history.readAfter('age', first.offset, first.epoch, 10);
      assert.deepEqual(read.entries, []);
      assert.equal(read.complete, false);
    });

    it('answers another epoch with its own epoch, nothing, and complete: false', async (t) => {
      const history = open(t);
      if (!history) return;
      const first = await history.append('epoch', record(1));
      const read = await history.readAfter('epoch', first.offset, 'not-this-one', 10);
      assert.equal(read.epoch, first.epoch);
      assert.deepEqual(read.entries, []);
      assert.equal(read.complete, false);
      assert.equal(read.lastOffset, first.offset);
    });
  });
}

contract(
  'in memory',
  (_t, bounds) => new InMemoryMessageHistory({ ...bounds, maxStreams: 1000, maxBytes: 1 << 20 }),
);

let redis: RedisServer | undefined;
before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  await redis?.stop();
});

contract('Redis Streams', (t, bounds) =>
  requireRedis(t, redis)
    ? new RedisMessageHistory(redis.url, uniqueNamespace('history'), bounds)
    : undefined,
);

describe('Redis Streams history across a Redis restart without persistence', () => {
  it('reports a new epoch, so that clients know their offsets mean nothing now', async (t) => {
    if (!requireRedis(t, redis)) return;
    const history = new RedisMessageHistory(redis.url, uniqueNamespace('restart'), {
      maxMessages: 10,
      maxAgeMs: 60_000,
    });
    try {
      const before = await history.append('s', record(1));
      await redis.stop();
      await redis.start();
      let after: Awaited<ReturnType<MessageHistory['readAfter']>> | undefined;
      for (let attempt = 0; attempt < 50 && !after; attempt++) {
        after = await history.readAfter('s', before.offset, before.epoch, 10).catch(async () => {
          await sleep(100); // the connection comes back on its own
          return undefined;
        });
      }
      assert.ok(after, 'read after the restart');
      assert.notEqual(after.epoch, before.epoch);
      assert.equal(after.complete, false);
      const next = await history.append('s', record(2));
      assert.equal(next.epoch, after.epoch);
    } finally {
      await history.close();
    }
  });
});
