import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { JwtService } from '@nestjs/jwt';
import type { AddressInfo } from 'node:net';
import {
  RealtimeModule,
  type RealtimeModuleOptions,
  RealtimeWsAdapter,
} from '../../src/realtime/index.js';
import { CapturingLogger, type StartOptions, TEST_SECRET, type TestApp } from './test-app.js';

/**
 * Boots the app like `startTestApp`, but on a chosen port (0 for a free one), so that a test can
 * stop a server and start a new one where its clients reconnect. Always on 127.0.0.1.
 */
export async function startTestAppOnPort(
  port: number,
  options: StartOptions = {},
): Promise<TestApp> {
  const realtime: RealtimeModuleOptions = { jwt: { secret: TEST_SECRET }, ...options.realtime };
  @Module({
    imports: [
      RealtimeModule.forRoot({ ...realtime, ...options.extras }),
      ...(options.imports ?? []),
    ],
    providers: options.providers ?? [],
    controllers: options.controllers ?? [],
  })
  class TestAppOnPortModule {}

  const logger = new CapturingLogger();
  const app = await NestFactory.create(TestAppOnPortModule, { logger });
  app.useWebSocketAdapter(new RealtimeWsAdapter(app));
  await app.listen(port, '127.0.0.1');
  const boundPort = (app.getHttpServer().address() as AddressInfo).port;
  const httpUrl = `http://127.0.0.1:${boundPort}`;
  const jwt = new JwtService({ secret: TEST_SECRET });
  let closed = false;
  return {
    app,
    port: boundPort,
    httpUrl,
    wsUrl: `ws://127.0.0.1:${boundPort}${realtime.path ?? '/ws'}`,
    logger,
    token: (sub, claims = {}, signOptions = {}) =>
      jwt.sign({ sub, ...claims }, { algorithm: 'HS256', expiresIn: 3600, ...signOptions }),
    adminToken: (sub = 'admin-1') =>
      jwt.sign({ sub, role: 'admin' }, { algorithm: 'HS256', expiresIn: 3600 }),
    async http(method, path, token, body) {
      const response = await fetch(`${httpUrl}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body:
          body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, body: parsed };
    },
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
}
