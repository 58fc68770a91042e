import 'reflect-metadata';
import {
  ConsoleLogger,
  type DynamicModule,
  type INestApplication,
  type LogLevel,
  Module,
  type Provider,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { JwtService, type JwtSignOptions } from '@nestjs/jwt';
import type { AddressInfo } from 'node:net';
import {
  type RealtimeModuleExtras,
  RealtimeModule,
  type RealtimeModuleOptions,
  RealtimeWsAdapter,
} from '../../src/realtime/index.js';

export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnop';

/** Records every log line so tests can assert on them (and that no token is ever logged). */
export class CapturingLogger extends ConsoleLogger {
  readonly lines: string[] = [];

  protected override printMessages(
    messages: unknown[],
    context?: string,
    logLevel?: LogLevel,
    writeStreamType?: 'stdout' | 'stderr',
  ): void {
    for (const message of messages) {
      this.lines.push(
        `${logLevel ?? 'log'} [${context ?? ''}] ${typeof message === 'string' ? message : JSON.stringify(message)}`,
      );
    }
    if (process.env.TEST_LOGS === '1')
      super.printMessages(messages, context, logLevel, writeStreamType);
  }
}

export interface StartOptions {
  /** Module options; `jwt` defaults to HS256 with {@link TEST_SECRET}. */
  realtime?: Partial<RealtimeModuleOptions>;
  extras?: Partial<RealtimeModuleExtras>;
  /** Host providers (gateways, services) to add next to the module. */
  providers?: Provider[];
  controllers?: Type<unknown>[];
  imports?: DynamicModule[];
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Host set-up before listening (a global prefix, versioning). */
  configure?: (app: INestApplication) => void;
}

export interface TestApp {
  app: INestApplication;
  port: number;
  httpUrl: string;
  wsUrl: string;
  logger: CapturingLogger;
  /** Signs a token for `sub` with the test secret (HS256, 1 h unless `options` says otherwise). */
  token(sub: string | number, claims?: Record<string, unknown>, options?: JwtSignOptions): string;
  adminToken(sub?: string): string;
  /** GET/POST/DELETE on the app with an optional bearer token; returns status and JSON body. */
  http(
    method: string,
    path: string,
    token?: string,
    body?: unknown,
  ): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

/** Boots a real Nest app with RealtimeModule on 127.0.0.1 and a free port. */
export async function startTestApp(options: StartOptions = {}): Promise<TestApp> {
  const realtime: RealtimeModuleOptions = { jwt: { secret: TEST_SECRET }, ...options.realtime };
  @Module({
    imports: [
      RealtimeModule.forRoot({ ...realtime, ...options.extras }),
      ...(options.imports ?? []),
    ],
    providers: options.providers ?? [],
    controllers: options.controllers ?? [],
  })
  class TestAppModule {}

  const logger = new CapturingLogger();
  const app = await NestFactory.create(TestAppModule, { logger });
  app.useWebSocketAdapter(new RealtimeWsAdapter(app));
  options.configure?.(app);
  await app.listen(options.port ?? 0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const httpUrl = `http://127.0.0.1:${port}`;
  const jwt = new JwtService({ secret: TEST_SECRET });
  let closed = false;
  return {
    app,
    port,
    httpUrl,
    wsUrl: `ws://127.0.0.1:${port}${realtime.path ?? '/ws'}`,
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
