import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDemoConfig } from './demo-config.js';

describe('loadDemoConfig', () => {
  it('keeps the dashboard-friendly admin rate limit by default', () => {
    assert.equal(loadDemoConfig({}).realtime.adminRateLimit, 600);
  });

  it('takes the admin rate limit from REALTIME_ADMIN_RATE_LIMIT', () => {
    const config = loadDemoConfig({ REALTIME_ADMIN_RATE_LIMIT: '1000000' });
    assert.equal(config.realtime.adminRateLimit, 1_000_000);
  });

  it('prints every level by default, and LOG_LEVEL with the levels above it', () => {
    assert.equal(loadDemoConfig({}).logLevels, undefined);
    assert.deepEqual(loadDemoConfig({ LOG_LEVEL: 'log' }).logLevels, [
      'log',
      'warn',
      'error',
      'fatal',
    ]);
    assert.throws(() => loadDemoConfig({ LOG_LEVEL: 'info' }), /LOG_LEVEL must be one of/);
  });

  it('refuses a malformed REALTIME_ADMIN_RATE_LIMIT', () => {
    assert.throws(
      () => loadDemoConfig({ REALTIME_ADMIN_RATE_LIMIT: '10/min' }),
      /REALTIME_ADMIN_RATE_LIMIT must be a positive integer/,
    );
  });
});
