import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OutboundMessage } from './delivery-target.js';
import { InboundHold } from './inbound-hold.js';

function message(id: string, stream?: string, offset?: string): OutboundMessage {
  return {
    id,
    type: 't',
    frame: '{}',
    target: { kind: 'all' },
    ...(stream && offset ? { position: { stream, offset, epoch: 'e' } } : {}),
  };
}

describe('InboundHold', () => {
  it('passes messages through until started, then keeps them in arrival order', () => {
    const hold = new InboundHold(10, 1000);
    assert.equal(hold.offer(message('a')), false);
    hold.start();
    assert.equal(hold.offer(message('b', 's', '1-0')), true);
    assert.equal(hold.offer(message('c')), true);
    assert.equal(hold.offer(message('d', 's', '2-0')), true);
    assert.equal(hold.offer(message('e', 't', '3-0')), true);
    assert.equal(hold.size, 4);
    assert.deepEqual(
      [...hold.firstOffsets()],
      [
        ['s', '1-0'],
        ['t', '3-0'],
      ],
      'the first held offset per stream',
    );
    const { messages, overflowed } = hold.release();
    assert.deepEqual(
      messages.map((m) => m.id),
      ['b', 'c', 'd', 'e'],
    );
    assert.equal(overflowed, false);
    assert.equal(hold.holding, false);
    assert.equal(hold.size, 0);
    assert.equal(hold.offer(message('f')), false, 'released: delivered at once again');
  });

  it('drops past its limit and says so', () => {
    const hold = new InboundHold(2, 1000);
    hold.start();
    for (const id of ['a', 'b', 'c']) assert.equal(hold.offer(message(id)), true);
    const { messages, overflowed } = hold.release();
    assert.deepEqual(
      messages.map((m) => m.id),
      ['a', 'b'],
    );
    assert.equal(overflowed, true);
    assert.equal(hold.release().overflowed, false, 'a new hold starts clean');
  });

  it('drops past its characters too, and everything after, so that it keeps a prefix', () => {
    const hold = new InboundHold(10, 10);
    hold.start();
    const sized = (id: string, chars: number) => ({ ...message(id), frame: 'x'.repeat(chars) });
    for (const [id, chars] of [
      ['a', 4],
      ['b', 6],
      ['c', 1],
    ] as const) {
      assert.equal(hold.offer(sized(id, chars)), true);
    }
    assert.equal(hold.size, 2, 'exactly at the bound is kept; one more character is not');
    hold.start();
    const { messages, overflowed } = hold.release();
    assert.deepEqual(
      messages.map((m) => m.id),
      ['a', 'b'],
    );
    assert.equal(overflowed, true);
    hold.start();
    assert.equal(hold.offer(sized('d', 10)), true);
    assert.deepEqual(
      hold.release().messages.map((m) => m.id),
      ['d'],
      'the count of characters starts over',
    );
  });
});
