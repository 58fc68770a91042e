import { ConsoleLogger, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RealtimeWsAdapter } from '../realtime/index.js';
import type { DemoConfig } from './demo-config.js';
import { DemoModule } from './demo.module.js';
import { HttpConnectionsClosingAdapter } from './http-connections-closing.adapter.js';

/** The demo app, configured and not yet listening: main.ts and the benchmark both start it. */
export async function createDemoApp(config: DemoConfig): Promise<INestApplication> {
  const logger = new ConsoleLogger({
    json: config.jsonLogs,
    ...(config.logLevels ? { logLevels: config.logLevels } : {}),
  });
  // abortOnError off: a refused module option reaches the caller (main.ts: one line, exit 1)
  // instead of process.abort().
  const app = await NestFactory.create(
    DemoModule.forRoot(config),
    new HttpConnectionsClosingAdapter(),
    { logger, abortOnError: false },
  );
  app.useWebSocketAdapter(new RealtimeWsAdapter(app));
  app.enableShutdownHooks();
  return app;
}
