import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { positionOverhead, withPosition } from './positioned-frame.js';

describe('positionOverhead', () => {
  it('covers the UTF-8 bytes withPosition adds, for any stream name and the longest offset', () => {
    const frame = '{"type":"t","data":{}}';
    const offset = `${'9'.repeat(20)}-${'9'.repeat(20)}`;
    for (const stream of ['all', `user:${'\u7528'.repeat(256)}`, `room:${'"\\'.repeat(100)}`]) {
      const added =
        Buffer.byteLength(withPosition(frame, { stream, offset, epoch: 'abcdef12' })) -
        Buffer.byteLength(frame);
      assert.ok(positionOverhead(stream) >= added, `${stream.slice(0, 12)}: ${added} bytes`);
    }
  });
});
