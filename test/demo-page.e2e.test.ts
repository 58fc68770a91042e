import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { once } from 'node:events';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { DemoTokens } from '../src/demo/demo.tokens.js';
import { DEMO_RATE_LIMITS } from '../src/demo/demo-rate-limit.guard.js';
import { MAX_UPLOADS_PER_USER } from '../src/demo/demo-uploads.service.js';
import { RealtimeService } from '../src/realtime/index.js';
import {
  browserAvailable,
  saveScreenshot,
  type DemoApp,
  launchChromium,
  startDemo,
} from './support/browser.js';
import { spawnDemoProcess } from './support/demo-process.js';
import { leakedTokens } from './support/jwt-craft.js';
import { eventually, TestClient } from './support/test-client.js';

const SECRET = 'demo-page-test-secret-0123456789abcdef';
/** Bound on every single wait in the browser. */
const WAIT_MS = 10_000;

function post(url: string, body: unknown, token?: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
}

interface ErrorBody {
  statusCode: number;
  message: string | string[];
}

/** A user id of the longest kind a token may carry (256), with markup in it. */
const HOSTILE_ID = `<img src=x onerror="window.__pwned='id'">${'W'.repeat(200)}`;

describe('demo page in Chromium', () => {
  let demo: DemoApp;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];

  before(async () => {
    demo = await startDemo(SECRET);
    browser = await launchChromium(WAIT_MS);
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await demo?.app.close();
  });

  /**
   * A fresh page of `on` (own cookies and storage) that records page errors and the URLs of the
   * WebSockets it opens.
   */
  async function openPage(
    on: DemoApp = demo,
  ): Promise<{ page: Page; errors: string[]; sockets: string[] }> {
    const context = await browser!.newContext({ viewport: { width: 1440, height: 1080 } });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.setDefaultNavigationTimeout(WAIT_MS);
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      // A reconnect attempt while the server is down is logged by Chromium; it is expected.
      if (message.type() === 'error' && !/WebSocket connection to/.test(message.text())) {
        errors.push(`console: ${message.text()}`);
      }
    });
    const sockets: string[] = [];
    page.on('websocket', (socket) => sockets.push(socket.url()));
    await page.goto(on.url, { timeout: WAIT_MS });
    await page.locator('body[data-ready="true"]').waitFor({ timeout: WAIT_MS });
    return { page, errors, sockets };
  }

  /** Gets a token for `userId`, connects, and waits for connection.established. */
  async function signInAndConnect(page: Page, userId: string): Promise<void> {
    await page.getByTestId('user-id').fill(userId);
    await page.getByTestId('get-token').click();
    await page.locator('[data-testid="token-status"][data-state="ready"]').waitFor();
    await page.getByTestId('connect').click();
    await page.locator('[data-testid="conn-state"][data-state="open"]').waitFor();
    await logEntry(page, 'connection.established').waitFor();
    assert.equal(await page.getByTestId('connection-user').textContent(), userId);
  }

  function logEntry(page: Page, type: string) {
    return page.locator(`[data-testid="log-entry"][data-direction="in"][data-type="${type}"]`);
  }

  async function subscribe(page: Page, event: string): Promise<void> {
    await page.locator(`input[data-event="${event}"]`).check();
    await page.locator(`[data-testid="active-subs"] [data-name="${event}"]`).waitFor();
  }

  it('gets a token, connects, subscribes and follows an upload to 100%', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    const { page, errors, sockets } = await openPage();

    await signInAndConnect(page, 'alice');
    assert.deepEqual(sockets, [demo.wsUrl], 'one WebSocket, with no token in its URL');
    assert.equal(await page.getByTestId('conn-state-text').textContent(), 'open');
    assert.match((await page.getByTestId('connection-id').textContent()) ?? '', /^[0-9a-f-]{36}$/);
    assert.match((await page.locator('#limit-max-message-size').textContent()) ?? '', /KiB/);

    await subscribe(page, 'upload.progress');
    await subscribe(page, 'upload.completed');
    await subscribe(page, 'system.notification');

    await page.getByTestId('upload-start').click();
    await page.locator('[data-testid="upload-status"][data-state="completed"]').waitFor();
    assert.equal(await page.getByTestId('upload-bar').getAttribute('aria-valuenow'), '100');
    assert.equal(await page.getByTestId('upload-percent').textContent(), '100%');
    await logEntry(page, 'upload.completed').waitFor();
    assert.ok((await logEntry(page, 'upload.progress').count()) >= 1);
    // Newest first: the completion is above every progress entry.
    const types = await page
      .locator('[data-testid="log-entry"][data-direction="in"]')
      .evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.type));
    assert.ok(types.indexOf('upload.completed') < types.indexOf('upload.progress'));

    // A broadcast notification comes back on the socket.
    await page.getByTestId('notify-message').fill('Deploy finished');
    await page.getByTestId('notify-send').click();
    await logEntry(page, 'system.notification').waitFor();
    await page.locator('[data-testid="notify-status"][data-tone="ok"]').waitFor();

    // Something in the room, so that the screenshot shows every part of the page.
    await page.getByTestId('room-join').click();
    await page.locator('[data-testid="active-subs"] [data-name="room:lobby"]').waitFor();
    await page.getByTestId('chat-text').fill('Hello, lobby!');
    await page.getByTestId('chat-send').click();
    await page.getByTestId('chat-message').first().waitFor();
    await page.getByTestId('ping').click();
    await page.locator('[data-testid="ping-result"][data-state="ok"]').waitFor();

    await page.mouse.wheel(0, -10_000);
    await saveScreenshot(page, 'demo.png', WAIT_MS);
    assert.deepEqual(errors, []);
  });

  it('cancels an upload with upload.cancel and shows upload.cancelled', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    const { page, errors } = await openPage();
    await signInAndConnect(page, 'carol');

    await page.getByTestId('upload-start').click();
    await logEntry(page, 'upload.progress').first().waitFor();
    await page.getByTestId('upload-cancel').click();
    await page
      .locator('[data-testid="log-entry"][data-direction="out"][data-type="upload.cancel"]')
      .waitFor();
    await logEntry(page, 'upload.cancel.acknowledged').waitFor();
    await logEntry(page, 'upload.cancelled').waitFor();
    await page.locator('[data-testid="upload-status"][data-state="cancelled"]').waitFor();
    assert.equal(await logEntry(page, 'upload.completed').count(), 0);
    assert.deepEqual(errors, []);
  });

  it('pings and shows the round trip', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    const { page, errors } = await openPage();
    await signInAndConnect(page, 'dave');

    await page.getByTestId('ping').click();
    const result = page.locator('[data-testid="ping-result"][data-state="ok"]');
    await result.waitFor();
    assert.match((await result.textContent()) ?? '', /^round trip \d+(\.\d+)? ms$/);
    const pong = logEntry(page, 'pong').first();
    await pong.waitFor();
    assert.match((await pong.textContent()) ?? '', /"pingId": "ping_\d+"/);
    assert.deepEqual(errors, []);
  });

  it('marks a notification read and receives notification_read', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    const { page, errors } = await openPage();
    await signInAndConnect(page, 'erin');

    await page.getByTestId('read-id').fill('n-42');
    await page.getByTestId('mark-read').click();
    const entry = logEntry(page, 'notification_read').first();
    await entry.waitFor();
    assert.match((await entry.textContent()) ?? '', /"notification_id": "n-42"/);
    await page.locator('[data-testid="read-status"][data-tone="ok"]').waitFor();
    assert.deepEqual(errors, []);
  });

  it('shows a chat message sent by a second user in another page', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    const first = await openPage();
    const second = await openPage();
    await signInAndConnect(first.page, 'frank');
    await signInAndConnect(second.page, 'grace');

    for (const { page } of [first, second]) {
      await page.getByTestId('room-name').fill('team-7');
      await page.getByTestId('room-join').click();
      await page.locator('[data-testid="active-subs"] [data-name="room:team-7"]').waitFor();
    }

    await second.page.getByTestId('chat-text').fill('hi frank, grace here');
    await second.page.getByTestId('chat-send').click();
    await logEntry(second.page, 'chat.sent').waitFor();

    const seen = first.page.locator('[data-testid="chat-message"][data-from="grace"]');
    await seen.waitFor();
    assert.match((await seen.textContent()) ?? '', /hi frank, grace here/);
    assert.equal(await seen.getAttribute('data-room'), 'team-7');
    await logEntry(first.page, 'chat.message').waitFor();
    assert.deepEqual(first.errors, []);
    assert.deepEqual(second.errors, []);
  });

  it('after a server restart on the same port, reconnects and restores its subscriptions', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    let own = await startDemo(SECRET);
    const port = new URL(own.url).port;
    try {
      const { page, errors } = await openPage(own);
      await signInAndConnect(page, 'restart-user');
      await subscribe(page, 'system.notification');
      const firstId = await page.getByTestId('connection-id').textContent();
      // A broadcast from a send: the page now holds a position in the `all` stream.
      await page.getByTestId('notify-message').fill('before the restart');
      await page.getByTestId('notify-send').click();
      await page.locator('.toast', { hasText: 'before the restart' }).waitFor();

      await own.app.close();
      await page.locator('[data-testid="conn-state"][data-state="reconnecting"]').waitFor();
      assert.match((await page.getByTestId('close-info').textContent()) ?? '', /Reconnecting/);
      own = await startDemo(SECRET, { PORT: port });

      await page.locator('[data-testid="conn-state"][data-state="open"]').waitFor();
      await page.locator('[data-testid="active-subs"] [data-name="system.notification"]').waitFor();
      assert.notEqual(await page.getByTestId('connection-id').textContent(), firstId);
      // The new server has a new history: the page is told it cannot replay the old stream.
      await page.locator('.toast', { hasText: 'epoch_changed' }).waitFor();
      // The restored subscription is live on the new server.
      await page.getByTestId('notify-message').fill('back after the restart');
      await page.getByTestId('notify-send').click();
      await page.locator('.toast', { hasText: 'back after the restart' }).waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await own.app.close();
    }
  });

  it('with a pasted token that expires, shows 4001 and stays closed', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    const { page, errors } = await openPage();
    await page.getByText('Use an existing token').click();
    await page.getByTestId('token-input').fill(new DemoTokens(SECRET).sign('paste-user', false, 2));
    await page.getByTestId('token-input').press('Enter');
    await page.locator('[data-testid="token-status"][data-state="ready"]').waitFor();
    await page.getByTestId('connect').click();
    await page.locator('[data-testid="conn-state"][data-state="open"]').waitFor();

    // A pasted token cannot be renewed, so the SDK does not retry with the refused one.
    await page.locator('[data-testid="conn-state"][data-state="closed"]').waitFor();
    assert.match(
      (await page.getByTestId('close-info').textContent()) ?? '',
      /4001 \(Token expired\)/,
    );
    assert.equal(await page.getByTestId('connect').isDisabled(), false);
    assert.deepEqual(errors, []);
  });

  it('gets a broadcast from the dashboard in a second tab, then is disconnected: 4004, no reconnect', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    const { page, errors } = await openPage();
    await signInAndConnect(page, 'kick-me');

    const admin = await openPage();
    await admin.page.goto(`${demo.url}/admin`);
    await admin.page.locator('body[data-loaded="true"]').waitFor();
    await admin.page.getByTestId('dev-user-id').fill('ops');
    await admin.page.getByTestId('dev-token').click();
    const row = admin.page.locator('[data-testid="connection-row"][data-user-id="kick-me"]');
    await row.waitFor();

    // A broadcast to this user from the dashboard shows up in the demo page.
    await admin.page.getByTestId('bc-target').selectOption('user');
    await admin.page.getByTestId('bc-target-value').fill('kick-me');
    await admin.page.getByTestId('bc-type').fill('system.notification');
    await admin.page
      .getByTestId('bc-data')
      .fill('{ "message": "hello from the dashboard", "level": "info" }');
    await admin.page.getByTestId('bc-send').click();
    await page.locator('.toast', { hasText: 'hello from the dashboard' }).waitFor();
    await logEntry(page, 'system.notification').waitFor();
    await row.getByTestId('disconnect').click();

    await page.locator('[data-testid="conn-state"][data-state="closed"]').waitFor();
    assert.match((await page.getByTestId('close-info').textContent()) ?? '', /4004/);
    await row.waitFor({ state: 'detached' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await page.getByTestId('conn-state').getAttribute('data-state'), 'closed');
    assert.deepEqual(errors, []);
    assert.deepEqual(admin.errors, []);
  });

  it('shows at most 5 toasts in a burst of notifications, the newest ones', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    const { page, errors } = await openPage();
    await signInAndConnect(page, 'burst-watcher');
    const realtime = demo.app.get(RealtimeService);
    for (let i = 0; i < 60; i++) await realtime.sendSystemNotification(`burst ${i}`);
    await page.locator('.toast', { hasText: 'burst 59' }).waitFor();
    // Each arrives as its own message; the log keeps them (up to its own cap of 200).
    await page.locator('[data-testid="log-count"]', { hasText: /^\d{2,3}$/ }).waitFor();
    assert.ok((await page.locator('.toast').count()) <= 5);
    assert.equal(await page.locator('.toast', { hasText: 'burst 0' }).count(), 0);
    assert.deepEqual(errors, []);
  });

  it('writes hostile ids, chat, notifications and broadcasts as text, inside the window', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    const { page, errors } = await openPage();
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    const requests: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(demo.url)) requests.push(request.url());
    });

    // A pasted token may carry any `sub` the signer chose.
    await page.getByText('Use an existing token').click();
    await page.getByTestId('token-input').fill(new DemoTokens(SECRET).sign(HOSTILE_ID, false, 600));
    await page.getByTestId('use-token').click();
    await page.getByTestId('connect').click();
    await page.locator('[data-testid="conn-state"][data-state="open"]').waitFor();
    assert.equal(await page.getByTestId('connection-user').textContent(), HOSTILE_ID);

    await page.getByTestId('room-join').click();
    await page.locator('[data-testid="active-subs"] [data-name="room:lobby"]').waitFor();
    const chat = `</script><script>window.__pwned='chat'</script>${'C'.repeat(300)}`;
    await page.getByTestId('chat-text').fill(chat);
    await page.getByTestId('chat-send').click();
    await page.getByTestId('chat-message').first().waitFor();

    const notice = `<svg onload="window.__pwned='notify'">${'N'.repeat(400)}`;
    await page.getByTestId('notify-message').fill(notice);
    await page.getByTestId('notify-send').click();
    await page.locator('.toast', { hasText: '<svg onload=' }).waitFor();

    // Anything an admin broadcast may carry: markup in the type, a class list as the level,
    // an object as the message, a javascript: URL, one word of 5,000 characters.
    const realtime = demo.app.get(RealtimeService);
    await realtime.broadcast('system.notification', {
      message: { html: '<img src=x onerror="window.__pwned=1">' },
      level: 'info" onmouseover="window.__pwned=2',
    });
    await realtime.broadcast(`x<img src=x onerror=window.__pwned=7>`, {
      href: 'javascript:window.__pwned="url"',
    });
    await realtime.broadcast('system.notification', { message: 'L'.repeat(5000), level: 'error' });
    await page.locator('.toast', { hasText: 'LLLL' }).waitFor();
    await logEntry(page, `x<img src=x onerror=window.__pwned=7>`).waitFor();

    const view = await page.evaluate(() => {
      const box = (element: Element) => element.getBoundingClientRect();
      const bubble = document.querySelector('[data-testid="chat-message"]')!;
      return {
        pwned: (window as unknown as { __pwned?: unknown }).__pwned,
        markup: document.body.querySelectorAll('img, svg, a, iframe, script:not([src])').length,
        pageOverflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        bubbleOverflow: bubble.scrollWidth - bubble.clientWidth,
        toastRight: Math.max(...[...document.querySelectorAll('.toast')].map((n) => box(n).right)),
        toastHeight: Math.max(
          ...[...document.querySelectorAll('.toast')].map((n) => box(n).height),
        ),
        width: window.innerWidth,
        toastClasses: [...document.querySelectorAll('.toast')].map((n) => n.className),
      };
    });
    assert.equal(view.pwned, undefined);
    assert.equal(view.markup, 0);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(requests, []);
    assert.ok(view.pageOverflow <= 0, `page wider than the window by ${view.pageOverflow}px`);
    assert.ok(view.bubbleOverflow <= 0, `chat bubble overflows by ${view.bubbleOverflow}px`);
    assert.ok(view.toastRight <= view.width, `a toast ends at ${view.toastRight}px`);
    assert.ok(view.toastHeight < 200, `a toast is ${view.toastHeight}px high`);
    for (const name of view.toastClasses) assert.match(name, /^toast (info|warning|error)$/);
    assert.deepEqual(errors, []);
  });

  it('after a refused first connect, says "Reconnected" once the server is up', async (t) => {
    if (!browserAvailable(t, 'the demo page')) return;
    let own = await startDemo(SECRET);
    const port = new URL(own.url).port;
    try {
      const { page, errors } = await openPage(own);
      await page.getByTestId('get-token').click();
      await page.locator('[data-testid="token-status"][data-state="ready"]').waitFor();
      await own.app.close();
      await page.getByTestId('connect').click();
      await page.locator('[data-testid="close-info"]', { hasText: 'Reconnecting' }).waitFor();
      own = await startDemo(SECRET, { PORT: port });
      await page
        .locator('[data-testid="conn-state"][data-state="open"]')
        .waitFor({ timeout: 30_000 });
      await page.locator('[data-testid="close-info"][data-tone="ok"]').waitFor();
      assert.equal(await page.getByTestId('close-info').textContent(), 'Reconnected.');
      assert.deepEqual(errors, []);
    } finally {
      await own.app.close();
    }
  });
});

describe('demo page files (no browser)', () => {
  let demo: DemoApp;
  before(async () => {
    demo = await startDemo(SECRET);
  });
  after(() => demo?.app.close());

  it('serves the page, its script and its stylesheet from build/ as from dist/', async () => {
    const page = await fetch(demo.url, { signal: AbortSignal.timeout(5000) });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    // No inline script may run, whatever ends up in the page.
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    const html = await page.text();
    assert.match(html, /<script type="module" src="\/demo\/app\.js"><\/script>/);
    for (const [path, type] of [
      ['/demo/app.js', /^text\/javascript/],
      ['/demo/styles.css', /^text\/css/],
    ] as const) {
      const response = await fetch(`${demo.url}${path}`, { signal: AbortSignal.timeout(5000) });
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type') ?? '', type, path);
      assert.ok((await response.text()).length > 100, path);
    }
  });

  it('never puts the token in a URL', async () => {
    const script = await (
      await fetch(`${demo.url}/demo/app.js`, { signal: AbortSignal.timeout(5000) })
    ).text();
    // The SDK's default transport is the `bearer` subprotocol; the page must not switch it.
    assert.match(script, /new RealtimeClient\(\{ url: wsUrl, getToken: currentToken \}\)/);
    assert.doesNotMatch(script, /tokenTransport|[?&]token=/);
  });
});

describe('demo token endpoint in production', () => {
  let demo: DemoApp;
  before(async () => {
    demo = await startDemo(SECRET, { NODE_ENV: 'production' });
  });
  after(() => demo?.app.close());

  it('POST /demo/token is 404 when NODE_ENV=production', async () => {
    const response = await post(`${demo.url}/demo/token`, { user_id: 'alice' });
    assert.equal(response.status, 404);
    await response.body?.cancel();
  });

  it('still serves the page', async () => {
    const response = await fetch(demo.url, { signal: AbortSignal.timeout(5000) });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  it('issues tokens when not in production', async () => {
    const dev = await startDemo(SECRET);
    try {
      const response = await post(`${dev.url}/demo/token`, { user_id: 'alice' });
      assert.equal(response.status, 200);
      const body = (await response.json()) as { status: string; data: { token: unknown } };
      assert.equal(body.status, 'success');
      assert.equal(typeof body.data.token, 'string');
    } finally {
      await dev.app.close();
    }
  });
});

describe('demo REST routes: budgets and validation', () => {
  let demo: DemoApp;
  const tokens = new DemoTokens(SECRET);
  before(async () => {
    demo = await startDemo(SECRET);
  });
  after(() => demo?.app.close());

  async function expect429(response: Response): Promise<ErrorBody> {
    assert.equal(response.status, 429);
    assert.match(response.headers.get('retry-after') ?? '', /^\d+$/);
    const body = (await response.json()) as ErrorBody;
    assert.equal(body.statusCode, 429);
    return body;
  }

  it('POST /demo/token: 30 a minute per address, then 429 with Retry-After', async () => {
    const own = await startDemo(SECRET);
    try {
      const { limit } = DEMO_RATE_LIMITS.token;
      for (let i = 0; i < limit; i++) {
        const response = await post(`${own.url}/demo/token`, { user_id: `u${i}`, admin: true });
        assert.equal(response.status, 200, `request ${i}`);
        await response.body?.cancel();
      }
      const body = await expect429(await post(`${own.url}/demo/token`, { user_id: 'one-more' }));
      assert.match(String(body.message), /Too many requests/);
    } finally {
      await own.app.close();
    }
  });

  it('POST /demo/notify: 10 broadcasts a minute per user; other users keep theirs', async () => {
    const spammer = tokens.sign('spammer', false, 600);
    const listener = await TestClient.open(demo.wsUrl, tokens.sign('listener', false, 600));
    try {
      for (let i = 0; i < DEMO_RATE_LIMITS.notify.limit; i++) {
        const response = await post(`${demo.url}/demo/notify`, { message: `n${i}` }, spammer);
        assert.equal(response.status, 200, `request ${i}`);
        await response.body?.cancel();
      }
      await expect429(await post(`${demo.url}/demo/notify`, { message: 'more' }, spammer));
      const other = await post(
        `${demo.url}/demo/notify`,
        { message: 'mine' },
        tokens.sign('someone-else', false, 600),
      );
      assert.equal(other.status, 200);
      await other.body?.cancel();
      // The listener got the ten and the other user's, not the refused one.
      await eventually(
        () => listener.ofType('system.notification').length >= 11,
        WAIT_MS,
        'eleven notifications',
      );
      const texts = listener.ofType('system.notification').map((m) => m.data.message);
      assert.equal(texts.length, 11);
      assert.ok(texts.includes('mine') && !texts.includes('more'));
    } finally {
      listener.close();
    }
  });

  it(`POST /demo/upload: ${MAX_UPLOADS_PER_USER} running per user, the others can still start`, async () => {
    const hog = tokens.sign('upload-hog', false, 600);
    for (let i = 0; i < MAX_UPLOADS_PER_USER; i++) {
      const response = await post(`${demo.url}/demo/upload`, {}, hog);
      assert.equal(response.status, 202, `upload ${i}`);
      await response.body?.cancel();
    }
    const refused = await post(`${demo.url}/demo/upload`, {}, hog);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '3');
    assert.match(String(((await refused.json()) as ErrorBody).message), /per user/);
    const other = await post(`${demo.url}/demo/upload`, {}, tokens.sign('uploader-2', false, 600));
    assert.equal(other.status, 202);
    await other.body?.cancel();
  });

  it('refuses unknown keys in REST bodies (a misspelled `admin` mints nothing), not in chat messages', async () => {
    const misspelled = await post(`${demo.url}/demo/token`, { user_id: 'typo', Admin: true });
    assert.equal(misspelled.status, 400);
    assert.deepEqual(((await misspelled.json()) as ErrorBody).message, [
      'property Admin should not exist',
    ]);
    const token = tokens.sign('strict-body', false, 600);
    const notify = await post(`${demo.url}/demo/notify`, { message: 'hi', lvl: 'error' }, token);
    assert.equal(notify.status, 400);
    assert.deepEqual(((await notify.json()) as ErrorBody).message, [
      'property lvl should not exist',
    ]);
    // WebSocket messages keep the protocol's rule: keys a handler does not know are ignored.
    const chatter = await TestClient.open(demo.wsUrl, token);
    try {
      const reply = await chatter.request({
        type: 'chat.send',
        data: { room: 'strict', text: 'hello', mood: 'fine' },
      });
      assert.equal(reply.type, 'chat.sent');
      assert.deepEqual(reply.data, { room: 'strict', delivered: 0 });
    } finally {
      chatter.close();
    }
  });

  it('does not announce its framework (no X-Powered-By), on pages, API answers and 404s', async () => {
    for (const path of ['/', '/demo/app.js', '/ws/stats', '/no-such-route']) {
      const response = await fetch(`${demo.url}${path}`, { signal: AbortSignal.timeout(5000) });
      await response.body?.cancel();
      assert.equal(response.headers.get('x-powered-by'), null, path);
    }
  });

  it('refuses a blank notification and a notification id the page could not have sent', async () => {
    const token = tokens.sign('validator', false, 600);
    const blank = await post(`${demo.url}/demo/notify`, { message: ' \n\t ' }, token);
    assert.equal(blank.status, 400);
    assert.deepEqual(((await blank.json()) as ErrorBody).message, ['message must not be blank']);
    for (const id of ['a'.repeat(65), '<img src=x>', 'a b']) {
      const response = await post(
        `${demo.url}/notifications/${encodeURIComponent(id)}/read`,
        {},
        token,
      );
      assert.equal(response.status, 400, id);
      assert.match(String(((await response.json()) as ErrorBody).message), /id must be 1-64/);
    }
    const ok = await post(`${demo.url}/notifications/n-42/read`, {}, token);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  });
});

describe('the demo as `npm start` runs it', () => {
  it('warns at startup that anyone can mint tokens, and logs no token', async () => {
    const demo = await spawnDemoProcess({ LOG_LEVEL: 'verbose', LOG_FORMAT: 'json' });
    try {
      await demo.serving();
      const base = `http://127.0.0.1:${demo.port}`;
      const response = await post(`${base}/demo/token`, { user_id: 'log-probe', admin: true });
      const { data } = (await response.json()) as { data: { token: string } };
      const client = await TestClient.open(`ws://127.0.0.1:${demo.port}/ws`, data.token);
      client.close();
      const refused = await fetch(`${base}/ws/stats`, {
        headers: { authorization: `Bearer ${data.token}x` },
        signal: AbortSignal.timeout(5000),
      });
      await refused.body?.cancel();
      const lines = demo.output().split('\n').filter(Boolean);
      const warning = lines.find((line) => line.includes('POST /demo/token is ON'));
      assert.ok(warning, `no warning about the token endpoint in:\n${demo.output()}`);
      assert.equal((JSON.parse(warning) as { level: string }).level, 'warn');
      assert.deepEqual(leakedTokens(lines, [data.token]), []);
    } finally {
      demo.kill();
    }
  });

  it('refuses to start in production on the development secret, with a one-line reason', async () => {
    const demo = await spawnDemoProcess({ NODE_ENV: 'production', JWT_SECRET: '' });
    try {
      const [code] = (await Promise.race([
        once(demo.child, 'exit'),
        new Promise((_, reject) => setTimeout(() => reject(new Error(demo.output())), WAIT_MS)),
      ])) as [number | null];
      assert.equal(code, 1);
      assert.match(
        demo.output(),
        /^Demo not started: JWT_SECRET must be set when NODE_ENV=production\n$/,
      );
    } finally {
      demo.kill();
    }
  });
});
