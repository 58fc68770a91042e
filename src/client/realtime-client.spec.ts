import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { ConnectionLimits } from '../protocol/index.js';
import type { StateChange } from './connection-state.js';
import { RealtimeClientError } from './errors.js';
import type { CloseInfo } from './events.js';
import type { RealtimeClientOptions, WebSocketConstructor } from './options.js';
import { RealtimeClient } from './realtime-client.js';

type Listener = (event: any) => void;

/** A scriptable stand-in for a WebSocket: the test plays the server. */
class FakeSocket {
  readyState = 0;
  readonly sent: any[] = [];
  closedByClient: { code?: number; reason?: string } | undefined;
  terminated = false;
  private readonly listeners = new Map<string, Listener[]>();

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {}

  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  send(data: string): void {
    assert.equal(this.readyState, 1, 'send on a socket that is not open');
    this.sent.push(JSON.parse(data));
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.closedByClient = { code, reason };
    this.readyState = 3;
    queueMicrotask(() => this.emit('close', { code: code ?? 1005, reason: reason ?? '' }));
  }

  terminate(): void {
    this.terminated = true;
    this.close(1006, '');
  }

  // Server side

  open(limits: Partial<ConnectionLimits> = {}): void {
    this.readyState = 1;
    this.emit('open', {});
    this.push('connection.established', {
      connection_id: 'c1',
      user_id: 'u1',
      server_time: new Date().toISOString(),
      features: [],
      limits: {
        max_message_size: 65536,
        rate_limit_messages: 100,
        rate_limit_window: 60,
        heartbeat_interval: 30,
        connection_timeout: 60,
        max_connections_per_user: 3,
        ...limits,
      },
    });
  }

  push(type: string, data: object, extra: object = {}): void {
    this.emit('message', {
      data: JSON.stringify({
        type,
        data,
        timestamp: new Date().toISOString(),
        id: `s-${Math.random()}`,
        ...extra,
      }),
    });
  }

  /** Answers the last sent message of `type` (which must carry an id). */
  reply(requestType: string, type: string, data: object): void {
    const request = [...this.sent].reverse().find((m) => m.type === requestType);
    assert.ok(request?.id, `no ${requestType} request with an id was sent`);
    this.push(type, data, { in_reply_to: request.id });
  }

  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.emit('close', { code, reason });
  }

  private emit(type: string, event: object): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}

function fakeWebSocket(): { WebSocket: WebSocketConstructor; sockets: FakeSocket[] } {
  const sockets: FakeSocket[] = [];
  class Recording extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { WebSocket: Recording, sockets };
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

const clients: RealtimeClient[] = [];

function setup(options: Partial<RealtimeClientOptions> = {}) {
  const fake = fakeWebSocket();
  let tokenCalls = 0;
  const client = new RealtimeClient({
    url: 'ws://127.0.0.1:1/ws',
    WebSocket: fake.WebSocket,
    getToken: () => `token-${++tokenCalls}`,
    minReconnectDelayMs: 1,
    maxReconnectDelayMs: 5,
    requestTimeoutMs: 300,
    ...options,
  });
  clients.push(client);
  const states: StateChange[] = [];
  const closes: CloseInfo[] = [];
  client.on('state', (change) => states.push(change));
  client.on('close', (info) => closes.push(info));
  const socket = (n: number) => {
    const found = fake.sockets[n];
    assert.ok(found, `socket ${n} was not opened`);
    return found;
  };
  return {
    client,
    sockets: fake.sockets,
    socket,
    states,
    closes,
    tokenCalls: () => tokenCalls,
    /** Waits until socket `n` exists, then plays a successful handshake on it. */
    async establish(n: number, limits?: Partial<ConnectionLimits>): Promise<FakeSocket> {
      await waitFor(() => fake.sockets.length > n, `socket ${n}`);
      socket(n).open(limits);
      return socket(n);
    },
  };
}

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

describe('RealtimeClient (fake WebSocket)', () => {
  it('connects with the token in the bearer subprotocol and becomes open', async () => {
    const t = setup();
    const established: unknown[] = [];
    t.client.on('established', (data) => established.push(data.connection_id));
    const connected = t.client.connect();
    assert.equal(t.client.state, 'connecting');
    await t.establish(0);
    const data = await connected;
    assert.equal(data.connection_id, 'c1');
    assert.equal(t.client.state, 'open');
    assert.deepEqual(t.socket(0).protocols, ['bearer', 'token-1']);
    assert.equal(t.socket(0).url, 'ws://127.0.0.1:1/ws');
    assert.deepEqual(established, ['c1']);
    assert.deepEqual(t.states, [
      { newState: 'connecting', oldState: 'closed' },
      { newState: 'open', oldState: 'connecting' },
    ]);
    assert.equal(t.client.connection?.user_id, 'u1');
  });

  it('puts the token in the query string with tokenTransport "query"', async () => {
    const t = setup({
      tokenTransport: 'query',
      url: 'ws://127.0.0.1:1/ws?x=1',
      getToken: async () => 'a b',
    });
    void t.client.connect();
    await t.establish(0);
    assert.equal(t.socket(0).url, 'ws://127.0.0.1:1/ws?x=1&token=a%20b');
    assert.equal(t.socket(0).protocols, undefined);
  });

  it('calls getToken before every connect and reconnect', async () => {
    const t = setup();
    void t.client.connect();
    await t.establish(0);
    t.socket(0).serverClose(1006);
    await t.establish(1);
    t.socket(1).serverClose(1001);
    await t.establish(2);
    assert.equal(t.tokenCalls(), 3);
    assert.deepEqual(t.socket(2).protocols, ['bearer', 'token-3']);
  });

  it('goes open -> reconnecting -> open, one state event per change', async () => {
    const t = setup();
    await Promise.all([t.client.connect(), t.establish(0)]);
    t.socket(0).serverClose(1011, 'Internal error');
    assert.equal(t.client.state, 'reconnecting');
    assert.deepEqual(t.closes, [{ code: 1011, reason: 'Internal error', willReconnect: true }]);
    await t.establish(1);
    await waitFor(() => t.client.state === 'open', 'open again');
    assert.deepEqual(
      t.states.map((s) => `${s.oldState}->${s.newState}`),
      ['closed->connecting', 'connecting->open', 'open->reconnecting', 'reconnecting->open'],
    );
  });

  describe('close-code policy', () => {
    for (const code of [1001, 1006, 1011, 1013, 4000, 4010]) {
      it(`reconnects after ${code}`, async () => {
        const t = setup();
        await Promise.all([t.client.connect(), t.establish(0)]);
        t.socket(0).serverClose(code);
        assert.equal(t.closes[0]?.willReconnect, true);
        await t.establish(1);
        await waitFor(() => t.client.state === 'open', 'open again');
      });
    }

    for (const code of [1000, 4003, 4004, 4008]) {
      it(`does not reconnect after ${code}`, async () => {
        const t = setup();
        await Promise.all([t.client.connect(), t.establish(0)]);
        t.socket(0).serverClose(code);
        assert.equal(t.client.state, 'closed');
        assert.deepEqual(t.closes, [{ code, reason: '', willReconnect: false }]);
        await new Promise((resolve) => setTimeout(resolve, 30));
        assert.equal(t.sockets.length, 1);
        assert.equal(t.tokenCalls(), 1);
      });
    }

    it('rejects connect() when the first connection is closed for good', async () => {
      const t = setup();
      const connected = t.client.connect();
      await waitFor(() => t.sockets.length === 1, 'socket');
      t.socket(0).serverClose(4003, 'Forbidden origin');
      await assert.rejects(connected, (error: RealtimeClientError) => error.closeCode === 4003);
    });

    it('after 4001, reconnects when getToken yields a new token', async () => {
      const t = setup();
      await Promise.all([t.client.connect(), t.establish(0)]);
      t.socket(0).serverClose(4001, 'Token expired');
      await t.establish(1);
      await waitFor(() => t.client.state === 'open', 'open again');
      assert.deepEqual(t.socket(1).protocols, ['bearer', 'token-2']);
      assert.equal(t.tokenCalls(), 2, 'the new token is fetched once, not again to connect');
      assert.deepEqual(t.closes, [{ code: 4001, reason: 'Token expired', willReconnect: true }]);
    });

    it('after 4001, stops when getToken yields the refused token again', async () => {
      const t = setup({ getToken: () => 'same-token' });
      await Promise.all([t.client.connect(), t.establish(0)]);
      t.socket(0).serverClose(4001, 'Unauthorized');
      await waitFor(() => t.client.state === 'closed', 'closed');
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(t.sockets.length, 1);
      // `close` comes before the token is known: it says what the client set out to do.
      assert.deepEqual(t.closes, [{ code: 4001, reason: 'Unauthorized', willReconnect: true }]);
      assert.deepEqual(
        t.states.map((change) => change.newState),
        ['connecting', 'open', 'reconnecting', 'closed'],
      );
    });

    it('after 4001, emits close and turns reconnecting before getToken settles', async () => {
      let calls = 0;
      let release: (token: string) => void = () => undefined;
      const t = setup({
        getToken: () =>
          ++calls === 1 ? 'first' : new Promise<string>((resolve) => (release = resolve)),
      });
      await Promise.all([t.client.connect(), t.establish(0)]);
      t.socket(0).serverClose(4001, 'Token expired');
      assert.equal(t.client.state, 'reconnecting');
      assert.equal(t.client.connection, undefined);
      assert.deepEqual(t.closes, [{ code: 4001, reason: 'Token expired', willReconnect: true }]);
      await assert.rejects(t.client.ping(), { code: 'NOT_CONNECTED' });
      release('second');
      await t.establish(1);
      await waitFor(() => t.client.state === 'open', 'open again');
      assert.deepEqual(t.socket(1).protocols, ['bearer', 'second']);
      assert.equal(t.closes.length, 1);
    });

    it('after 4001, gives up when getToken never settles within connectTimeoutMs', async () => {
      let calls = 0;
      const t = setup({
        connectTimeoutMs: 50,
        getToken: () => (++calls === 1 ? 'first' : new Promise<string>(() => undefined)),
      });
      const connected = t.client.connect();
      await t.establish(0);
      await connected;
      t.socket(0).serverClose(4001, 'Token expired');
      await waitFor(() => t.client.state === 'closed', 'closed', 1000);
      assert.equal(t.sockets.length, 1);
      await assert.rejects(t.client.ping(), { code: 'NOT_CONNECTED' });
    });

    it('retries a connect whose getToken never settles within connectTimeoutMs', async () => {
      let calls = 0;
      const t = setup({
        connectTimeoutMs: 50,
        getToken: () => (++calls === 1 ? new Promise<string>(() => undefined) : 'second'),
      });
      const errors: string[] = [];
      t.client.on('error', (error) => errors.push(error.code));
      const connected = t.client.connect();
      await t.establish(0);
      await connected;
      assert.deepEqual(errors, ['TOKEN_UNAVAILABLE']);
      assert.deepEqual(t.socket(0).protocols, ['bearer', 'second']);
    });

    it('after 4001, stops when getToken fails', async () => {
      let calls = 0;
      const t = setup({
        getToken: () => {
          if (++calls > 1) throw new Error('no session');
          return 'first';
        },
      });
      await Promise.all([t.client.connect(), t.establish(0)]);
      t.socket(0).serverClose(4001, 'Token expired');
      await waitFor(() => t.client.state === 'closed', 'closed');
      assert.equal(t.sockets.length, 1);
    });

    it('gives up after maxReconnectAttempts', async () => {
      const t = setup({ maxReconnectAttempts: 2 });
      const connected = t.client.connect();
      for (let n = 0; n < 3; n++) {
        await waitFor(() => t.sockets.length > n, `socket ${n}`);
        t.socket(n).serverClose(1006);
      }
      await assert.rejects(connected, RealtimeClientError);
      assert.equal(t.client.state, 'closed');
      assert.equal(t.sockets.length, 3);
      assert.deepEqual(
        t.closes.map((c) => c.willReconnect),
        [true, true, false],
      );
    });

    it('does not reconnect at all with reconnect: false', async () => {
      const t = setup({ reconnect: false });
      await Promise.all([t.client.connect(), t.establish(0)]);
      t.socket(0).serverClose(1006);
      assert.equal(t.client.state, 'closed');
    });
  });

  it('re-subscribes everything after a reconnect before turning open', async () => {
    const t = setup();
    await Promise.all([t.client.connect(), t.establish(0)]);
    const subscribing = t.client.subscribe(['upload.progress', 'review.created', 'nope']);
    t.socket(0).reply('subscribe', 'subscription.acknowledged', {
      events: ['upload.progress', 'review.created'],
      invalid_events: ['nope'],
    });
    assert.deepEqual(await subscribing, {
      events: ['upload.progress', 'review.created'],
      invalid_events: ['nope'],
    });
    t.socket(0).serverClose(1006);
    const second = await t.establish(1);
    await waitFor(() => second.sent.length > 0, 'resubscribe');
    assert.deepEqual(second.sent[0].data, { events: ['upload.progress', 'review.created'] });
    assert.equal(t.client.state, 'reconnecting', 'not open before the acknowledgement');
    second.reply('subscribe', 'subscription.acknowledged', {
      events: ['upload.progress', 'review.created'],
      invalid_events: [],
    });
    await waitFor(() => t.client.state === 'open', 'open');
    assert.deepEqual(t.client.subscribedEvents, ['upload.progress', 'review.created']);
  });

  it('unsubscribe forgets events so that they are not restored', async () => {
    const t = setup();
    await Promise.all([t.client.connect(), t.establish(0)]);
    const subscribing = t.client.subscribe(['file.ready', 'file.processing']);
    t.socket(0).reply('subscribe', 'subscription.acknowledged', {
      events: ['file.ready', 'file.processing'],
      invalid_events: [],
    });
    await subscribing;
    const unsubscribing = t.client.unsubscribe(['file.ready']);
    t.socket(0).reply('unsubscribe', 'unsubscription.acknowledged', { events: ['file.ready'] });
    assert.deepEqual(await unsubscribing, { events: ['file.ready'] });
    assert.deepEqual(t.client.subscribedEvents, ['file.processing']);
  });

  it('rejects subscribe when the server refused every event', async () => {
    const t = setup();
    const errors: RealtimeClientError[] = [];
    t.client.on('error', (error) => errors.push(error));
    await Promise.all([t.client.connect(), t.establish(0)]);
    const subscribing = t.client.subscribe(['nope']);
    t.socket(0).reply('subscribe', 'subscription.acknowledged', {
      events: [],
      invalid_events: ['nope'],
    });
    t.socket(0).reply('subscribe', 'error', { code: 'SUBSCRIPTION_FAILED', message: 'x' });
    await assert.rejects(subscribing, { code: 'SUBSCRIPTION_FAILED' });
    assert.deepEqual(errors, [], 'an error that answers a request is not a stray error');
  });

  it('rejects a request on its error reply, with the code', async () => {
    const t = setup();
    await Promise.all([t.client.connect(), t.establish(0)]);
    const request = t.client.request('bogus', { a: 1 });
    assert.deepEqual(t.socket(0).sent.at(-1).data, { a: 1 });
    t.socket(0).reply('bogus', 'error', {
      code: 'RATE_LIMIT_EXCEEDED',
      message: 'slow down',
      reset_time: 123,
    });
    await assert.rejects(request, (error: RealtimeClientError) => {
      assert.equal(error.code, 'RATE_LIMIT_EXCEEDED');
      assert.equal(error.resetTime, 123);
      assert.equal(error.message, 'slow down');
      return true;
    });
  });

  it('gives every request its own id', async () => {
    const t = setup();
    await Promise.all([t.client.connect(), t.establish(0)]);
    void t.client.request('a').catch(() => undefined);
    void t.client.request('b').catch(() => undefined);
    const [a, b] = t.socket(0).sent;
    assert.ok(a.id && b.id && a.id !== b.id);
  });

  it('emits error messages not tied to a request on "error"', async () => {
    const t = setup();
    const errors: RealtimeClientError[] = [];
    t.client.on('error', (error) => errors.push(error));
    await Promise.all([t.client.connect(), t.establish(0)]);
    t.socket(0).push('error', { code: 'INVALID_MESSAGE_FORMAT', message: 'bad' });
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.code, 'INVALID_MESSAGE_FORMAT');
  });

  it('times out a request without a reply', async () => {
    const t = setup({ requestTimeoutMs: 30 });
    await Promise.all([t.client.connect(), t.establish(0)]);
    const started = Date.now();
    await assert.rejects(t.client.request('ping'), { code: 'REQUEST_TIMEOUT' });
    assert.ok(Date.now() - started < 500);
  });

  it('rejects pending requests when the connection closes', async () => {
    const t = setup();
    await Promise.all([t.client.connect(), t.establish(0)]);
    const pending = t.client.ping();
    t.socket(0).serverClose(1006);
    await assert.rejects(pending, (error: RealtimeClientError) => {
      assert.equal(error.code, 'CONNECTION_CLOSED');
      assert.equal(error.closeCode, 1006);
      return true;
    });
  });

  it('ping resolves with the round-trip time', async () => {
    const t = setup();
    await Promise.all([t.client.connect(), t.establish(0)]);
    const rtt = t.client.ping();
    await new Promise((resolve) => setTimeout(resolve, 15));
    const ping = t.socket(0).sent.at(-1);
    assert.equal(ping.type, 'ping');
    t.socket(0).push(
      'pong',
      { timestamp: 'now', pingId: ping.data.pingId },
      { in_reply_to: ping.id },
    );
    const ms = await rtt;
    assert.ok(ms >= 10 && ms < 1000, `rtt ${ms}`);
  });

  describe('send queue', () => {
    it('rejects sends while disconnected when the queue is off (default)', async () => {
      const t = setup();
      await Promise.all([t.client.connect(), t.establish(0)]);
      t.socket(0).serverClose(1006);
      await assert.rejects(t.client.send('heartbeat'), { code: 'NOT_CONNECTED' });
      await assert.rejects(t.client.request('ping'), { code: 'NOT_CONNECTED' });
    });

    it('keeps the newest maxQueuedMessages, drops the oldest, flushes in order', async () => {
      const t = setup({ maxQueuedMessages: 2 });
      await Promise.all([t.client.connect(), t.establish(0)]);
      t.socket(0).serverClose(1006);
      const first = t.client.send('one');
      const second = t.client.send('two');
      const third = t.client.request('three');
      await assert.rejects(first, { code: 'QUEUE_OVERFLOW' });
      const next = await t.establish(1);
      await second;
      assert.deepEqual(
        next.sent.map((m) => m.type),
        ['two', 'three'],
      );
      next.reply('three', 'three.done', { ok: true });
      assert.deepEqual((await third).data, { ok: true });
    });

    it('a queued request that times out leaves the queue', async () => {
      const t = setup({ maxQueuedMessages: 5, requestTimeoutMs: 20 });
      await Promise.all([t.client.connect(), t.establish(0)]);
      t.socket(0).serverClose(1006);
      await assert.rejects(t.client.request('late'), { code: 'REQUEST_TIMEOUT' });
      const kept = t.client.send('kept');
      const next = await t.establish(1);
      await kept;
      assert.deepEqual(
        next.sent.map((m) => m.type),
        ['kept'],
      );
    });

    it('rejects sends when the client is closed, queue or not', async () => {
      const t = setup({ maxQueuedMessages: 5 });
      await assert.rejects(t.client.send('x'), { code: 'NOT_CONNECTED' });
    });
  });

  describe('heartbeat', () => {
    it('sends heartbeats (or a ping when the server is quiet) at the announced interval', async () => {
      const t = setup();
      // 1 s: the shortest interval the client accepts from a server.
      await Promise.all([t.client.connect(), t.establish(0, { heartbeat_interval: 1 })]);
      await waitFor(() => t.socket(0).sent.length >= 2, 'two heartbeats', 3000);
      for (const message of t.socket(0).sent) {
        assert.ok(['heartbeat', 'ping'].includes(message.type), message.type);
      }
    });

    it('sends a plain heartbeat while the server talks', async () => {
      const t = setup();
      await Promise.all([t.client.connect(), t.establish(0, { heartbeat_interval: 1 })]);
      const chatter = setInterval(() => t.socket(0).push('system.notification', {}), 5);
      try {
        await waitFor(() => t.socket(0).sent.length >= 1, 'a heartbeat', 2000);
      } finally {
        clearInterval(chatter);
      }
      assert.equal(t.socket(0).sent[0].type, 'heartbeat');
    });

    it('drops a silent server after connection_timeout and reconnects', async () => {
      const t = setup();
      await Promise.all([
        t.client.connect(),
        t.establish(0, { heartbeat_interval: 1, connection_timeout: 2 }),
      ]);
      await waitFor(() => t.sockets.length === 2, 'a new socket', 4000);
      assert.ok(t.socket(0).terminated, 'the dead socket is terminated');
      assert.equal(t.closes[0]?.code, 4000);
      assert.equal(t.closes[0]?.willReconnect, true);
    });

    it('fails a connect that never gets connection.established', async () => {
      const t = setup({ connectTimeoutMs: 20 });
      void t.client.connect().catch(() => undefined);
      await waitFor(() => t.sockets.length === 2, 'a retry', 2000);
      assert.equal(t.closes[0]?.code, 4000);
    });
  });

  describe('listeners', () => {
    it('calls typed handlers per event type; once fires once; off removes', async () => {
      const t = setup();
      await Promise.all([t.client.connect(), t.establish(0)]);
      const progress: number[] = [];
      const onceSeen: string[] = [];
      const custom: unknown[] = [];
      const messages: string[] = [];
      const onProgress = (data: { progress: number }) => progress.push(data.progress);
      t.client.on('upload.progress', onProgress);
      t.client.once('upload.progress', (data, envelope) =>
        onceSeen.push(envelope.type + data.upload_id),
      );
      t.client.on('room:1', (data) => custom.push(data.text));
      t.client.on('message', (envelope) => messages.push(envelope.type));
      const socket = t.socket(0);
      socket.push('upload.progress', { upload_id: 'u', progress: 10, timestamp: 'x' });
      socket.push('upload.progress', { upload_id: 'u', progress: 20, timestamp: 'x' });
      t.client.off('upload.progress', onProgress);
      socket.push('upload.progress', { upload_id: 'u', progress: 30, timestamp: 'x' });
      socket.push('room:1', { text: 'hi' });
      assert.deepEqual(progress, [10, 20]);
      assert.deepEqual(onceSeen, ['upload.progressu']);
      assert.deepEqual(custom, ['hi']);
      assert.deepEqual(messages, [
        'upload.progress',
        'upload.progress',
        'upload.progress',
        'room:1',
      ]);
    });

    it('off removes a once listener before it fired', async () => {
      const t = setup();
      await Promise.all([t.client.connect(), t.establish(0)]);
      let calls = 0;
      const handler = () => calls++;
      t.client.once('file.ready', handler);
      t.client.off('file.ready', handler);
      t.socket(0).push('file.ready', { file_id: 'f', status: 'ready', timestamp: 'x' });
      assert.equal(calls, 0);
    });

    it('a throwing listener does not stop the others', async () => {
      const reported: unknown[] = [];
      const t = setup({ onListenerError: (error) => reported.push(error) });
      await Promise.all([t.client.connect(), t.establish(0)]);
      let reached = false;
      t.client.on('file.ready', () => {
        throw new Error('boom');
      });
      t.client.on('file.ready', () => (reached = true));
      t.socket(0).push('file.ready', {});
      assert.equal(reached, true);
      assert.equal(reported.length, 1);
    });

    it('ignores frames that are not envelopes', async () => {
      const t = setup();
      await Promise.all([t.client.connect(), t.establish(0)]);
      const seen: unknown[] = [];
      t.client.on('message', (m) => seen.push(m));
      const socket = t.socket(0) as any;
      for (const data of ['nope', '[]', '{"data":{}}', Buffer.from('{"type":"x"}')]) {
        socket.emit('message', { data });
      }
      assert.deepEqual(seen, []);
    });
  });

  describe('close()', () => {
    it('stops every timer and rejects what is pending', async () => {
      const baseline = activeTimers();
      const t = setup();
      await Promise.all([t.client.connect(), t.establish(0, { heartbeat_interval: 0.5 })]);
      const pending = t.client.request('slow');
      assert.ok(activeTimers() > baseline, 'heartbeat and request timers run');
      t.client.close();
      await assert.rejects(pending, { code: 'CLIENT_CLOSED' });
      assert.equal(t.client.state, 'closed');
      assert.deepEqual(t.socket(0).closedByClient, { code: 1000, reason: 'Normal closure' });
      assert.equal(activeTimers(), baseline);
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(t.client.state, 'closed');
    });

    it('cancels a scheduled reconnect', async () => {
      const baseline = activeTimers();
      const t = setup({ minReconnectDelayMs: 5000, maxReconnectDelayMs: 5000 });
      await Promise.all([t.client.connect(), t.establish(0)]);
      t.socket(0).serverClose(1006);
      assert.equal(t.client.state, 'reconnecting');
      t.client.close();
      assert.equal(activeTimers(), baseline);
      assert.equal(t.sockets.length, 1);
    });

    it('ignores a token that arrives after close()', async () => {
      const baseline = activeTimers();
      let release: (token: string) => void = () => undefined;
      const t = setup({ getToken: () => new Promise<string>((resolve) => (release = resolve)) });
      const connected = t.client.connect();
      t.client.close();
      // Not even the bound on getToken() outlives close().
      assert.equal(activeTimers(), baseline);
      await assert.rejects(connected, { code: 'CLIENT_CLOSED' });
      release('late');
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(t.sockets.length, 0);
      assert.equal(t.client.state, 'closed');
    });

    it('stays closed when a close listener calls close(), after 1006 or 4001', async () => {
      for (const code of [1006, 4001]) {
        const baseline = activeTimers();
        const t = setup();
        await Promise.all([t.client.connect(), t.establish(0)]);
        t.client.on('close', () => t.client.close());
        t.socket(0).serverClose(code);
        await new Promise((resolve) => setTimeout(resolve, 30));
        assert.equal(t.client.state, 'closed');
        assert.equal(t.sockets.length, 1);
        assert.equal(activeTimers(), baseline);
      }
    });

    it('can connect again after close()', async () => {
      const t = setup();
      await Promise.all([t.client.connect(), t.establish(0)]);
      t.client.close();
      await Promise.all([t.client.connect(), t.establish(1)]);
      assert.equal(t.client.state, 'open');
    });
  });
});
