import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UpgradeRateLimiter } from './upgrade-rate-limiter.js';

/** A limiter on a clock the test moves by hand. */
function limiter(perSecond: number, maxTracked?: number) {
  let now = 0;
  const limit = new UpgradeRateLimiter(perSecond, () => now, maxTracked);
  return {
    limit,
    advance: (ms: number) => (now += ms),
    /** How many of `count` upgrades from `address` are admitted right now. */
    admitted: (address: string, count: number) =>
      Array.from({ length: count }, () => limit.admit(address)).filter((wait) => wait === 0).length,
  };
}

describe('UpgradeRateLimiter', () => {
  it('admits everything when off (0)', () => {
    const { admitted, limit } = limiter(0);
    assert.equal(admitted('10.0.0.1', 500), 500);
    assert.equal(limit.tracked, 0);
  });

  it('admits perSecond upgrades of one address per window and asks the rest to retry', () => {
    const { admitted, limit, advance } = limiter(3);
    assert.equal(admitted('10.0.0.1', 3), 3);
    advance(400);
    assert.equal(limit.admit('10.0.0.1'), 1, 'Retry-After is whole seconds, at least 1');
    advance(599);
    assert.equal(admitted('10.0.0.1', 2), 0, 'the window still runs 999 ms after it started');
    advance(1);
    assert.equal(admitted('10.0.0.1', 5), 3, 'a new window');
  });

  it('counts each address on its own', () => {
    const { admitted } = limiter(2);
    assert.equal(admitted('10.0.0.1', 4), 2);
    assert.equal(admitted('10.0.0.2', 4), 2);
    assert.equal(admitted('::1', 1), 1);
  });

  it('forgets expired windows, so that memory follows the addresses seen in the last second', () => {
    const { admitted, limit, advance } = limiter(1);
    for (let i = 0; i < 100; i++) admitted(`10.0.0.${i}`, 1);
    assert.equal(limit.tracked, 100);
    advance(1000);
    admitted('10.0.1.1', 1);
    assert.equal(limit.tracked, 1);
  });

  it('tracks at most maxTracked addresses, forgetting the oldest window first', () => {
    const { admitted, limit, advance } = limiter(1, 3);
    for (const address of ['a', 'b', 'c']) {
      assert.equal(admitted(address, 2), 1);
      advance(10);
    }
    assert.equal(admitted('d', 1), 1);
    assert.equal(limit.tracked, 3);
    assert.equal(admitted('a', 1), 1, 'a was forgotten');
    assert.equal(admitted('c', 1), 0, 'c is still counted');
    assert.equal(limit.tracked, 3);
  });
});
