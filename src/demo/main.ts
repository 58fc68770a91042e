import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createDemoApp } from './bootstrap.js';
import { loadDemoConfig } from './demo-config.js';

async function bootstrap(): Promise<void> {
  const config = loadDemoConfig();
  const app = await createDemoApp(config);
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
