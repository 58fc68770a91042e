import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_IN_FLIGHT, PublishQueue } from './publish-queue.js';

/** A `send` whose calls stay unanswered until the test resolves or rejects them. */
function controlledSend() {
  const sent: number[] = [];
  const answers: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  const send = (item: number): Promise<unknown> =>
    new Promise<void>((resolve, reject) => {
      sent.push(item);
      answers.push({ resolve, reject });
    });
  return { sent, answers, send };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('PublishQueue', () => {
  it('keeps the in-flight bound large enough for a burst of a few thousand', () => {
    assert.ok(MAX_IN_FLIGHT >= 5_000);
    const { sent, send } = controlledSend();
    const queue = new PublishQueue<number>(send, 1000);
    for (let i = 0; i < 5_000; i++) {
      assert.equal(queue.canAccept(true), true);
      queue.push(i, true);
    }
    assert.equal(sent.length, 5_000, 'all sent at once');
    assert.equal(queue.size, 0);
  });

  it('queues past maxInFlight, refuses once that queue is full, and sends it in order when drained', async () => {
    const { sent, answers, send } = controlledSend();
    let drained = 0;
    const queue = new PublishQueue<number>(send, 3, { drained: () => drained++ }, 4);
    let accepted = 0;
    for (let i = 0; i < 20; i++) {
      if (!queue.canAccept(true)) continue;
      queue.push(i, true);
      accepted++;
    }
    assert.equal(accepted, 7, '4 in flight and 3 waiting');
    assert.deepEqual(sent, [0, 1, 2, 3]);
    assert.equal(queue.size, 3);

    // Confirmed out of order: nothing drains until the oldest is confirmed too.
    for (const i of [1, 2, 3]) answers[i]!.resolve();
    await settle();
    assert.equal(drained, 0);
    answers[0]!.resolve();
    await settle();
    assert.equal(drained, 1, 'announced once all in flight were confirmed');

    const flushed = queue.flush();
    for (let i = 4; i < 7; i++) {
      await settle();
      answers[i]!.resolve();
    }
    assert.equal(await flushed, 3);
    assert.deepEqual(sent, [0, 1, 2, 3, 4, 5, 6], 'in the order they were made');
    assert.equal(queue.size, 0);
    assert.equal(queue.canAccept(true), true);
    queue.push(7, true);
    assert.deepEqual(sent.at(-1), 7, 'sent at once again');
  });

  it('requeues at most maxInFlight + limit on a failure, in order, and refuses until below limit', async () => {
    const { sent, answers, send } = controlledSend();
    let drained = 0;
    const queue = new PublishQueue<number>(send, 3, { drained: () => drained++ }, 4);
    for (let i = 0; i < 20; i++) if (queue.canAccept(true)) queue.push(i, true);
    answers[0]!.resolve();
    await settle();
    answers[2]!.reject(new Error('connection lost'));
    await settle();
    assert.equal(queue.size, 6, 'the 3 unconfirmed before the 3 waiting');
    assert.equal(queue.canAccept(true), false);
    assert.equal(queue.canAccept(false), false);
    assert.equal(drained, 0);

    const flushed = queue.flush();
    for (let i = 4; i < 4 + 6; i++) {
      await settle();
      answers[i]!.resolve();
    }
    assert.equal(await flushed, 6);
    assert.deepEqual(sent.slice(4), [1, 2, 3, 4, 5, 6], 'unconfirmed first, in order');
    assert.equal(queue.canAccept(true), true);
  });

  it('counts sends made by their caller in the same window, and requeues none of them', async () => {
    const { sent, answers, send } = controlledSend();
    let drained = 0;
    const queue = new PublishQueue<number>(send, 3, { drained: () => drained++ }, 4);
    const own = controlledSend();
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      assert.equal(queue.canSendNow(true), true);
      queue
        .sendCounted(() => own.send(100 + i))
        .then(
          () => outcomes.push(`sent ${100 + i}`),
          () => outcomes.push(`failed ${100 + i}`),
        );
    }
    queue.push(0, true);
    assert.equal(queue.canSendNow(true), false, 'the window is full');
    for (let i = 1; i < 10; i++) if (queue.canAccept(true)) queue.push(i, true);
    assert.deepEqual(sent, [0]);
    assert.equal(queue.size, 3, 'the rest wait');

    // A failure of the queue's own requeues it; the counted ones stay in the window meanwhile.
    answers[0]!.reject(new Error('connection lost'));
    await settle();
    assert.equal(queue.size, 4);
    assert.equal(queue.canSendNow(true), false);
    own.answers[0]!.resolve();
    own.answers[1]!.reject(new Error('connection lost'));
    await settle();
    assert.equal(drained, 0, 'one is still in flight');
    own.answers[2]!.resolve();
    await settle();
    assert.equal(drained, 1, 'announced once the last counted one settled');
    assert.deepEqual(outcomes, ['sent 100', 'failed 101', 'sent 102']);
    assert.equal(queue.size, 4, 'a counted failure requeued nothing');
    assert.deepEqual(own.sent, [100, 101, 102]);
  });

  it('while disconnected keeps at most limit and sends nothing', () => {
    const { sent, send } = controlledSend();
    const queue = new PublishQueue<number>(send, 3, {}, 4);
    let accepted = 0;
    for (let i = 0; i < 10; i++) {
      if (!queue.canAccept(false)) continue;
      queue.push(i, false);
      accepted++;
    }
    assert.equal(accepted, 3);
    assert.equal(sent.length, 0);
  });
});
