import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reconnectDelayMs } from './backoff.js';
import { defaults } from './options.js';

const range = {
  minDelayMs: defaults.minReconnectDelayMs,
  maxDelayMs: defaults.maxReconnectDelayMs,
};

describe('reconnectDelayMs (full-jitter exponential backoff)', () => {
  it('defaults to 0.5 s .. 20 s', () => {
    assert.equal(range.minDelayMs, 500);
    assert.equal(range.maxDelayMs, 20_000);
  });

  it('stays within [min, min(max, min * 2^(attempt + 1))] for every attempt and draw', () => {
    for (let attempt = 0; attempt <= 60; attempt++) {
      const cap = Math.min(range.maxDelayMs, range.minDelayMs * 2 ** (attempt + 1));
      for (const draw of [0, 0.001, 0.25, 0.5, 0.75, 0.999999]) {
        const delay = reconnectDelayMs(attempt, range, () => draw);
        assert.ok(delay >= range.minDelayMs, `attempt ${attempt} draw ${draw}: ${delay}`);
        assert.ok(delay <= cap, `attempt ${attempt} draw ${draw}: ${delay} > ${cap}`);
      }
    }
  });

  it('grows the upper bound exponentially up to the maximum', () => {
    const top = (attempt: number) => reconnectDelayMs(attempt, range, () => 1);
    assert.deepEqual([0, 1, 2, 3, 4, 5].map(top), [1000, 2000, 4000, 8000, 16000, 20000]);
    assert.equal(top(1000), 20_000);
    assert.equal(top(Number.MAX_SAFE_INTEGER), 20_000);
  });

  it('is the minimum for a draw of 0, whatever the attempt', () => {
    for (const attempt of [0, 3, 10, 100]) {
      assert.equal(
        reconnectDelayMs(attempt, range, () => 0),
        500,
      );
    }
  });

  it('jitters the first attempt too, so that clients cut together do not return together', () => {
    assert.equal(
      reconnectDelayMs(0, range, () => 0),
      500,
    );
    assert.equal(
      reconnectDelayMs(0, range, () => 0.5),
      750,
    );
    const delays = new Set<number>();
    for (let i = 0; i < 50; i++) delays.add(reconnectDelayMs(0, range));
    assert.ok(delays.size > 10, `only ${delays.size} distinct first delays`);
    for (const delay of delays) assert.ok(delay >= 500 && delay <= 1000, `${delay}`);
  });

  it('spreads delays (jitter) with the default random source', () => {
    const delays = new Set<number>();
    for (let i = 0; i < 50; i++) delays.add(reconnectDelayMs(10, range));
    assert.ok(delays.size > 10, `only ${delays.size} distinct delays`);
    for (const delay of delays) assert.ok(delay >= 500 && delay <= 20_000);
  });

  it('tolerates odd inputs: negative attempt, max below min, out-of-range draws', () => {
    assert.equal(
      reconnectDelayMs(-3, range, () => 1),
      1000,
    );
    assert.equal(
      reconnectDelayMs(5, { minDelayMs: 100, maxDelayMs: 50 }, () => 1),
      100,
    );
    assert.equal(
      reconnectDelayMs(2, range, () => 7),
      4000,
    );
    assert.equal(
      reconnectDelayMs(2, range, () => -1),
      500,
    );
  });
});
