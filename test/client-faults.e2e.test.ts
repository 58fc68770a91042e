import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import {
  type CloseInfo,
  type ConnectionState,
  RealtimeClient,
  type RealtimeClientError,
  type RealtimeClientOptions,
} from '../src/client/index.js';
import type { ResumeResultData } from '../src/protocol/index.js';
import { NodeWebSocket } from './support/sdk-options.js';

/** Bound on every wait of these tests. */
const WAIT_MS = 3000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A server frame as the real server writes it. */
function frame(type: string, data: object, extra: object = {}): string {
  return JSON.stringify({
    type,
    data,
    timestamp: new Date().toISOString(),
    id: `s-${Math.random()}`,
    ...extra,
  });
}

function established(limits: object = {}): string {
  return frame('connection.established', {
    connection_id: 'c',
    user_id: 'u',
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

interface ClientFrame {
  type: string;
  id?: string;
  data?: { events?: string[] };
}

/**
 * A scripted server on 127.0.0.1 that misbehaves in ways the real one does not: `onConnection`
 * gets the socket and the 1-based number of the connection.
 */
async function scriptedServer(onConnection: (socket: WebSocket, n: number) => void) {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: (protocols) => (protocols.has('bearer') ? 'bearer' : false),
  });
  let connections = 0;
  const connectedAt: number[] = [];
  wss.on('connection', (socket) => {
    connectedAt.push(performance.now());
    onConnection(socket, ++connections);
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const { port } = wss.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    connectedAt,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** Answers `type` requests of `socket` with `reply(request)`. */
function answer(socket: WebSocket, type: string, reply: (request: ClientFrame) => string): void {
  socket.on('message', (raw) => {
    const request = JSON.parse(String(raw)) as ClientFrame;
    if (request.type === type) socket.send(reply(request));
  });
}

/** A `subscription.acknowledged` answering `request`, with `invalid` as `invalid_events`. */
const ack = (invalid: unknown) => (request: ClientFrame) =>
  frame(
    'subscription.acknowledged',
    { events: request.data?.events, invalid_events: invalid },
    { in_reply_to: request.id },
  );
const resumeResult = (streams: unknown) => (request: ClientFrame) =>
  frame('resume.result', { recovered: true, streams }, { in_reply_to: request.id });

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A client of `url` with fast reconnects, closed after the test. */
function clientOf(url: string, options: Partial<RealtimeClientOptions> = {}): RealtimeClient {
  const client = new RealtimeClient({
    url,
    WebSocket: NodeWebSocket,
    getToken: () => 't',
    minReconnectDelayMs: 20,
    maxReconnectDelayMs: 50,
    ...options,
  });
  cleanups.push(() => client.close());
  return client;
}

async function setup(
  onConnection: (socket: WebSocket, n: number) => void,
  options: Partial<RealtimeClientOptions> = {},
) {
  const server = await scriptedServer(onConnection);
  cleanups.push(server.close);
  const client = clientOf(server.url, { requestTimeoutMs: 2000, ...options });
  const errors: RealtimeClientError[] = [];
  client.on('error', (error) => errors.push(error));
  return { server, client, errors };
}

/** Polls `predicate` every 10 ms, at most {@link WAIT_MS}. */
async function eventually(predicate: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Records unhandled rejections while a test runs (the default would crash the process). */
function recordUnhandledRejections(): unknown[] {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  cleanups.push(() => process.off('unhandledRejection', listener));
  return seen;
}

describe('SDK against a server that accepts and then closes', () => {
  for (const code of [1011, 1013, 4010]) {
    it(`backs off instead of reconnecting at the minimum delay forever (${code})`, async () => {
      const { server, client } = await setup(
        (socket) => {
          socket.send(established());
          socket.close(code, 'go away');
        },
        // The top of every draw: 40, 80, 160, 320 ms... when the backoff grows.
        { minReconnectDelayMs: 20, maxReconnectDelayMs: 5000, random: () => 1 },
      );
      void client.connect().catch(() => undefined);
      await sleep(800);
      client.close();
      // Growing: connects at about 0, 40, 120, 280 and 600 ms. Restarting at every
      // connection.established: one every 40 ms, some twenty.
      assert.ok(server.connectedAt.length <= 7, `${server.connectedAt.length} connects in 800 ms`);
    });
  }

  it('starts the backoff over once a connection stayed up for a heartbeat interval', async () => {
    const { server, client } = await setup(
      (socket, n) => {
        // Announced as 0.001 s, used as the 1 s minimum: connection 4 outlives it.
        socket.send(established({ heartbeat_interval: 0.001 }));
        setTimeout(() => socket.close(1011, 'go away'), n === 4 ? 1300 : 0);
      },
      { minReconnectDelayMs: 20, maxReconnectDelayMs: 5000, random: () => 1 },
    );
    void client.connect().catch(() => undefined);
    await eventually(() => server.connectedAt.length >= 5, 'a fifth connection');
    const [, , , fourth, fifth] = server.connectedAt as [number, number, number, number, number];
    // Attempt 0 again (at most 40 ms), not attempt 3 (up to 320 ms).
    const gap = fifth - fourth - 1300;
    assert.ok(gap < 200, `reconnected ${Math.round(gap)} ms after the stable connection closed`);
  });
});

describe('SDK against malformed server replies', () => {
  it('reports a stream.resync with a malformed entry on error instead of throwing', async () => {
    const { client, errors } = await setup((socket) => {
      socket.send(established());
      setTimeout(() => socket.send(frame('stream.resync', { streams: [null] })), 50);
    });
    await client.connect();
    await eventually(() => errors.length > 0, 'an error event');
    assert.equal(errors[0]?.code, 'INVALID_SERVER_MESSAGE');
    assert.equal(client.state, 'open');
  });

  it('rejects subscribe() on an acknowledgement of the wrong shape', async () => {
    const { client } = await setup((socket) => {
      socket.send(established());
      answer(socket, 'subscribe', (request) =>
        frame(
          'subscription.acknowledged',
          { events: request.data?.events, invalid_events: 5 },
          { in_reply_to: request.id },
        ),
      );
    });
    await client.connect();
    await assert.rejects(client.subscribe(['upload.progress']), {
      code: 'INVALID_SERVER_MESSAGE',
    });
  });

  /**
   * Connection 1 acknowledges the subscription, sends one stream message (a position to resume
   * from) and is cut; the next connections answer the restore with `answerRestore`.
   */
  async function reconnectWith(answerRestore: (socket: WebSocket) => void) {
    const unhandled = recordUnhandledRejections();
    const t = await setup((socket, n) => {
      socket.send(established());
      if (n > 1) return answerRestore(socket);
      socket.on('message', (raw) => {
        const request = JSON.parse(String(raw)) as ClientFrame;
        if (request.type !== 'subscribe') return;
        socket.send(ack([])(request));
        socket.send(
          frame(
            'upload.progress',
            { upload_id: 'a', progress: 1 },
            { stream: 'user:u', offset: '1', epoch: 'e' },
          ),
        );
        setTimeout(() => socket.terminate(), 100);
      });
    });
    const states: ConnectionState[] = [];
    t.client.on('state', ({ newState }) => states.push(newState));
    const resumed: ResumeResultData[] = [];
    t.client.on('resumed', (result) => resumed.push(result));
    await t.client.connect();
    await t.client.subscribe(['upload.progress']);
    await eventually(() => states.includes('reconnecting'), 'the cut');
    await eventually(() => states.at(-1) === 'open', 'open again');
    return { ...t, unhandled, resumed };
  }

  it('turns open, with an error event, after a malformed subscribe ack on reconnect', async () => {
    const t = await reconnectWith((socket) => {
      answer(socket, 'subscribe', ack(5));
      answer(socket, 'resume', resumeResult([{ stream: 'user:u', recovered: true, replayed: 0 }]));
    });
    assert.deepEqual(
      t.errors.map((error) => error.code),
      ['INVALID_SERVER_MESSAGE'],
    );
    assert.deepEqual(t.unhandled, []);
  });

  it('turns open and reports the gap as unknown after a malformed resume.result', async () => {
    const t = await reconnectWith((socket) => {
      answer(socket, 'subscribe', ack([]));
      answer(socket, 'resume', resumeResult([null]));
    });
    assert.deepEqual(
      t.errors.map((error) => error.code),
      ['INVALID_SERVER_MESSAGE'],
    );
    assert.deepEqual(t.resumed, [
      { recovered: false, streams: [{ stream: 'user:u', recovered: false, replayed: 0 }] },
    ]);
    assert.deepEqual(t.unhandled, []);
  });
});

describe('SDK against absurd announced liveness limits', () => {
  // 2^31 ms overflows setInterval, which then fires every millisecond.
  for (const seconds of [0.001, 2 ** 31 / 1000, 3e6]) {
    it(`sends no flood of heartbeats with heartbeat_interval ${seconds} s`, async () => {
      let frames = 0;
      const { client } = await setup((socket) => {
        socket.send(established({ heartbeat_interval: seconds, connection_timeout: 1e9 }));
        socket.on('message', () => frames++);
      });
      await client.connect();
      await sleep(500);
      // At most one per second (the lower bound), so none in half a second.
      assert.equal(frames, 0);
    });
  }
});

describe('SDK close() against a server that never answers the close', () => {
  it("terminates the socket after a short grace instead of ws's 30 s", async () => {
    // A real `ws` socket, recorded so that the test can see when it closes.
    const sockets: WebSocket[] = [];
    class Recording extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
      }
    }
    const { client } = await setup(
      (socket) => {
        socket.send(established());
        // A stalled server: reads nothing more, so never answers the close frame.
        (socket as unknown as { _socket: { pause(): void } })._socket.pause();
      },
      { WebSocket: Recording },
    );
    await client.connect();
    const socket = sockets[0]!;
    const started = performance.now();
    client.close();
    await eventually(() => socket.readyState === WebSocket.CLOSED, 'the socket closed');
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 2000, `closed ${Math.round(elapsed)} ms after close()`);
  });
});

describe('SDK with more streams than it keeps positions for', () => {
  it('resumes the newest 1,000 streams (10 requests), reports the rest unrecovered', async () => {
    const STREAMS = 1500;
    const resumeSizes: number[] = [];
    const asked = new Set<string>();
    let first: WebSocket | undefined;
    const { client } = await setup((socket, n) => {
      socket.send(established());
      if (n === 1) {
        first = socket;
        for (let i = 0; i < STREAMS; i++) {
          socket.send(frame('x', { i }, { stream: `room:r${i}`, offset: '1', epoch: 'e' }));
        }
        return;
      }
      socket.on('message', (raw) => {
        const request = JSON.parse(String(raw)) as ClientFrame & {
          data: { positions: { stream: string }[] };
        };
        if (request.type !== 'resume') return;
        const { positions } = request.data;
        resumeSizes.push(positions.length);
        for (const { stream } of positions) asked.add(stream);
        const streams = positions.map(({ stream }) => ({ stream, recovered: true, replayed: 0 }));
        socket.send(
          frame('resume.result', { recovered: true, streams }, { in_reply_to: request.id }),
        );
      });
    });
    let seen = 0;
    client.on('x', () => seen++);
    const resumed: ResumeResultData[] = [];
    const resynced: string[][] = [];
    client.on('resumed', (result) => resumed.push(result));
    client.on('resync', ({ streams }) => resynced.push(streams.map(({ stream }) => stream)));
    await client.connect();
    await eventually(() => seen === STREAMS, 'every stream message');
    first!.terminate();
    await eventually(() => resumed.length === 1 && client.state === 'open', 'open again');
    assert.equal(resumeSizes.length, 10);
    assert.equal(asked.size, 1000);
    // The most recently updated are kept.
    assert.ok(asked.has(`room:r${STREAMS - 1}`) && !asked.has('room:r0'));
    const evicted = Array.from({ length: STREAMS - 1000 }, (_, i) => `room:r${i}`);
    const result = resumed[0]!;
    assert.equal(result.recovered, false);
    assert.equal(result.streams.length, STREAMS);
    assert.deepEqual(
      result.streams.filter((stream) => !stream.recovered),
      evicted.map((stream) => ({ stream, recovered: false, replayed: 0 })),
    );
    assert.deepEqual(resynced, [evicted]);
  });
});

describe('SDK close() while a reconnect is restored', () => {
  /**
   * Connection 1 acknowledges a subscription, sends one stream message and is cut; connection 2
   * leaves unanswered the requests of `type` (and answers the others).
   */
  for (const unanswered of ['resume', 'subscribe']) {
    it(`emits nothing after close() with a ${unanswered} in flight`, async () => {
      const received: string[] = [];
      const { client } = await setup((socket, n) => {
        socket.send(established());
        socket.on('message', (raw) => {
          const request = JSON.parse(String(raw)) as ClientFrame;
          received.push(`${n}:${request.type}`);
          if (n > 1 && request.type === unanswered) return;
          if (request.type === 'subscribe') socket.send(ack([])(request));
          if (request.type === 'resume') {
            const streams = [{ stream: 'user:u', recovered: true, replayed: 0 }];
            socket.send(resumeResult(streams)(request));
          }
          if (n > 1 || request.type !== 'subscribe') return;
          socket.send(frame('x', {}, { stream: 'user:u', offset: '1', epoch: 'e' }));
          setTimeout(() => socket.terminate(), 50);
        });
      });
      const after: string[] = [];
      let closed = false;
      for (const type of ['error', 'resumed', 'resync', 'state', 'close', 'established']) {
        client.on(type, () => closed && after.push(type));
      }
      await client.connect();
      await client.subscribe(['upload.progress']);
      await eventually(() => received.includes(`2:${unanswered}`), `the ${unanswered} sent`);
      client.close();
      closed = true;
      await sleep(100);
      assert.equal(client.state, 'closed');
      assert.deepEqual(after, []);
    });
  }
});

/** Passes every argument but the third: what a browser's WebSocket does with `ws`'s options. */
class OptionsIgnored extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
  }
}

describe('SDK against a server that sends messages over maxMessageSize', () => {
  /** `text` sent after connection.established; the client's `error`s, `close`s and deliveries. */
  async function receive(text: string, options: Partial<RealtimeClientOptions>) {
    const closes: CloseInfo[] = [];
    const delivered: string[] = [];
    const t = await setup((socket, n) => {
      socket.send(established());
      if (n === 1) socket.send(text);
    }, options);
    t.client.on('close', (info) => closes.push(info));
    t.client.on('message', ({ type }) => delivered.push(type));
    await t.client.connect();
    return { ...t, closes, delivered };
  }

  it('in Node, has ws refuse a frame by its announced length, before buffering it', async () => {
    // 50 MiB announced (under ws's 100 MiB default), 4 bytes sent: only ws's maxPayload can
    // see it; waiting for the rest would hold the connection until the server sends 50 MiB.
    const closes: CloseInfo[] = [];
    const { client, errors } = await setup((socket) => {
      socket.send(established());
      const header = Buffer.from([0x81, 127, 0, 0, 0, 0, 0, 0, 0, 0]);
      header.writeUInt32BE(50 * 1024 * 1024, 6);
      const raw = (socket as unknown as { _socket: { write(data: Buffer): void } })._socket;
      setTimeout(() => raw.write(Buffer.concat([header, Buffer.from('{"ty')])), 50);
    });
    client.on('close', (info) => closes.push(info));
    await client.connect();
    await eventually(() => closes.length > 0, 'the connection dropped');
    assert.deepEqual(closes[0], { code: 1009, reason: 'Message too big', willReconnect: true });
    assert.deepEqual(
      errors.map(({ code }) => code),
      ['INVALID_SERVER_MESSAGE'],
    );
    await eventually(() => client.state === 'open', 'open again');
  });

  it('in Node, refuses a message over the 16 MiB default', async () => {
    const big = frame('big', { blob: 'x'.repeat(16 * 1024 * 1024) });
    const t = await receive(big, {});
    await eventually(() => t.closes.length > 0, 'the connection dropped');
    assert.equal(t.closes[0]?.code, 1009);
    assert.deepEqual(
      t.errors.map(({ code }) => code),
      ['INVALID_SERVER_MESSAGE'],
    );
    assert.ok(!t.delivered.includes('big'));
  });

  it('where the socket cannot enforce it (browsers), checks UTF-8 bytes on receipt', async () => {
    // 400 '€' are 400 UTF-16 units but 1,200 bytes: over 1,024 only when counted as the
    // server sent them.
    const over = frame('over', { text: '€'.repeat(400) });
    const t = await receive(over, { WebSocket: OptionsIgnored, maxMessageSize: 1024 });
    await eventually(() => t.closes.length > 0, 'the connection dropped');
    assert.deepEqual(t.closes[0], { code: 1009, reason: 'Message too big', willReconnect: true });
    assert.deepEqual(
      t.errors.map(({ code }) => code),
      ['INVALID_SERVER_MESSAGE'],
    );
    assert.ok(!t.delivered.includes('over'));
    await eventually(() => t.client.state === 'open', 'open again');
  });

  it('delivers a message of up to maxMessageSize bytes', async () => {
    const under = frame('under', { text: '€'.repeat(250) });
    assert.ok(Buffer.byteLength(under) <= 1024);
    for (const WebSocketImpl of [OptionsIgnored, NodeWebSocket]) {
      const t = await receive(under, { WebSocket: WebSocketImpl, maxMessageSize: 1024 });
      await eventually(() => t.delivered.includes('under'), 'the message');
      assert.deepEqual(t.closes, []);
      assert.deepEqual(t.errors, []);
      t.client.close();
    }
  });

  it('refuses a maxMessageSize that is not a positive integer (0 is "no limit" to ws)', () => {
    for (const maxMessageSize of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () =>
          new RealtimeClient({
            url: 'ws://x',
            getToken: () => 't',
            WebSocket: NodeWebSocket,
            maxMessageSize,
          }),
        RangeError,
      );
    }
  });
});

describe('SDK against a server that refuses every upgrade with an HTTP status', () => {
  /** An HTTP server on 127.0.0.1 answering every upgrade with `head`; counts the upgrades. */
  async function refusingServer(head: string) {
    const server = createServer();
    let upgrades = 0;
    server.on('upgrade', (_request, socket: Duplex) => {
      upgrades++;
      socket.on('error', () => undefined);
      socket.end(`${head}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const { port } = server.address() as AddressInfo;
    return { url: `ws://127.0.0.1:${port}/ws`, upgrades: () => upgrades };
  }

  async function refusedFor(head: string, ms: number) {
    const server = await refusingServer(head);
    const client = clientOf(server.url);
    const closes: CloseInfo[] = [];
    client.on('close', (info) => closes.push(info));
    void client.connect().catch(() => undefined);
    await sleep(ms);
    return { upgrades: server.upgrades(), closes, state: client.state };
  }

  it('waits a 503 Retry-After given as an HTTP date', async () => {
    // HTTP dates have whole seconds: 3 s ahead is 2 to 3 s from now.
    const at = new Date(Date.now() + 3000).toUTCString();
    const refused = await refusedFor(
      `HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${at}`,
      1500,
    );
    assert.equal(refused.upgrades, 1);
    assert.equal(refused.state, 'reconnecting');
  });

  it('keeps its backoff when a 429 carries no Retry-After (as browsers, who see no status)', async () => {
    const refused = await refusedFor('HTTP/1.1 429 Too Many Requests', 500);
    // Attempts every 20 to 50 ms: never stuck waiting for a delay nobody asked for.
    assert.ok(refused.upgrades >= 5, `${refused.upgrades} upgrades in 500 ms`);
    assert.equal(refused.state, 'reconnecting');
    assert.deepEqual(refused.closes[0], { code: 1006, reason: '', willReconnect: true });
  });
});
