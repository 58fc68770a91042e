import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServerEnvelope } from '../protocol/index.js';
import { ResumeGate } from './resume-gate.js';
import { StreamPositions } from './stream-positions.js';

function message(stream: string, offset: string): ServerEnvelope {
  return {
    type: 't',
    data: {},
    timestamp: '',
    id: `${stream}@${offset}`,
    stream,
    offset,
    epoch: 'e',
  };
}
const position = (m: ServerEnvelope) => ({ stream: m.stream!, offset: m.offset!, epoch: m.epoch! });

describe('ResumeGate', () => {
  it('releases each stream in offset order, in the slots of that stream', () => {
    const gate = new ResumeGate(100);
    gate.start();
    const arrived = [
      message('a', '10'),
      message('b', '5'),
      message('a', '8'),
      message('a', '9'),
      message('b', '4'),
    ];
    for (const m of arrived) assert.equal(gate.hold(m, position(m)), true);
    assert.deepEqual(
      gate.release().map((m) => m.id),
      ['a@8', 'b@4', 'a@9', 'a@10', 'b@5'],
    );
    assert.equal(gate.holding, false);
  });

  it('holds nothing when not started, and at most its bound', () => {
    const gate = new ResumeGate(1);
    const m = message('a', '1');
    assert.equal(gate.hold(m, position(m)), false);
    gate.start();
    assert.equal(gate.hold(m, position(m)), true);
    assert.equal(gate.hold(m, position(m)), false);
  });
});

describe('StreamPositions', () => {
  it('accepts new offsets and refuses ones seen already in the same epoch', () => {
    const positions = new StreamPositions();
    assert.equal(positions.accept({ stream: 's', offset: '9', epoch: 'e' }), true);
    assert.equal(positions.accept({ stream: 's', offset: '10', epoch: 'e' }), true);
    assert.equal(positions.accept({ stream: 's', offset: '9', epoch: 'e' }), false);
    assert.equal(positions.accept({ stream: 's', offset: '10', epoch: 'e' }), false);
    // A new epoch starts over.
    assert.equal(positions.accept({ stream: 's', offset: '1', epoch: 'f' }), true);
    assert.deepEqual(positions.list(), [{ stream: 's', offset: '1', epoch: 'f' }]);
  });

  it('forgets unreadable streams and adopts a new epoch after a resume', () => {
    const positions = new StreamPositions();
    positions.accept({ stream: 'event:x', offset: '3', epoch: 'e' });
    positions.accept({ stream: 'user:u', offset: '4', epoch: 'e' });
    positions.settle([
      { stream: 'event:x', recovered: false, replayed: 0, reason: 'not_visible' },
      {
        stream: 'user:u',
        recovered: false,
        replayed: 0,
        reason: 'epoch_changed',
        epoch: 'f',
        offset: '7',
      },
    ]);
    assert.deepEqual(positions.list(), [{ stream: 'user:u', offset: '7', epoch: 'f' }]);
  });
});
