import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { type ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import { resolveRealtimeOptions } from '../realtime-options.js';
import { MessageRateLimiter, type RateDecision } from './message-rate-limiter.js';

const LIMIT = 5;
const WINDOW_MS = 10_000;
// A fixed clock far from zero, not aligned on a second.
const START = 1_700_000_000_123;

function limiter(storage: ThrottlerStorage): MessageRateLimiter {
  const options = resolveRealtimeOptions({
    jwt: { secret: 'x'.repeat(32) },
    rateLimitMessages: LIMIT,
    rateLimitWindowMs: WINDOW_MS,
  });
  return new MessageRateLimiter(options, storage);
}

/** ThrottlerStorageService behind a wrapper: the limiter then uses the storage, not its own log. */
function viaStorage(): ThrottlerStorage {
  const storage = new ThrottlerStorageService();
  return { increment: (...args) => storage.increment(...args) };
}

/** What the dispatcher sees of a decision (an abusive one's resetTime is never sent). */
function shown(decision: RateDecision): unknown {
  if (decision.allowed) return 'allowed';
  return decision.abusive ? 'abusive' : { resetTime: decision.resetTime };
}

describe('MessageRateLimiter with the in-memory storage', () => {
  beforeEach(() => mock.timers.enable({ apis: ['Date'], now: START }));
  afterEach(() => mock.timers.reset());

  it('decides synchronously, without going through the storage', () => {
    const storage = new ThrottlerStorageService();
    const decision = limiter(storage).hit('user-1');
    assert.ok(!(decision instanceof Promise));
    assert.equal(storage.storage.size, 0);
  });

  it('decides as ThrottlerStorageService does, message after message', async () => {
    const local = limiter(new ThrottlerStorageService());
    const reference = limiter(viaStorage());
    // Bursts, pauses inside and past the window, two users interleaved, abuse and recovery.
    const steps = [
      ...Array.from({ length: 4 }, () => 300),
      ...Array.from({ length: 6 }, () => 1_100),
      4_000,
      ...Array.from({ length: 8 }, () => 10),
      WINDOW_MS - 50,
      60,
      ...Array.from({ length: 12 }, () => 1),
      WINDOW_MS + 1,
      ...Array.from({ length: 7 }, () => 999),
    ];
    let now = START;
    let compared = 0;
    const kinds = new Set<string>();
    for (const [index, step] of steps.entries()) {
      now += step;
      mock.timers.setTime(now);
      for (const user of index % 3 === 0 ? ['a', 'b'] : ['a']) {
        const expected = shown(await reference.hit(user));
        const actual = shown(await local.hit(user));
        assert.deepEqual(actual, expected, `step ${index} (+${step} ms), user ${user}`);
        kinds.add(typeof expected === 'string' ? expected : 'refused');
        compared++;
      }
    }
    assert.ok(compared > 50);
    assert.deepEqual(
      [...kinds].sort(),
      ['abusive', 'allowed', 'refused'],
      'every kind was compared',
    );
  });

  it('refuses past the limit with reset_time when the oldest accepted message leaves', () => {
    const local = limiter(new ThrottlerStorageService());
    for (let i = 0; i < LIMIT; i++) {
      mock.timers.setTime(START + i * 1_000);
      assert.deepEqual(local.hit('u'), { allowed: true });
    }
    mock.timers.setTime(START + 5_500);
    const refused = local.hit('u') as RateDecision;
    assert.equal(refused.allowed, false);
    assert.deepEqual(refused, {
      allowed: false,
      abusive: false,
      resetTime:
        Math.ceil((START + 5_500) / 1000) + Math.ceil((START + WINDOW_MS - (START + 5_500)) / 1000),
    });
    // At the oldest one's expiry a slot frees.
    mock.timers.setTime(START + WINDOW_MS);
    assert.deepEqual(local.hit('u'), { allowed: true });
  });
});
