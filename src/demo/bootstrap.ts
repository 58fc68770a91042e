import { ConsoleLogger, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RealtimeWsAdapter } from '../realtime/index.js';
import type { DemoConfig } from './demo-config.js';
import { DemoModule } from './demo.module.js';

/** The demo app, configured and not yet listening: main.ts and the benchmark both start it. */
export async function createDemoApp(config: DemoConfig): Promise<INestApplication> {
  const logger = new ConsoleLogger({
    json: process.env.LOG_FORMAT === 'json',
    ...(config.logLevels ? { logLevels: config.logLevels } : {}),
  });
  // forceCloseConnections: a client that never finishes its HTTP request must not hold up close.
  const app = await NestFactory.create(DemoModule.forRoot(config), {
    logger,
    forceCloseConnections: true,
  });
  app.useWebSocketAdapter(new RealtimeWsAdapter(app));
  app.enableShutdownHooks();
  return app;
}
