import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type Browser, chromium, type Page } from 'playwright-core';
import { loadDemoConfig } from '../../src/demo/demo-config.js';
import { DemoModule } from '../../src/demo/demo.module.js';
import { RealtimeWsAdapter } from '../../src/realtime/index.js';
import { CapturingLogger } from './test-app.js';

/** Debian's Chromium; never a browser downloaded by a test tool. */
export const CHROMIUM = '/usr/bin/chromium';

export interface DemoApp {
  app: INestApplication;
  url: string;
  wsUrl: string;
}

/** Boots the demo app on 127.0.0.1 and a free port, with a quiet logger. */
export async function startDemo(
  secret: string,
  env: Record<string, string> = {},
): Promise<DemoApp> {
  const config = loadDemoConfig({ PORT: '0', JWT_SECRET: secret, ...env } as NodeJS.ProcessEnv);
  const app = await NestFactory.create(DemoModule.forRoot(config), {
    logger: new CapturingLogger(),
  });
  app.useWebSocketAdapter(new RealtimeWsAdapter(app));
  await app.listen(config.port, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/ws` };
}

/** Headless Chromium with the flags this machine needs, or undefined when it is not installed. */
export async function launchChromium(timeoutMs: number): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) return undefined;
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: timeoutMs,
  });
}

/**
 * True when the browser tests can run. Without Chromium they fail when REQUIRE_BROWSER=1 (CI),
 * else they are skipped, loudly. `what` names what was then not tested.
 */
export function browserAvailable(t: TestContext, what: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  const reason = `${CHROMIUM} not found: ${what} was NOT tested in a browser`;
  if (process.env.REQUIRE_BROWSER === '1') {
    assert.fail(`${reason} (REQUIRE_BROWSER=1). Install Chromium, e.g. apt-get install chromium.`);
  }
  console.warn(`\n${'!'.repeat(78)}\n!!! SKIPPED: ${reason}.\n${'!'.repeat(78)}\n`);
  t.skip(reason);
  return false;
}

/**
 * With SAVE_SCREENSHOTS=1, saves a full-page screenshot of `page` as docs/<name> (for the
 * README); otherwise does nothing.
 */
export async function saveScreenshot(page: Page, name: string, timeoutMs: number): Promise<void> {
  if (process.env.SAVE_SCREENSHOTS !== '1') return;
  const docs = new URL('../../../docs/', import.meta.url); // build/test/support/ -> docs/
  mkdirSync(docs, { recursive: true });
  await page.screenshot({
    path: fileURLToPath(new URL(name, docs)),
    fullPage: true,
    animations: 'disabled',
    timeout: timeoutMs,
  });
}
