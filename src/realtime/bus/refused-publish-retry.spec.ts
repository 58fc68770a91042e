import { Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../../../test/support/test-client.js';
import { RETRIES } from '../retry-backoff.js';
import { PublishQueue } from './publish-queue.js';
import { RefusedPublishRetry } from './refused-publish-retry.js';

const FIRST_MS = 5;
/** Every retry's delay in a row, with room: 5 + 10 + … + 160 ms. */
const ALL_RETRIES_MS = FIRST_MS * (2 ** RETRIES - 1) + 200;
/** Bound on what the retries should do within ALL_RETRIES_MS, on a busy machine. */
const WAIT_MS = 10 * ALL_RETRIES_MS;

/** What ioredis rejects with when Redis answers an error: its name is what tells. */
function refusal(): Error {
  const error = new Error('NOPERM this user has no permissions to run the eval command');
  error.name = 'ReplyError';
  return error;
}

function closedConnection(): Error {
  return new Error('Connection is closed.');
}

class RecordingLogger extends Logger {
  readonly lines: Array<{ level: string; event: unknown }> = [];
  override warn(message: { event: unknown }): void {
    this.lines.push({ level: 'warn', event: message.event });
  }
  override error(message: { event: unknown }): void {
    this.lines.push({ level: 'error', event: message.event });
  }
}

/**
 * A queue whose sends Redis "refuses" (rejects) while `refuse` says so, with the retry wired to
 * its failures as RedisBus wires it.
 */
function refusingQueue(
  refuse: (item: string) => boolean,
  reachable = () => true,
  failure: () => Error = refusal,
) {
  const sent: string[] = [];
  const attempts: string[] = [];
  const logger = new RecordingLogger();
  const hooks: { failed?: (error: unknown) => void } = {};
  const queue = new PublishQueue<string>(
    (item) => {
      attempts.push(item);
      if (refuse(item)) return Promise.reject(failure());
      sent.push(item);
      return Promise.resolve();
    },
    100,
    hooks,
  );
  const retry = new RefusedPublishRetry(queue, reachable, logger, (item) => ({ item }), FIRST_MS);
  hooks.failed = (error) => retry.failed(error);
  return { queue, retry, sent, attempts, logger };
}

describe('RefusedPublishRetry', () => {
  it('sends a refused publish again once Redis takes it, then those behind it, in order', async () => {
    let refusing = true;
    const { queue, retry, sent, logger } = refusingQueue(() => refusing);
    queue.push('a', true);
    queue.push('b', true);
    queue.push('c', true);
    await sleep(1);
    assert.deepEqual(sent, []);
    assert.equal(queue.size, 3, 'all back in the queue, in order');
    refusing = false;
    await eventually(() => sent.length === 3, WAIT_MS, 'sent');
    assert.deepEqual(sent, ['a', 'b', 'c']);
    assert.deepEqual(logger.lines, [{ level: 'warn', event: 'bus.publish_refused' }]);
    retry.stop();
  });

  it(`drops a publish still refused after ${RETRIES} retries, logged, and sends the next`, async () => {
    const { queue, retry, sent, attempts, logger } = refusingQueue((item) => item === 'poison');
    queue.push('poison', true);
    await sleep(1);
    // Queued behind it (two sent together would both go back to the queue, and out twice).
    queue.push('next', true);
    await eventually(() => sent.length === 1, WAIT_MS, 'the next sent');
    assert.deepEqual(sent, ['next']);
    assert.equal(attempts.filter((item) => item === 'poison').length, 1 + RETRIES);
    assert.equal(queue.size, 0);
    assert.deepEqual(logger.lines, [
      { level: 'warn', event: 'bus.publish_refused' },
      { level: 'error', event: 'bus.publish_dropped' },
    ]);
    retry.stop();
  });

  it('counts afresh for each publish that comes to the head refused', async () => {
    const { queue, retry, sent, attempts } = refusingQueue((item) => item.startsWith('poison'));
    queue.push('poison-1', true);
    await sleep(1);
    queue.push('poison-2', true);
    queue.push('ok', true);
    await eventually(() => sent.length === 1, 2 * WAIT_MS, 'the last sent');
    assert.deepEqual(sent, ['ok']);
    for (const poison of ['poison-1', 'poison-2']) {
      assert.equal(attempts.filter((item) => item === poison).length, 1 + RETRIES, poison);
    }
    retry.stop();
  });

  for (const [what, reachable, failure] of [
    ['while Redis is unreachable', () => false, refusal],
    ['a failure that is no error reply (a connection that closed)', undefined, closedConnection],
  ] as const) {
    it(`leaves the queue to the reconnection: ${what}`, async () => {
      let refusing = true;
      const { queue, retry, sent, logger } = refusingQueue(() => refusing, reachable, failure);
      queue.push('a', true);
      await sleep(1);
      refusing = false;
      await sleep(4 * FIRST_MS);
      assert.deepEqual(sent, [], 'not retried');
      assert.deepEqual(logger.lines, []);
      await queue.flush();
      assert.deepEqual(sent, ['a']);
      retry.stop();
    });
  }

  it('retries nothing once stopped', async () => {
    let refusing = true;
    const { queue, retry, sent } = refusingQueue(() => refusing);
    queue.push('a', true);
    await sleep(1);
    retry.stop();
    refusing = false;
    await sleep(ALL_RETRIES_MS);
    assert.deepEqual(sent, []);
  });
});
