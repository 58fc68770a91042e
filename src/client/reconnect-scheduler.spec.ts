import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { ReconnectScheduler } from './reconnect-scheduler.js';

describe('ReconnectScheduler after a Retry-After', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  /** When the reconnect scheduled after `delayNextBy(retryAfterMs)` runs, in ms. */
  function firesAfter(draw: number, retryAfterMs: number | undefined): number {
    const scheduler = new ReconnectScheduler({
      minReconnectDelayMs: 500,
      maxReconnectDelayMs: 20_000,
      maxReconnectAttempts: Number.POSITIVE_INFINITY,
      random: () => draw,
    });
    if (retryAfterMs !== undefined) scheduler.delayNextBy(retryAfterMs);
    let ranAt: number | undefined;
    let now = 0;
    scheduler.schedule(() => (ranAt = now));
    // 1 ms steps, bounded: no run within a minute is a failure of its own.
    while (ranAt === undefined && now < 60_000) {
      now++;
      mock.timers.tick(1);
    }
    return ranAt ?? Number.NaN;
  }

  it('waits the Retry-After on top of the jittered backoff (0.5 to 1 s first)', () => {
    assert.equal(firesAfter(0, 3000), 3500);
    assert.equal(firesAfter(0.5, 3000), 3750);
    assert.equal(firesAfter(1, 3000), 4000);
    assert.equal(firesAfter(1, undefined), 1000);
  });

  it('applies it to the next attempt only', () => {
    const scheduler = new ReconnectScheduler({
      minReconnectDelayMs: 500,
      maxReconnectDelayMs: 20_000,
      maxReconnectAttempts: Number.POSITIVE_INFINITY,
      random: () => 0,
    });
    const runs: number[] = [];
    let now = 0;
    scheduler.delayNextBy(2000);
    scheduler.schedule(() => {
      runs.push(now);
      scheduler.schedule(() => runs.push(now));
    });
    while (runs.length < 2 && now < 60_000) {
      now++;
      mock.timers.tick(1);
    }
    assert.deepEqual(runs, [2500, 3000]);
  });
});
