import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocket } from 'ws';
import {
  type CloseInfo,
  type ConnectionState,
  RealtimeClient,
  type RealtimeClientOptions,
  type WebSocketOptions,
} from '../src/client/index.js';
import { RealtimeService } from '../src/realtime/index.js';
import { type DemoServer, startDemoServer } from './support/demo-server.js';
import { NodeWebSocket, sdkOptions } from './support/sdk-options.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { startTestAppOnPort } from './support/test-app-on-port.js';

const WAIT_MS = 5000;

/** Resolves with the first value `subscribe` reports that satisfies `accept`, bounded. */
function waitFor<T>(
  what: string,
  subscribe: (report: (value: T) => void) => () => void,
  accept: (value: T) => boolean = () => true,
  timeoutMs = WAIT_MS,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const unsubscribe = subscribe((value) => {
      if (!accept(value)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    });
  });
}

function nextClose(client: RealtimeClient, timeoutMs = WAIT_MS): Promise<CloseInfo> {
  return waitFor(
    'a close',
    (report) => {
      client.on('close', report);
      return () => client.off('close', report);
    },
    () => true,
    timeoutMs,
  );
}

async function stateBecomes(
  client: RealtimeClient,
  state: ConnectionState,
  timeoutMs = WAIT_MS,
): Promise<void> {
  if (client.state === state) return;
  await waitFor(
    `state ${state}`,
    (report) => {
      const listener = (change: { newState: ConnectionState }) => report(change.newState);
      client.on('state', listener);
      return () => client.off('state', listener);
    },
    (newState) => newState === state,
    timeoutMs,
  );
}

function nextOfType<T>(client: RealtimeClient, type: string, timeoutMs = WAIT_MS): Promise<T> {
  return waitFor<T>(
    type,
    (report) => {
      const listener = (data: unknown) => report(data as T);
      client.on(type, listener);
      return () => client.off(type, listener);
    },
    () => true,
    timeoutMs,
  );
}

/** Resolves after `ms`, for checks that something did NOT happen. */
const quiet = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The SDK in Node against the demo app that `npm start` runs. */
describe('RealtimeClient against the demo server', () => {
  let server: DemoServer;
  const clients: RealtimeClient[] = [];
  let users = 0;

  function client(options: Partial<RealtimeClientOptions> & { user?: string } = {}) {
    const user = options.user ?? `client-${++users}`;
    const created = new RealtimeClient({
      url: server.wsUrl,
      WebSocket: NodeWebSocket,
      getToken: () => server.token(user),
      minReconnectDelayMs: 50,
      maxReconnectDelayMs: 200,
      requestTimeoutMs: 3000,
      ...options,
    });
    clients.push(created);
    return created;
  }

  before(async () => {
    server = await startDemoServer();
  });
  after(async () => {
    for (const created of clients) created.close();
    await server.close();
  });

  it('connects with the bearer subprotocol and measures a ping round trip', async () => {
    const c = client({ user: 'alice' });
    const established = await c.connect();
    assert.equal(established.user_id, 'alice');
    assert.equal(c.state, 'open');
    const rtt = await c.ping();
    assert.ok(rtt >= 0 && rtt < WAIT_MS, `rtt ${rtt}`);
    c.close();
    assert.equal(c.state, 'closed');
  });

  it('connects with the token in the query string', async () => {
    const c = client({ user: 'query-user', tokenTransport: 'query' });
    assert.equal((await c.connect()).user_id, 'query-user');
    c.close();
  });

  it('subscribes and receives a service send, typed by event', async () => {
    const c = client();
    await c.connect();
    const ack = await c.subscribe(['review.created', 'not.an.event']);
    assert.deepEqual(ack, { events: ['review.created'], invalid_events: ['not.an.event'] });
    const received = nextOfType<{ review_id: string }>(c, 'review.created');
    await server.app.get(RealtimeService).sendReviewCreated('r-1', { title: 'x' });
    assert.equal((await received).review_id, 'r-1');
    c.close();
  });

  it('rejects subscribe when every event is refused', async () => {
    const c = client();
    await c.connect();
    await assert.rejects(c.subscribe(['nope']), { code: 'SUBSCRIPTION_FAILED' });
    c.close();
  });

  it('rejects a request of an unknown type with INVALID_MESSAGE_TYPE', async () => {
    const c = client();
    await c.connect();
    await assert.rejects(c.request('no.such.type', {}), { code: 'INVALID_MESSAGE_TYPE' });
    assert.equal(c.state, 'open');
    c.close();
  });

  it('after 4001 Token expired, reconnects with the new token from getToken', async () => {
    let calls = 0;
    const c = client({
      getToken: () => (++calls === 1 ? server.token('expiring', 2) : server.token('expiring')),
    });
    const first = await c.connect();
    const closed = await nextClose(c, 6000);
    assert.deepEqual(closed, { code: 4001, reason: 'Token expired', willReconnect: true });
    await stateBecomes(c, 'open');
    assert.equal(calls, 2);
    assert.notEqual(c.connection?.connection_id, first.connection_id);
    assert.ok((await c.ping()) >= 0);
    c.close();
  });

  it('after an admin kick (4004), does not reconnect', async () => {
    const c = client();
    const established = await c.connect();
    const closed = nextClose(c);
    assert.equal(
      await server.app.get(RealtimeService).disconnectConnection(established.connection_id),
      true,
    );
    assert.deepEqual(await closed, {
      code: 4004,
      reason: 'Disconnected by admin',
      willReconnect: false,
    });
    assert.equal(c.state, 'closed');
    await quiet(300);
    assert.equal(c.state, 'closed');
    c.close();
  });
});

describe('RealtimeClient: eviction', () => {
  let server: DemoServer;
  before(async () => {
    server = await startDemoServer({ REALTIME_MAX_CONNECTIONS_PER_USER: '1' });
  });
  after(() => server.close());

  it('the evicted connection gets 4008 and does not reconnect', async () => {
    const options = sdkOptions(server, 'single');
    const first = new RealtimeClient(options);
    const second = new RealtimeClient(options);
    try {
      await first.connect();
      const closed = nextClose(first);
      await second.connect();
      assert.deepEqual(await closed, {
        code: 4008,
        reason: 'Connection limit exceeded',
        willReconnect: false,
      });
      assert.equal(first.state, 'closed');
      await quiet(300);
      assert.equal(first.state, 'closed');
      assert.equal(second.state, 'open');
      assert.ok((await second.ping()) >= 0);
    } finally {
      first.close();
      second.close();
    }
  });
});

describe('RealtimeClient: server restart', () => {
  it('reconnects to the new server on the same port and re-subscribes', async () => {
    let server = await startDemoServer();
    const port = server.port;
    const client = new RealtimeClient({
      url: server.wsUrl,
      WebSocket: NodeWebSocket,
      getToken: () => server.token('restarted'),
      minReconnectDelayMs: 50,
      maxReconnectDelayMs: 200,
    });
    try {
      const first = await client.connect();
      await client.subscribe(['system.maintenance']);
      const lost = nextClose(client);
      await server.close();
      const closed = await lost;
      assert.equal(closed.willReconnect, true);
      assert.ok([1001, 1006].includes(closed.code), `close code ${closed.code}`);
      assert.equal(client.state, 'reconnecting');

      server = await startDemoServer({ PORT: String(port) });
      await stateBecomes(client, 'open');
      assert.notEqual(client.connection?.connection_id, first.connection_id);
      assert.deepEqual(client.subscribedEvents, ['system.maintenance']);
      const received = nextOfType<{ message: string }>(client, 'system.maintenance');
      await server.app.get(RealtimeService).sendSystemMaintenance('back soon');
      assert.equal((await received).message, 'back soon');
    } finally {
      client.close();
      await server.close();
    }
  });
});

/** A full collection, so that heap sizes compare what is reachable, not what awaits collection. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('RealtimeClient: connect() during an outage', () => {
  it('keeps nothing per call while reconnecting, and every call resolves once back', async () => {
    const CALLS = 100_000;
    let server: TestApp = await startTestAppOnPort(0);
    const port = server.port;
    const client = new RealtimeClient(
      sdkOptions({ wsUrl: server.wsUrl, token: (user) => server.token(user) }, 'outage'),
    );
    try {
      await client.connect();
      const lost = nextClose(client);
      await server.close();
      assert.equal((await lost).willReconnect, true);
      assert.equal(client.state, 'reconnecting');

      collectGarbage();
      const before = process.memoryUsage().heapUsed;
      // A caller retrying in a loop (or many callers) that lets go of each promise: the client
      // must not keep one waiter per call for the length of the outage.
      const first = client.connect();
      for (let i = 1; i < CALLS - 1; i++) void client.connect();
      const last = client.connect();
      collectGarbage();
      const grown = process.memoryUsage().heapUsed - before;
      assert.equal(client.state, 'reconnecting');
      assert.ok(grown < 2 * 1024 * 1024, `heap grew ${grown} bytes over ${CALLS} calls`);

      server = await startTestAppOnPort(port);
      const [established, again] = await Promise.all([first, last]);
      assert.equal(established.user_id, 'outage');
      assert.equal(again, established);
      assert.equal(client.state, 'open');
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe('RealtimeClient: an upgrade refused with 429 and Retry-After', () => {
  it('waits the Retry-After before the next attempt instead of its backoff', async () => {
    const server = await startTestApp({ realtime: { maxConnectionsPerIpPerSecond: 1 } });
    // Takes this address's one upgrade of the second: the client's first is answered 429 with
    // Retry-After: 1.
    const holder = new WebSocket(server.wsUrl, {
      headers: { authorization: `Bearer ${server.token('holder')}` },
    });
    const attempts: number[] = [];
    class Recording extends WebSocket {
      constructor(url: string, protocols?: string | string[], options?: WebSocketOptions) {
        super(url, protocols, options);
        attempts.push(performance.now());
      }
    }
    const client = new RealtimeClient(
      sdkOptions(server, 'refused', { WebSocket: Recording, connectTimeoutMs: WAIT_MS }),
    );
    const closes: CloseInfo[] = [];
    client.on('close', (info) => closes.push(info));
    try {
      await waitFor('the holder open', (report) => {
        holder.once('open', report);
        return () => holder.off('open', report);
      });
      const established = await client.connect();
      assert.equal(established.user_id, 'refused');
      // Without it: an attempt every 20 to 50 ms, each refused, until the second is over.
      assert.equal(attempts.length, 2, `${attempts.length} attempts`);
      const waited = attempts[1]! - attempts[0]!;
      assert.ok(waited >= 1000, `next attempt ${Math.round(waited)} ms after the refusal`);
      assert.ok(waited < 2500, `next attempt ${Math.round(waited)} ms after the refusal`);
      assert.deepEqual(closes, [{ code: 1006, reason: '', willReconnect: true }]);
    } finally {
      client.close();
      holder.terminate();
      await server.close();
    }
  });
});
