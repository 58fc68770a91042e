import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_RETRY_AFTER_MS, retryAfterMs } from './retry-after.js';

describe('retryAfterMs', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads whole seconds on a 429 or 503', () => {
    assert.equal(retryAfterMs(429, '1', now), 1000);
    assert.equal(retryAfterMs(503, ' 30 ', now), 30_000);
    assert.equal(retryAfterMs(429, ['2', '9'], now), 2000);
  });

  it('reads an HTTP date, a past one as no wait', () => {
    assert.equal(retryAfterMs(429, 'Thu, 01 Jan 2026 00:00:07 GMT', now), 7000);
    assert.equal(retryAfterMs(429, 'Wed, 31 Dec 2025 23:00:00 GMT', now), 0);
  });

  it(`caps the wait at ${MAX_RETRY_AFTER_MS} ms`, () => {
    assert.equal(retryAfterMs(429, '86400', now), MAX_RETRY_AFTER_MS);
    assert.equal(retryAfterMs(429, '9'.repeat(400), now), MAX_RETRY_AFTER_MS);
    assert.equal(retryAfterMs(503, 'Fri, 01 Jan 2100 00:00:00 GMT', now), MAX_RETRY_AFTER_MS);
  });

  it('ignores other statuses, a missing header and garbage', () => {
    assert.equal(retryAfterMs(401, '5', now), undefined);
    assert.equal(retryAfterMs(undefined, '5', now), undefined);
    assert.equal(retryAfterMs(429, undefined, now), undefined);
    assert.equal(retryAfterMs(429, '', now), undefined);
    assert.equal(retryAfterMs(429, '-5', now), undefined);
    assert.equal(retryAfterMs(429, 'soon', now), undefined);
  });
});
