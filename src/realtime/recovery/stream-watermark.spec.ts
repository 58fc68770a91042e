import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamWatermark } from './stream-watermark.js';

describe('StreamWatermark', () => {
  it('reads a stream from the last millisecond received, or after its own offset within it', () => {
    const watermark = new StreamWatermark();
    watermark.reset('e1', 100);
    assert.deepEqual(watermark.startOf('a'), { stream: 'a', fromMs: 100 });
    watermark.observe({ stream: 'a', offset: '150-0', epoch: 'e1' });
    watermark.observe({ stream: 'b', offset: '150-3', epoch: 'e1' });
    assert.deepEqual(watermark.startOf('a'), { stream: 'a', after: '150-0' });
    assert.deepEqual(watermark.startOf('b'), { stream: 'b', after: '150-3' });
    assert.deepEqual(watermark.startOf('c'), { stream: 'c', fromMs: 150 });
    // An older message (another stream, sent earlier) does not move it back.
    watermark.observe({ stream: 'c', offset: '120-0', epoch: 'e1' });
    assert.deepEqual(watermark.startOf('c'), { stream: 'c', fromMs: 150 });
    watermark.observe({ stream: 'b', offset: '151-0', epoch: 'e1' });
    assert.deepEqual(
      watermark.startOf('a'),
      { stream: 'a', fromMs: 151 },
      'a later ms: a new start',
    );
    assert.deepEqual(watermark.startOf('b'), { stream: 'b', after: '151-0' });
  });

  it('starts over in a new epoch', () => {
    const watermark = new StreamWatermark();
    watermark.observe({ stream: 'a', offset: '500-0', epoch: 'e1' });
    watermark.observe({ stream: 'a', offset: '10-0', epoch: 'e2' });
    assert.equal(watermark.epoch, 'e2');
    assert.deepEqual(watermark.startOf('a'), { stream: 'a', after: '10-0' });
  });
});
