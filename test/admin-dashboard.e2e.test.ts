import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { DemoTokens } from '../src/demo/demo.tokens.js';
import {
  browserAvailable,
  saveScreenshot,
  type DemoApp,
  launchChromium,
  startDemo,
} from './support/browser.js';
import { uniqueNamespace } from './support/cluster.js';
import { requireRedis, startRedisServer } from './support/redis-server.js';
import { TestClient } from './support/test-client.js';

const SECRET = 'admin-dashboard-test-secret-0123456789abcdef';
/** Bound on every single wait in the browser and on the wire. */
const WAIT_MS = 10_000;

function get(url: string): Promise<Response> {
  return fetch(url, { signal: AbortSignal.timeout(5000) });
}

describe('admin dashboard in Chromium', () => {
  let demo: DemoApp;
  let tokens: DemoTokens;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const clients: TestClient[] = [];

  before(async () => {
    demo = await startDemo(SECRET);
    tokens = new DemoTokens(SECRET);
    browser = await launchChromium(WAIT_MS);
  });

  after(async () => {
    for (const client of clients) client.close();
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await demo?.app.close();
  });

  /** A test `ws` client of `userId`, connected and established. */
  async function wsClient(userId: string): Promise<TestClient> {
    const client = await TestClient.open(demo.wsUrl, tokens.sign(userId, false, 600));
    clients.push(client);
    return client;
  }

  /** Opens /admin in a fresh context, records page errors, signs in with a dev admin token. */
  async function openDashboard(url = demo.url): Promise<{ page: Page; errors: string[] }> {
    const context = await browser!.newContext({ viewport: { width: 1440, height: 1000 } });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.setDefaultNavigationTimeout(WAIT_MS);
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console: ${message.text()}`);
    });
    await page.goto(`${url}/admin`, { timeout: WAIT_MS });
    await page.locator('body[data-loaded="true"]').waitFor({ timeout: WAIT_MS });
    await page.getByTestId('dev-user-id').fill('ops-admin');
    await page.getByTestId('dev-token').click();
    await page.locator('[data-testid="auth-status"][data-tone="ok"]').waitFor({ timeout: WAIT_MS });
    await page.locator('body[data-ready="true"]').waitFor({ timeout: WAIT_MS });
    await page
      .locator('[data-testid="client-state"][data-state="open"]')
      .waitFor({ timeout: WAIT_MS });
    return { page, errors };
  }

  function row(page: Page, userId: string) {
    return page.locator(`[data-testid="connection-row"][data-user-id="${userId}"]`);
  }

  it('shows a live connection, disconnects it (4004) and broadcasts to everyone', async (t) => {
    if (!browserAvailable(t, 'the admin dashboard')) return;
    const kicked = await wsClient('probe-kick');
    const listener = await wsClient('probe-listen');
    listener.send({ type: 'subscribe', data: { events: ['system.notification'] } });
    await listener.next('subscription.acknowledged', WAIT_MS);

    const { page, errors } = await openDashboard();

    // Both test clients and the dashboard itself show up in the live table.
    await row(page, 'probe-kick').waitFor({ timeout: WAIT_MS });
    await row(page, 'probe-listen').waitFor({ timeout: WAIT_MS });
    await row(page, 'ops-admin').locator('.tag').waitFor({ timeout: WAIT_MS });
    assert.match(
      (await row(page, 'probe-kick').getAttribute('data-connection-id')) ?? '',
      /^[0-9a-f-]{36}$/,
    );
    assert.match(
      (await row(page, 'probe-kick').locator('td').nth(1).textContent()) ?? '',
      /127\.0\.0\.1/,
    );
    await page
      .locator('[data-testid="m-connections"]', { hasText: /^3$/ })
      .waitFor({ timeout: WAIT_MS });
    assert.equal(await page.getByTestId('m-users').textContent(), '3');
    await page
      .locator('[data-testid="subscriptions"] [data-name="system.notification"]')
      .waitFor({ timeout: WAIT_MS });
    assert.ok((await page.locator('[data-testid="instance-row"]').count()) >= 1);
    // Rates appear from the second refresh on.
    await page
      .locator('[data-testid="m-in-rate"]', { hasText: /^\d+(\.\d)?$/ })
      .waitFor({ timeout: WAIT_MS });
    // Bytes come from the connection's details.
    await row(page, 'probe-kick')
      .locator('[data-col="bytes"]', { hasText: /B \/ \d/ })
      .waitFor({ timeout: WAIT_MS });

    // Disconnect → the test client is closed with 4004, and the row goes away.
    await row(page, 'probe-kick').getByTestId('disconnect').click({ timeout: WAIT_MS });
    const closed = await kicked.waitClose(WAIT_MS);
    assert.equal(closed.code, 4004);
    await page.locator('[data-testid="conn-status"][data-tone="ok"]').waitFor({ timeout: WAIT_MS });
    await row(page, 'probe-kick').waitFor({ state: 'detached', timeout: WAIT_MS });

    // Broadcast to everyone from the form.
    await page.getByTestId('bc-target').selectOption('all', { timeout: WAIT_MS });
    await page.getByTestId('bc-type').fill('system.notification', { timeout: WAIT_MS });
    await page
      .getByTestId('bc-data')
      .fill('{ "message": "from the dashboard", "level": "info" }', { timeout: WAIT_MS });
    await page.getByTestId('bc-send').click({ timeout: WAIT_MS });
    const message = await listener.next('system.notification', WAIT_MS);
    assert.equal(message.source, 'admin_broadcast');
    assert.deepEqual(message.data, { message: 'from the dashboard', level: 'info' });
    await page.locator('[data-testid="bc-status"][data-tone="ok"]').waitFor({ timeout: WAIT_MS });
    // The dashboard's own RealtimeClient receives it too.
    await page
      .locator(
        '[data-testid="received-entry"][data-type="system.notification"][data-source="admin_broadcast"]',
      )
      .waitFor({ timeout: WAIT_MS });

    await saveScreenshot(page, 'dashboard.png', WAIT_MS);
    assert.deepEqual(errors, []);
  });

  it('broadcasts to one user only, and writes server text as text', async (t) => {
    if (!browserAvailable(t, 'the admin dashboard')) return;
    const target = await wsClient('<img src=x onerror=alert(1)>');
    const other = await wsClient('probe-other');
    const { page, errors } = await openDashboard();

    const hostile = row(page, '<img src=x onerror=alert(1)>');
    await hostile.waitFor({ timeout: WAIT_MS });
    assert.equal(
      await hostile.locator('td.user .mono').textContent(),
      '<img src=x onerror=alert(1)>',
    );
    assert.equal(await page.locator('[data-testid="connections"] img').count(), 0);

    await page.getByTestId('bc-target').selectOption('user', { timeout: WAIT_MS });
    await page
      .getByTestId('bc-target-value')
      .fill('<img src=x onerror=alert(1)>', { timeout: WAIT_MS });
    await page.getByTestId('bc-type').fill('ops.note', { timeout: WAIT_MS });
    await page.getByTestId('bc-data').fill('{ "n": 1 }', { timeout: WAIT_MS });
    await page.getByTestId('bc-send').click({ timeout: WAIT_MS });
    const message = await target.next('ops.note', WAIT_MS);
    assert.equal(message.source, 'admin_broadcast');
    await page
      .locator('[data-testid="bc-status"][data-tone="ok"]', { hasText: 'to 1 connection' })
      .waitFor({ timeout: WAIT_MS });
    assert.equal(other.ofType('ops.note').length, 0);

    // Invalid JSON is refused in the page, before any request.
    await page.getByTestId('bc-data').fill('{ nope', { timeout: WAIT_MS });
    await page.getByTestId('bc-send').click({ timeout: WAIT_MS });
    await page
      .locator('[data-testid="bc-status"][data-tone="error"]', { hasText: 'not valid JSON' })
      .waitFor({ timeout: WAIT_MS });
    assert.deepEqual(errors, []);
  });

  it('keeps the Disconnect button of a 256-character user id in view', async (t) => {
    if (!browserAvailable(t, 'the admin dashboard')) return;
    const longId = `<b>${'W'.repeat(249)}</b>`; // 256, the most a token may carry
    const target = await wsClient(longId);
    const { page, errors } = await openDashboard();
    const hostile = row(page, longId);
    await hostile.waitFor({ timeout: WAIT_MS });
    // Cut in the cell, whole in the title.
    assert.equal(await hostile.locator('td.user .mono').getAttribute('title'), longId);
    const layout = await page.evaluate(() => {
      const wrap = document.querySelector('.table-wrap')!;
      const button = document.querySelector(
        '[data-testid="connection-row"] [data-testid="disconnect"]',
      )!;
      return {
        overflow: wrap.scrollWidth - wrap.clientWidth,
        buttonRight: button.getBoundingClientRect().right,
        wrapRight: wrap.getBoundingClientRect().right,
      };
    });
    assert.ok(layout.overflow <= 0, `the table is ${layout.overflow}px wider than its box`);
    assert.ok(layout.buttonRight <= layout.wrapRight, 'Disconnect is outside the visible box');
    await hostile.getByTestId('disconnect').click({ timeout: WAIT_MS });
    assert.equal((await target.waitClose(WAIT_MS)).code, 4004);
    assert.deepEqual(errors, []);
  });

  it('refuses a token without the admin claim', async (t) => {
    if (!browserAvailable(t, 'the admin dashboard')) return;
    const context = await browser!.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    await page.goto(`${demo.url}/admin`, { timeout: WAIT_MS });
    await page.locator('body[data-loaded="true"]').waitFor({ timeout: WAIT_MS });
    await page.getByTestId('token-input').fill(tokens.sign('not-admin', false, 600));
    await page.getByTestId('use-token').click({ timeout: WAIT_MS });
    await page
      .locator('[data-testid="auth-status"][data-tone="error"]', { hasText: 'no admin claim' })
      .waitFor({ timeout: WAIT_MS });
    assert.equal(await page.getByTestId('bc-send').isDisabled(), true);
  });

  it('with two instances on one Redis, shows both and disconnects a client of the other', async (t) => {
    if (!browserAvailable(t, 'the admin dashboard with two instances')) return;
    const redis = await startRedisServer();
    if (!requireRedis(t, redis)) return;
    const env = { REDIS_URL: redis.url, REALTIME_REDIS_NAMESPACE: uniqueNamespace('dashboard') };
    const first = await startDemo(SECRET, env);
    const second = await startDemo(SECRET, env);
    try {
      // A client of the second instance, watched from the first instance's dashboard.
      const remote = await TestClient.open(second.wsUrl, tokens.sign('on-second', false, 600));
      clients.push(remote);
      const { page, errors } = await openDashboard(first.url);

      await page.locator('[data-testid="instance-row"]').nth(1).waitFor({ timeout: WAIT_MS });
      assert.equal(await page.locator('[data-testid="instance-row"]').count(), 2);
      await row(page, 'on-second').waitFor({ timeout: WAIT_MS });
      // The dashboard's own connection (first) and the remote client (second), cluster-wide.
      await page
        .locator('[data-testid="m-connections"]', { hasText: /^2$/ })
        .waitFor({ timeout: WAIT_MS });

      await row(page, 'on-second').getByTestId('disconnect').click({ timeout: WAIT_MS });
      assert.equal((await remote.waitClose(WAIT_MS)).code, 4004);
      await row(page, 'on-second').waitFor({ state: 'detached', timeout: WAIT_MS });
      assert.deepEqual(errors, []);
    } finally {
      await first.app.close();
      await second.app.close();
      await redis.stop();
    }
  });
});

describe('admin dashboard files and the SDK modules (no browser)', () => {
  let demo: DemoApp;
  before(async () => {
    demo = await startDemo(SECRET);
  });
  after(() => demo?.app.close());

  it('serves /admin with the strict CSP, and its script and stylesheet', async () => {
    const page = await get(`${demo.url}/admin`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(await page.text(), /<script type="module" src="\/demo\/admin\.js"><\/script>/);
    const script = await get(`${demo.url}/demo/admin.js`);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
    const text = await script.text();
    assert.match(text, /from '\/sdk\/client\/index\.js'/);
    assert.doesNotMatch(text, /innerHTML|[?&]token=/);
    const styles = await get(`${demo.url}/demo/admin.css`);
    assert.match(styles.headers.get('content-type') ?? '', /^text\/css/);
    await styles.body?.cancel();
  });

  it('serves the compiled SDK as JavaScript modules', async () => {
    for (const path of [
      '/sdk/client/index.js',
      '/sdk/client/realtime-client.js',
      '/sdk/protocol/index.js',
    ]) {
      const response = await get(`${demo.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type') ?? '', /^text\/javascript/, path);
      assert.match(await response.text(), /export /, path);
    }
  });

  it('serves only .js module names from the two SDK folders', async () => {
    for (const path of [
      '/sdk/client/index.d.ts',
      '/sdk/client/index.js.map',
      '/sdk/client/missing.js',
      '/sdk/client/realtime-client.spec.js',
      '/sdk/realtime/index.js',
      '/sdk/demo/main.js',
      '/sdk/client/..%2Frealtime%2Findex.js',
      '/sdk/client/..%2F..%2F..%2Fpackage.json',
      '/sdk/client/%2E%2E%2Fdemo%2Fmain.js',
      '/sdk/client/../demo/main.js',
    ]) {
      const response = await get(`${demo.url}${path}`);
      assert.equal(response.status, 404, path);
      await response.body?.cancel();
    }
  });
});
