import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createDemoApp } from './bootstrap.js';
import { loadDemoConfig } from './demo-config.js';

async function bootstrap(): Promise<void> {
  const config = loadDemoConfig();
  const app = await createDemoApp(config);
  await app.listen(config.port, config.host);
  const log = new Logger('Demo');
  for (const warning of config.warnings) log.warn(warning);
  const url = (await app.getUrl()).replace('[::1]', 'localhost').replace('127.0.0.1', 'localhost');
  log.log(`Demo running at ${url}  (WebSocket: ${url.replace(/^http/, 'ws')}/ws)`);
}

bootstrap().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  // A bad setting is reported in the format the logs were asked for.
  if (process.env.LOG_FORMAT === 'json') {
    console.error(JSON.stringify({ level: 'fatal', pid: process.pid, message, context: 'Demo' }));
  } else {
    console.error(`Demo not started: ${message}`);
  }
  process.exit(1);
});
