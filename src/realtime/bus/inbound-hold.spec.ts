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
    const hold = new InboundHold(10);
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
    const hold = new InboundHold(2);
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
});
