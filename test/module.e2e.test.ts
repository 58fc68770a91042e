import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Injectable, type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { JwtService } from '@nestjs/jwt';
import type { AddressInfo } from 'node:net';
import { RealtimeModule, RealtimeService, RealtimeWsAdapter } from '../src/realtime/index.js';
import { CapturingLogger, TEST_SECRET } from './support/test-app.js';
import { TestClient } from './support/test-client.js';

/** Stands in for a host's ConfigService. */
@Injectable()
class SettingsService {
  readonly secret = TEST_SECRET;
  readonly perUser = 2;
}

@Module({ providers: [SettingsService], exports: [SettingsService] })
class SettingsModule {}

async function listen(app: INestApplication): Promise<number> {
  app.useWebSocketAdapter(new RealtimeWsAdapter(app));
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as AddressInfo).port;
}

describe('RealtimeModule.forRootAsync', () => {
  let app: INestApplication | undefined;
  after(() => app?.close());

  it('takes its options from an injected factory, and the static extras beside it', async () => {
    @Module({
      imports: [
        RealtimeModule.forRootAsync({
          imports: [SettingsModule],
          inject: [SettingsService],
          useFactory: (settings: SettingsService) => ({
            jwt: { secret: settings.secret },
            maxConnectionsPerUser: settings.perUser,
          }),
          adminPrefix: 'async-admin',
        }),
      ],
    })
    class AsyncAppModule {}

    app = await NestFactory.create(AsyncAppModule, { logger: new CapturingLogger() });
    const port = await listen(app);
    const jwt = new JwtService({ secret: TEST_SECRET });
    const client = await TestClient.open(
      `ws://127.0.0.1:${port}/ws`,
      jwt.sign({ sub: 'u1' }, { expiresIn: 60 }),
    );
    assert.equal(client.received[0]!.data.limits.max_connections_per_user, 2);
    assert.equal(await app.get(RealtimeService).sendToUser('u1', 'hello', {}), 1);
    const admin = jwt.sign({ sub: 'a', role: 'admin' }, { expiresIn: 60 });
    const stats = await fetch(`http://127.0.0.1:${port}/async-admin/stats`, {
      headers: { authorization: `Bearer ${admin}` },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(stats.status, 200);
    client.close();
  });
});

describe('RealtimeModule options errors', () => {
  it('fails at startup with a message that names the option and the fix', async () => {
    @Module({ imports: [RealtimeModule.forRoot({ jwt: {} })] })
    class NoSecretModule {}
    await assert.rejects(
      NestFactory.create(NoSecretModule, { logger: false, abortOnError: false }),
      /set jwt\.secret \(HS\*\) or jwt\.publicKey/,
    );
  });
});
