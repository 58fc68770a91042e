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

  const SECRET = 'a-secret-of-at-least-thirty-two-bytes';

  it('refuses to start in production with the public development secret', () => {
    assert.throws(
      () => loadDemoConfig({ NODE_ENV: 'production' }),
      /JWT_SECRET must be set when NODE_ENV=production/,
    );
    assert.deepEqual(loadDemoConfig({ NODE_ENV: 'production', JWT_SECRET: SECRET }).warnings, []);
  });

  it('refuses a JWT_SECRET that can be guessed: under 16 bytes, or under 32 in production', () => {
    assert.throws(() => loadDemoConfig({ JWT_SECRET: 'short' }), /JWT_SECRET is 5 bytes/);
    assert.throws(
      () => loadDemoConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(31) }),
      /at least 32/,
    );
    // Development keeps running with a warning (the benchmark's secret is 31 bytes).
    const warnings = loadDemoConfig({ JWT_SECRET: 'x'.repeat(31) }).warnings;
    assert.ok(warnings.some((line) => /JWT_SECRET is 31 bytes/.test(line)));
  });

  it('warns at every start that the token endpoint is on outside production', () => {
    const local = loadDemoConfig({ JWT_SECRET: SECRET }).warnings;
    assert.equal(local.length, 1);
    assert.match(local[0]!, /POST \/demo\/token is ON: .*admin/);
    const exposed = loadDemoConfig({ JWT_SECRET: SECRET, HOST: '0.0.0.0' }).warnings;
    assert.match(exposed[0]!, /HOST=0\.0\.0\.0: reachable from other machines/);
  });

  it('takes only a decimal PORT', () => {
    assert.equal(loadDemoConfig({ PORT: '4000' }).port, 4000);
    assert.equal(loadDemoConfig({ PORT: '0' }).port, 0);
    for (const port of ['abc', ' ', '0x50', '1e3', '-1', '65536', '3000.5']) {
      assert.throws(() => loadDemoConfig({ PORT: port }), /PORT must be a port number/, port);
    }
  });

  it('refuses a REDIS_URL that is not a redis URL, without echoing it', () => {
    assert.throws(
      () => loadDemoConfig({ REDIS_URL: 'localhost:6379' }),
      /^Error: REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL$/,
    );
    assert.throws(
      () => loadDemoConfig({ REDIS_URL: 'http://user:hunter2@host' }),
      (error) => {
        assert.doesNotMatch(String(error), /hunter2/);
        return true;
      },
    );
    const config = loadDemoConfig({ REDIS_URL: 'rediss://:pw@cache:6380/0' });
    assert.equal(typeof config.realtime.redis, 'object');
  });

  it('refuses an unknown LOG_FORMAT', () => {
    assert.equal(loadDemoConfig({ LOG_FORMAT: 'json' }).jsonLogs, true);
    assert.equal(loadDemoConfig({}).jsonLogs, false);
    assert.throws(() => loadDemoConfig({ LOG_FORMAT: 'xml' }), /LOG_FORMAT must be json or text/);
  });
});
