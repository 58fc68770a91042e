import 'reflect-metadata';
import { ConsoleLogger, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RealtimeWsAdapter } from '../realtime/index.js';
import { loadDemoConfig } from './demo-config.js';
import { DemoModule } from './demo.module.js';

async function bootstrap(): Promise<void> {
  const config = loadDemoConfig();
  const logger = new ConsoleLogger({ json: process.env.LOG_FORMAT === 'json' });
  // forceCloseConnections: a client that never finishes its HTTP request must not hold up close.
  const app = await NestFactory.create(DemoModule.forRoot(config), {
    logger,
    forceCloseConnections: true,
  });
  app.useWebSocketAdapter(new RealtimeWsAdapter(app));
  app.enableShutdownHooks();
  await app.listen(config.port, process.env.HOST ?? '127.0.0.1');
  const log = new Logger('Demo');
  if (config.usingDevelopmentSecret) {
    log.warn(
      'JWT_SECRET is not set: using a development secret. Never run like this in production.',
    );
  }
  const url = (await app.getUrl()).replace('[::1]', 'localhost').replace('127.0.0.1', 'localhost');
  log.log(`Demo running at ${url}  (WebSocket: ${url.replace(/^http/, 'ws')}/ws)`);
}

bootstrap().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
