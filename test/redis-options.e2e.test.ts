import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout } from 'node:timers/promises';
import { RealtimeModule, type RealtimeModuleOptions, RedisBus } from '../src/realtime/index.js';
import { TEST_SECRET } from './support/test-app.js';

/** README "## Options": bad `redis` durations and sizes stop the module at startup. */
describe('redis options refused at startup', () => {
  // Stands in for Redis: counts the connections the module would open to it.
  let fakeRedis: Server;
  let url: string;
  let connections = 0;
  before(async () => {
    fakeRedis = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => fakeRedis.listen(0, '127.0.0.1', resolve));
    url = `redis://127.0.0.1:${(fakeRedis.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => fakeRedis.close(() => resolve())));

  /** The error that stops the app from starting, or why there was none. */
  async function startupError(redis: RealtimeModuleOptions['redis']): Promise<string> {
    @Module({ imports: [RealtimeModule.forRoot({ jwt: { secret: TEST_SECRET }, redis })] })
    class OptionsModule {}
    const creating = NestFactory.create(OptionsModule, { logger: false, abortOnError: false });
    // A start that was not refused waits for Redis, which never answers here.
    const timeout = setTimeout(3000, 'the start was not refused (still starting after 3 s)');
    try {
      const outcome = await Promise.race([creating, timeout]);
      if (typeof outcome === 'string') return outcome;
      await outcome.close();
      return 'the app started';
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  for (const key of ['leaseMs', 'requestTimeoutMs', 'maxBufferedPublishes'] as const) {
    for (const value of [0, -5, 2 ** 32, Number.NaN, 2 ** 53]) {
      if (key !== 'maxBufferedPublishes' && value === 2 ** 53) continue;
      if (key === 'maxBufferedPublishes' && value === 2 ** 32) continue;
      it(`refuses redis.${key} = ${value}, naming it, before connecting to Redis`, async () => {
        const message = await startupError({ url, [key]: value });
        assert.match(message, new RegExp(`^RealtimeModule: redis\\.${key} must be`));
        assert.equal(connections, 0, 'no connection was made to Redis');
      });
      it(`refuses new RedisBus({ ${key}: ${value} }), naming it, before connecting`, async () => {
        let message = 'the bus was built';
        try {
          // Built, it would connect and retry: closed at once, so the test ends either way.
          await new RedisBus({ url, [key]: value }).close();
        } catch (error) {
          message = error instanceof Error ? error.message : String(error);
        }
        assert.match(message, new RegExp(`^RedisBus: ${key} must be`));
        assert.equal(connections, 0, 'no connection was made to Redis');
      });
    }
  }
});
