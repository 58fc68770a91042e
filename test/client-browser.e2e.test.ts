import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { RealtimeService } from '../src/realtime/index.js';
import { browserAvailable, type DemoApp, launchChromium } from './support/browser.js';
import { type DemoServer, startDemoServer } from './support/demo-server.js';
import { TestClient } from './support/test-client.js';

/**
 * The client SDK (src/client) in headless Chromium, inside the demo page under its own strict
 * CSP: the demo serves the SDK as native ES modules at /sdk/client/index.js, the page imports it
 * and uses the browser's own WebSocket against the same demo server (restarted on the same port
 * where a test needs it). What the client reports is recorded in the page (window.__states,
 * __closes, __received) and read back with page.evaluate.
 */

const SECRET = 'client-browser-test-secret-0123456789abcdef';
/** Bound on every single wait in the browser and on the wire. */
const WAIT_MS = 10_000;
/** Bound on a whole test. */
const TEST_MS = 40_000;

/** Resolves after `ms`, for checks that something did NOT happen. */
const quiet = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface RecordedClose {
  code: number;
  reason: string;
  willReconnect: boolean;
}

/** A page at the demo's origin with the SDK imported and one RealtimeClient set up in it. */
interface BrowserClient {
  page: Page;
  errors: string[];
  /** How often the page's getToken asked the test for a token. */
  tokenCalls: () => number;
  states: () => Promise<string[]>;
  closes: () => Promise<RecordedClose[]>;
  received: () => Promise<Array<{ type: string; data: any }>>;
  /** Waits (bounded) until the states recorded in the page are exactly `expected`. */
  statesBecome: (expected: string[], timeoutMs?: number) => Promise<void>;
  closeCount: (count: number, timeoutMs?: number) => Promise<RecordedClose>;
  receivedCount: (count: number, timeoutMs?: number) => Promise<void>;
}

describe('RealtimeClient in Chromium, in the demo page, against the demo server', () => {
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const demos = new Set<DemoServer>();
  const wsClients: TestClient[] = [];

  before(async () => {
    browser = await launchChromium(WAIT_MS);
  });

  after(async () => {
    for (const client of wsClients) client.close();
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    for (const demo of demos) await demo.close();
  });

  /** A demo server of its own for one test; `PORT` in `env` restarts one on the same port. */
  async function server(env: Record<string, string> = {}): Promise<DemoServer> {
    const demo = await startDemoServer(env, SECRET);
    demos.add(demo);
    return demo;
  }

  /**
   * Opens the demo page of `demo`, imports the SDK there and creates a client of its /ws whose
   * getToken calls `token` in the test (through page.exposeFunction).
   */
  async function browserClient(
    demo: DemoApp,
    token: (call: number) => string,
    events: string[] = [],
  ): Promise<BrowserClient> {
    // No bypassCSP: the SDK must work under the page's `connect-src 'self'`.
    const context = await browser!.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.setDefaultNavigationTimeout(WAIT_MS);
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (/Content Security Policy/.test(message.text())) errors.push(message.text());
    });
    let calls = 0;
    await page.exposeFunction('__testToken', () => token(++calls));
    await page.goto(demo.url, { timeout: WAIT_MS });
    await page.locator('body[data-ready="true"]').waitFor({ timeout: WAIT_MS });

    await page.evaluate(
      async ({ url, events }) => {
        const w = window as any;
        // A variable, so that TypeScript leaves the browser-side URL alone.
        const sdkUrl = '/sdk/client/index.js';
        const { RealtimeClient } = await import(sdkUrl);
        w.__states = [];
        w.__closes = [];
        w.__received = [];
        const client = new RealtimeClient({
          url,
          getToken: () => w.__testToken(),
          minReconnectDelayMs: 50,
          maxReconnectDelayMs: 200,
          requestTimeoutMs: 3000,
          connectTimeoutMs: 5000,
        });
        client.on('state', (change: { newState: string }) => w.__states.push(change.newState));
        client.on('close', (info: RecordedClose) =>
          w.__closes.push({
            code: info.code,
            reason: info.reason,
            willReconnect: info.willReconnect,
          }),
        );
        for (const type of events) {
          client.on(type, (data: unknown) => w.__received.push({ type, data }));
        }
        w.__client = client;
      },
      { url: demo.wsUrl, events },
    );

    const read = <T>(name: string) =>
      page.evaluate((key) => (window as any)[key], name) as Promise<T>;
    return {
      page,
      errors,
      tokenCalls: () => calls,
      states: () => read<string[]>('__states'),
      closes: () => read<RecordedClose[]>('__closes'),
      received: () => read<Array<{ type: string; data: any }>>('__received'),
      async statesBecome(expected, timeoutMs = WAIT_MS) {
        try {
          await page.waitForFunction(
            (want) => JSON.stringify((window as any).__states) === want,
            JSON.stringify(expected),
            { timeout: timeoutMs, polling: 25 },
          );
        } catch (error) {
          const states = await read<string[]>('__states').catch(() => 'unreadable');
          throw new Error(`states ${JSON.stringify(states)}, want ${JSON.stringify(expected)}`, {
            cause: error,
          });
        }
      },
      async closeCount(count, timeoutMs = WAIT_MS) {
        await page.waitForFunction((n) => (window as any).__closes.length >= n, count, {
          timeout: timeoutMs,
          polling: 25,
        });
        return (await read<RecordedClose[]>('__closes'))[count - 1]!;
      },
      async receivedCount(count, timeoutMs = WAIT_MS) {
        await page.waitForFunction((n) => (window as any).__received.length >= n, count, {
          timeout: timeoutMs,
          polling: 25,
        });
      },
    };
  }

  /** `client.connect()` in the page; resolves with what `connection.established` carried. */
  function connect(client: BrowserClient): Promise<{ connection_id: string; user_id: string }> {
    return client.page.evaluate(async () => {
      const established = await (window as any).__client.connect();
      return { connection_id: established.connection_id, user_id: established.user_id };
    });
  }

  function clientState(client: BrowserClient): Promise<string> {
    return client.page.evaluate(() => (window as any).__client.state as string);
  }

  function ping(client: BrowserClient): Promise<number> {
    return client.page.evaluate(() => (window as any).__client.ping() as Promise<number>);
  }

  function subscribe(client: BrowserClient, events: string[]) {
    return client.page.evaluate(
      (list) => (window as any).__client.subscribe(list),
      events,
    ) as Promise<{ events: string[]; invalid_events: string[] }>;
  }

  it(
    'connects with the browser WebSocket and measures a ping round trip',
    { timeout: TEST_MS },
    async (t) => {
      if (!browserAvailable(t, 'the client SDK')) return;
      const s = await server();
      const c = await browserClient(s, () => s.token('browser-alice'));
      const established = await connect(c);
      assert.equal(established.user_id, 'browser-alice');
      assert.match(established.connection_id, /^[0-9a-f-]{36}$/);
      assert.equal(await clientState(c), 'open');
      const rtt = await ping(c);
      assert.ok(typeof rtt === 'number' && rtt >= 0 && rtt < WAIT_MS, `rtt ${rtt}`);
      assert.deepEqual(await c.states(), ['connecting', 'open']);
      assert.equal(c.tokenCalls(), 1);
      await c.page.evaluate(() => (window as any).__client.close());
      assert.equal(await clientState(c), 'closed');
      assert.deepEqual(c.errors, []);
    },
  );

  it('subscribes and receives a RealtimeService send', { timeout: TEST_MS }, async (t) => {
    if (!browserAvailable(t, 'the client SDK')) return;
    const s = await server();
    const c = await browserClient(s, () => s.token('browser-sub'), ['review.created']);
    await connect(c);
    const ack = await subscribe(c, ['review.created', 'not.an.event']);
    assert.deepEqual(ack, { events: ['review.created'], invalid_events: ['not.an.event'] });
    const reached = await s.app.get(RealtimeService).sendReviewCreated('r-browser', { a: 1 });
    assert.ok(reached >= 1, `reached ${reached}`);
    await c.receivedCount(1);
    const [received] = await c.received();
    assert.equal(received!.type, 'review.created');
    assert.equal(received!.data.review_id, 'r-browser');
    assert.deepEqual(c.errors, []);
  });

  it(
    'reconnects to a new server on the same port and re-subscribes',
    { timeout: TEST_MS },
    async (t) => {
      if (!browserAvailable(t, 'the client SDK')) return;
      let s = await server();
      const port = s.port;
      const c = await browserClient(s, () => s.token('browser-restart'), ['system.maintenance']);
      const first = await connect(c);
      await subscribe(c, ['system.maintenance']);

      await s.close();
      const lost = await c.closeCount(1);
      assert.equal(lost.willReconnect, true);
      assert.ok([1001, 1006].includes(lost.code), `close code ${lost.code}`);
      await c.statesBecome(['connecting', 'open', 'reconnecting']);

      s = await server({ PORT: String(port) });
      assert.equal(s.port, port);
      await c.statesBecome(['connecting', 'open', 'reconnecting', 'open']);
      const connectionId = await c.page.evaluate(
        () => (window as any).__client.connection?.connection_id as string | undefined,
      );
      assert.ok(connectionId && connectionId !== first.connection_id, `id ${connectionId}`);
      assert.deepEqual(
        await c.page.evaluate(() => (window as any).__client.subscribedEvents as string[]),
        ['system.maintenance'],
      );
      // The old server announced its shutdown with a system.maintenance; count from here.
      const seen = (await c.received()).length;
      await s.app.get(RealtimeService).sendSystemMaintenance('back soon');
      await c.receivedCount(seen + 1);
      const received = (await c.received())[seen];
      assert.equal(received!.type, 'system.maintenance');
      assert.equal(received!.data.message, 'back soon');
      assert.ok((await ping(c)) >= 0);
      assert.deepEqual(c.errors, []);
    },
  );

  it(
    'after 4001 Token expired, reconnects with the new token from getToken',
    { timeout: TEST_MS },
    async (t) => {
      if (!browserAvailable(t, 'the client SDK')) return;
      const s = await server();
      const c = await browserClient(s, (call) =>
        call === 1 ? s.token('browser-expiring', 2) : s.token('browser-expiring'),
      );
      const first = await connect(c);
      assert.equal(c.tokenCalls(), 1);
      const closed = await c.closeCount(1, 6000);
      assert.deepEqual(closed, { code: 4001, reason: 'Token expired', willReconnect: true });
      await c.statesBecome(['connecting', 'open', 'reconnecting', 'open']);
      assert.equal(c.tokenCalls(), 2);
      const connectionId = await c.page.evaluate(
        () => (window as any).__client.connection?.connection_id as string | undefined,
      );
      assert.ok(connectionId && connectionId !== first.connection_id, `id ${connectionId}`);
      assert.ok((await ping(c)) >= 0);
      assert.equal((await c.closes()).length, 1);
      assert.deepEqual(c.errors, []);
    },
  );

  it(
    'when evicted by a newer connection of the same user, gets 4008 and stays closed',
    { timeout: TEST_MS },
    async (t) => {
      if (!browserAvailable(t, 'the client SDK')) return;
      const s = await server({ REALTIME_MAX_CONNECTIONS_PER_USER: '1' });
      const c = await browserClient(s, () => s.token('browser-single'));
      await connect(c);

      const newer = await TestClient.open(s.wsUrl, s.token('browser-single'));
      wsClients.push(newer);
      const closed = await c.closeCount(1);
      assert.deepEqual(closed, {
        code: 4008,
        reason: 'Connection limit exceeded',
        willReconnect: false,
      });
      await c.statesBecome(['connecting', 'open', 'closed']);
      assert.equal(await clientState(c), 'closed');
      await quiet(500);
      assert.deepEqual(await c.states(), ['connecting', 'open', 'closed']);
      assert.equal(await clientState(c), 'closed');
      assert.equal((await c.closes()).length, 1);
      assert.equal(c.tokenCalls(), 1);
      assert.equal(newer.closeInfo, undefined);
      assert.deepEqual(c.errors, []);
    },
  );
});
