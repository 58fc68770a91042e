import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SUBSCRIBABLE_EVENTS } from '../protocol/index.js';
import {
  type JwtAlgorithm,
  REALTIME_DEFAULTS,
  type RealtimeModuleOptions,
  resolveRealtimeOptions,
} from './realtime-options.js';

const JWT = { secret: 'a-secret-long-enough-for-hs256-0123456789' };

function resolve(options: Partial<RealtimeModuleOptions> = {}) {
  return resolveRealtimeOptions({ jwt: JWT, ...options });
}

describe('resolveRealtimeOptions', () => {
  describe('defaults', () => {
    it('applies the limits of PROTOCOL.md section 7', () => {
      const o = resolve();
      assert.equal(o.path, '/ws');
      assert.deepEqual(o.allowedOrigins, []);
      assert.equal(o.maxConnectionsPerUser, 3);
      assert.equal(o.maxTotalConnections, 1000);
      assert.equal(o.maxConnectionsPerIp, 0);
      assert.equal(o.maxConnectionsPerIpPerSecond, 0);
      assert.equal(o.maxMessageSize, 65536);
      assert.equal(o.heartbeatIntervalMs, 30_000);
      assert.equal(o.connectionTimeoutMs, 60_000);
      assert.equal(o.rateLimitMessages, 100);
      assert.equal(o.rateLimitWindowMs, 60_000);
      assert.equal(o.maxBufferedBytes, 1024 * 1024);
      assert.equal(o.closeGraceMs, 5_000);
      assert.equal(o.maxSubscriptionsPerConnection, 100);
      assert.equal(o.maxRoomSize, 10_000);
      assert.equal(o.adminRateLimit, 120);
      assert.equal(o.subscriptionAuthorizer, undefined);
      assert.equal(o.bus, undefined);
      assert.equal(o.throttlerStorage, undefined);
    });

    it('allows the twelve default events', () => {
      const o = resolve();
      assert.deepEqual(o.events, [...DEFAULT_SUBSCRIBABLE_EVENTS]);
      assert.equal(o.events.length, 12);
      assert.ok(o.events.includes('upload.progress'));
      assert.ok(o.events.includes('file.ready'));
    });

    it('defaults to HS256 with a secret, RS256 with a public key, and no clock leeway', () => {
      const hs = resolve();
      assert.deepEqual(hs.jwt.algorithms, ['HS256']);
      assert.equal(hs.jwt.clockToleranceSeconds, 0);
      assert.equal(hs.jwt.secret, JWT.secret);
      const rs = resolveRealtimeOptions({ jwt: { publicKey: 'PEM' } });
      assert.deepEqual(rs.jwt.algorithms, ['RS256']);
    });

    it('keeps given values and treats undefined as unset', () => {
      const o = resolve({
        maxConnectionsPerUser: 5,
        maxMessageSize: undefined,
        maxConnectionsPerIp: 2,
        events: ['a.b'],
        allowedOrigins: ['https://app.example.com'],
        jwt: { ...JWT, algorithms: ['HS512'], clockToleranceSeconds: 3, issuer: 'me' },
      });
      assert.equal(o.maxConnectionsPerUser, 5);
      assert.equal(o.maxMessageSize, REALTIME_DEFAULTS.maxMessageSize);
      assert.equal(o.maxConnectionsPerIp, 2);
      assert.deepEqual(o.events, ['a.b']);
      assert.deepEqual(o.allowedOrigins, ['https://app.example.com']);
      assert.deepEqual(o.jwt.algorithms, ['HS512']);
      assert.equal(o.jwt.clockToleranceSeconds, 3);
      assert.equal(o.jwt.issuer, 'me');
    });

    it('copies lists so that later changes by the caller do not leak in', () => {
      const events = ['a.b'];
      const allowedOrigins = ['https://a.example'];
      const o = resolve({ events, allowedOrigins });
      events.push('c.d');
      allowedOrigins.push('https://b.example');
      assert.deepEqual(o.events, ['a.b']);
      assert.deepEqual(o.allowedOrigins, ['https://a.example']);
      o.events.push('x.y');
      assert.deepEqual(resolve().events, [...DEFAULT_SUBSCRIBABLE_EVENTS]);
    });
  });

  describe('refusals', () => {
    it('refuses a missing jwt, secret or publicKey', () => {
      for (const jwt of [undefined, {}, { secret: '' }, { publicKey: '' }]) {
        assert.throws(
          () => resolveRealtimeOptions({ jwt } as unknown as RealtimeModuleOptions),
          /jwt\.secret.*jwt\.publicKey/,
          JSON.stringify(jwt),
        );
      }
    });

    it('refuses the none algorithm, in any case and among others', () => {
      for (const algorithms of [['none'], ['NONE'], ['None'], ['HS256', 'none']]) {
        assert.throws(
          () => resolve({ jwt: { ...JWT, algorithms: algorithms as JwtAlgorithm[] } }),
          /"none" is refused/,
          algorithms.join(','),
        );
      }
    });

    it('refuses an empty algorithm list', () => {
      assert.throws(() => resolve({ jwt: { ...JWT, algorithms: [] } }), /jwt\.algorithms/);
    });

    it('refuses an empty issuer or audience list', () => {
      assert.throws(() => resolve({ jwt: { ...JWT, issuer: [] } }), /jwt\.issuer/);
      assert.throws(() => resolve({ jwt: { ...JWT, audience: [] } }), /jwt\.audience/);
      assert.deepEqual(resolve({ jwt: { ...JWT, issuer: ['a', 'b'] } }).jwt.issuer, ['a', 'b']);
    });

    it('refuses a negative or non-finite clock tolerance', () => {
      // NaN would make every token's expiresAt NaN: connections would never be ended at exp.
      for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5']) {
        assert.throws(
          () => resolve({ jwt: { ...JWT, clockToleranceSeconds: value as number } }),
          /jwt\.clockToleranceSeconds/,
          String(value),
        );
      }
      assert.equal(
        resolve({ jwt: { ...JWT, clockToleranceSeconds: 0 } }).jwt.clockToleranceSeconds,
        0,
      );
      assert.equal(
        resolve({ jwt: { ...JWT, clockToleranceSeconds: 2.5 } }).jwt.clockToleranceSeconds,
        2.5,
      );
    });

    const positive = [
      'maxConnectionsPerUser',
      'maxTotalConnections',
      'maxMessageSize',
      'heartbeatIntervalMs',
      'connectionTimeoutMs',
      'rateLimitMessages',
      'rateLimitWindowMs',
      'maxBufferedBytes',
      'closeGraceMs',
      'maxSubscriptionsPerConnection',
      'maxRoomSize',
      'adminRateLimit',
    ] as const;
    for (const key of positive) {
      it(`refuses a non-positive or non-integer ${key}`, () => {
        for (const value of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10']) {
          assert.throws(
            () => resolve({ [key]: value } as Partial<RealtimeModuleOptions>),
            new RegExp(`${key} must be a positive integer`),
            `${key}=${String(value)}`,
          );
        }
        // The smallest value, with the options it must stay consistent with set to fit it.
        const companions = { heartbeatIntervalMs: 1, maxMessageSize: 1 };
        assert.equal(
          resolve({ ...companions, [key]: key === 'connectionTimeoutMs' ? 2 : 1 })[key],
          key === 'connectionTimeoutMs' ? 2 : 1,
        );
      });
    }

    it("refuses durations Node's timers cannot wait (past 2^31 - 1 ms they fire at once)", () => {
      const max = 2 ** 31 - 1;
      for (const key of [
        'heartbeatIntervalMs',
        'connectionTimeoutMs',
        'rateLimitWindowMs',
        'closeGraceMs',
      ] as const) {
        const companions = key === 'heartbeatIntervalMs' ? { connectionTimeoutMs: max } : {};
        assert.throws(
          () => resolve({ ...companions, [key]: max + 1 }),
          new RegExp(`${key} must be at most ${max} ms`),
        );
      }
      assert.equal(resolve({ connectionTimeoutMs: max }).connectionTimeoutMs, max);
      for (const key of ['maxAgeMs', 'resumeWindowMs'] as const) {
        assert.throws(
          () => resolve({ history: { [key]: max + 1 } }),
          new RegExp(`history.${key} must be at most ${max} ms`),
        );
        const history = resolve({ history: { [key]: max } }).history;
        assert.equal(history && history[key], max);
      }
    });

    it('refuses redis durations and buffer sizes that cannot work, naming the option', () => {
      const max = 2 ** 31 - 1;
      const url = 'redis://127.0.0.1:1';
      for (const key of ['leaseMs', 'requestTimeoutMs', 'maxBufferedPublishes'] as const) {
        const bad: unknown[] = [0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10', null];
        bad.push(key === 'maxBufferedPublishes' ? 2 ** 53 : 2 ** 32);
        for (const value of bad) {
          assert.throws(
            () => resolve({ redis: { url, [key]: value } as RealtimeModuleOptions['redis'] }),
            new RegExp(`RealtimeModule: redis\\.${key} must be`),
            `${key}=${String(value)}`,
          );
        }
        const fits = key === 'maxBufferedPublishes' ? Number.MAX_SAFE_INTEGER : max;
        for (const value of [1, fits, undefined]) {
          const redis = resolve({ redis: { url, [key]: value } }).redis;
          assert.equal(typeof redis === 'object' && redis[key], value, `${key}=${value}`);
        }
      }
      assert.throws(
        () => resolve({ redis: { url, leaseMs: max + 1 } }),
        new RegExp(`redis\\.leaseMs must be at most ${max} ms`),
      );
      assert.equal(resolve({ redis: url }).redis, url);
    });

    it('refuses events a client could never subscribe to, naming the entry', () => {
      for (const event of ['', 'with space', 'café', 'x'.repeat(201), 'tab\there']) {
        assert.throws(
          () => resolve({ events: ['ok.event', event] }),
          new RegExp(
            `events entry ${JSON.stringify(event).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
          ),
          JSON.stringify(event),
        );
      }
      assert.deepEqual(resolve({ events: ['x'.repeat(200), 'room:42'] }).events, [
        'x'.repeat(200),
        'room:42',
      ]);
    });

    it('refuses a connection timeout not longer than the heartbeat interval', () => {
      assert.throws(
        () => resolve({ heartbeatIntervalMs: 1000, connectionTimeoutMs: 1000 }),
        /connectionTimeoutMs must be longer than heartbeatIntervalMs/,
      );
      assert.equal(
        resolve({ heartbeatIntervalMs: 1000, connectionTimeoutMs: 1001 }).connectionTimeoutMs,
        1001,
      );
    });

    it('refuses a send buffer smaller than the largest message', () => {
      assert.throws(
        () => resolve({ maxMessageSize: 2048, maxBufferedBytes: 2047 }),
        /maxBufferedBytes must be at least maxMessageSize/,
      );
      assert.equal(
        resolve({ maxMessageSize: 2048, maxBufferedBytes: 2048 }).maxBufferedBytes,
        2048,
      );
    });

    for (const key of ['maxConnectionsPerIp', 'maxConnectionsPerIpPerSecond'] as const) {
      it(`accepts ${key} 0 (off) or a positive integer and refuses negative or fractional values`, () => {
        assert.equal(resolve({ [key]: 0 })[key], 0);
        assert.equal(resolve({ [key]: 7 })[key], 7);
        for (const value of [-1, 0.5, Number.NaN]) {
          assert.throws(
            () => resolve({ [key]: value }),
            new RegExp(`${key} must be 0 \\(off\\) or a positive integer`),
          );
        }
      });
    }
  });

  describe('path normalisation', () => {
    const cases: Array<[string, string]> = [
      ['/ws', '/ws'],
      ['ws', '/ws'],
      ['/ws/', '/ws'],
      ['//ws//', '/ws'],
      ['/api/v1/ws', '/api/v1/ws'],
      ['api//v1/ws/', '/api/v1/ws'],
      ['/', '/'],
      ['', '/'],
      ['//', '/'],
    ];
    for (const [given, expected] of cases) {
      it(`turns ${JSON.stringify(given)} into ${JSON.stringify(expected)}`, () => {
        assert.equal(resolve({ path: given }).path, expected);
      });
    }
  });
});
