import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { PerTurnQueue } from './per-turn-queue.js';

describe('PerTurnQueue', () => {
  it('handles the first batch at once and one batch per later turn, in order', async () => {
    const handled: number[][] = [[]];
    const queue = new PerTurnQueue<number>(3, (item) => handled.at(-1)!.push(item));
    queue.push([1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(handled, [[1, 2, 3]], 'the first batch in the same turn');
    for (let turn = 0; turn < 5; turn++) {
      handled.push([]);
      await nextTurn();
    }
    assert.deepEqual(handled.flat(), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(
      handled.filter((batch) => batch.length > 0),
      [[1, 2, 3], [4, 5, 6], [7]],
    );
  });

  it('appends to a drain under way instead of starting another', async () => {
    const handled: string[] = [];
    const queue = new PerTurnQueue<string>(2, (item) => handled.push(item));
    queue.push(['a', 'b', 'c']);
    queue.push(['d']);
    assert.deepEqual(handled, ['a', 'b']);
    for (let turn = 0; turn < 4; turn++) await nextTurn();
    assert.deepEqual(handled, ['a', 'b', 'c', 'd']);
  });

  it('goes on with the rest after an item throws, and handles nothing after clear()', async () => {
    const handled: number[] = [];
    const queue = new PerTurnQueue<number>(2, (item) => {
      if (item === 2) throw new Error('boom');
      handled.push(item);
    });
    assert.throws(() => queue.push([1, 2, 3, 4, 5]), /boom/);
    await nextTurn();
    assert.deepEqual(handled, [1, 3, 4]);
    queue.clear();
    for (let turn = 0; turn < 3; turn++) await nextTurn();
    assert.deepEqual(handled, [1, 3, 4]);
  });
});
