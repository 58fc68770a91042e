import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomId } from './random-id.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('randomId', () => {
  it('makes version 4 UUIDs, all different, across several refills of the random pool', () => {
    const ids = Array.from({ length: 1000 }, () => randomId());
    for (const id of ids) assert.match(id, V4);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('returns strings that a later id does not change', () => {
    const first = randomId();
    const copy = `${first}`;
    for (let i = 0; i < 300; i++) randomId();
    assert.equal(first, copy);
  });

  it('uses every hex digit in every random position', () => {
    // 122 random bits per id: over 2,000 ids each of the 30 free hex positions sees all 16 digits
    // (the chance that one does not is ~30 x 16 x (15/16)^2000, below 1e-50).
    const seen = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 2000; i++) [...randomId()].forEach((char, at) => seen[at]!.add(char));
    const fixed = new Map([
      [8, 1],
      [13, 1],
      [14, 1],
      [18, 1],
      [19, 4],
      [23, 1],
    ]);
    seen.forEach((digits, at) => assert.equal(digits.size, fixed.get(at) ?? 16, `position ${at}`));
  });
});
