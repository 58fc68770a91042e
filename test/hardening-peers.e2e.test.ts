import { SubscribeMessage } from '@nestjs/websockets';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, afterEach, before, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RealtimeClient } from '../src/client/index.js';
import {
  type ConnectionClosedEvent,
  ConnectionRegistry,
  RealtimeGateway,
  RealtimeService,
} from '../src/realtime/index.js';
import { mapBounded } from './support/bounded-map.js';
import { rawUpgrade, type RawUpgrade } from './support/raw-upgrade.js';
import { sdkOptions } from './support/sdk-options.js';
import { SequenceReader } from './support/sequence-reader.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import {
  assertPingWorks,
  assertServesFreshClient,
  receivedUpToMarker,
  sleep,
} from './support/wire.js';

const MB = 1024 * 1024;

/** Close events of the server for one user, recorded from now until `stop()`. */
function recordCloses(server: TestApp, userId: string) {
  const closes: ConnectionClosedEvent[] = [];
  const subscription = server.app
    .get(RealtimeService)
    .connectionClosed$.subscribe((event) => event.userId === userId && closes.push(event));
  return { closes, stop: () => subscription.unsubscribe() };
}

/** Live heap and buffer bytes after a full collection (`--expose-gc` turned on at run time). */
function liveBytes(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

describe('hardening: one slow consumer among 999 readers', () => {
  const READERS = 999;
  const BROADCASTS = 50;
  /** Large user-targeted sends to the slow user after each broadcast. */
  const FLOOD_PER_BROADCAST = 30;
  const PAD = 'x'.repeat(32 * 1024);
  const MAX_BUFFERED_BYTES = 64 * 1024;
  /**
   * Bound on the growth of live memory over the whole case. Pushed at the slow user:
   * 50 × 30 × 32 KB = 48 MB, of which loopback socket buffers take a few MB at most; without the
   * send-buffer bound ws would keep the rest (well over 32 MB) queued for the paused peer. With
   * it, the connection holds at most 64 KB and the rest of the bound is slack for collection
   * noise, compiled code and the readers' own small state in this same process.
   */
  const GROWTH_BOUND = 32 * MB;
  let server: TestApp;
  let readers: SequenceReader[] = [];
  let slow: RawUpgrade | undefined;
  before(async () => {
    server = await startTestApp({
      realtime: {
        maxTotalConnections: READERS + 10,
        maxBufferedBytes: MAX_BUFFERED_BYTES,
        closeGraceMs: 500,
      },
    });
  });
  after(async () => {
    for (const reader of readers) reader.close();
    slow?.socket.destroy();
    await server.close();
  });

  it('closes the paused peer with 4010 while 999 readers get every broadcast in order, in bounded memory', async () => {
    const service = server.app.get(RealtimeService);
    const registry = server.app.get(ConnectionRegistry);
    const started = performance.now();
    readers = await mapBounded(READERS, 25, (i) =>
      SequenceReader.open(server.wsUrl, server.token(`reader-${i}`), 'test.seq'),
    );
    const openedMs = Math.round(performance.now() - started);
    // A peer that completes the upgrade and then never reads again.
    slow = await rawUpgrade(server.port, '/ws', server.token('slow-peer'));
    assert.equal(slow.status, 101);
    assert.equal(registry.size, READERS + 1);
    const slowCloses = recordCloses(server, 'slow-peer');
    const baseline = liveBytes();
    let peak = baseline;
    try {
      for (let seq = 0; seq < BROADCASTS; seq++) {
        await service.broadcast('test.seq', { seq });
        for (let i = 0; i < FLOOD_PER_BROADCAST; i++) {
          await service.sendToUser('slow-peer', 'test.bulk', { i, pad: PAD });
        }
        const { heapUsed, arrayBuffers } = process.memoryUsage();
        peak = Math.max(peak, heapUsed + arrayBuffers);
        await nextTurn(); // the readers live in this process: let them read
      }
      await eventually(
        () => readers.every((r) => r.expected === BROADCASTS || r.disorder.length > 0),
        30_000,
        'every reader got every broadcast',
      );
      const flooded = performance.now();
      assert.equal(
        readers.filter((r) => r.disorder.length > 0 || r.others.length > 0).length,
        0,
        'no reader saw a gap, a reordering or a message meant for someone else',
      );
      assert.equal(readers.filter((r) => r.closeCode !== undefined).length, 0, 'readers open');
      assert.deepEqual(
        slowCloses.closes.map((c) => [c.code, c.reason]),
        [[4010, 'Slow consumer']],
      );
      assert.equal(await service.isUserConnected('slow-peer'), false);
      const growth = liveBytes() - baseline;
      console.log(
        `[hardening] 999 readers opened in ${openedMs} ms; sends and reads took ` +
          `${Math.round(flooded - started - openedMs)} ms; live memory growth ` +
          `${(growth / MB).toFixed(1)} MB (peak +${((peak - baseline) / MB).toFixed(1)} MB, ` +
          `not collected)`,
      );
      assert.ok(growth < GROWTH_BOUND, `live memory grew ${(growth / MB).toFixed(1)} MB`);
    } finally {
      slowCloses.stop();
    }
    await assertServesFreshClient(server, 'after-slow');
  });
});

/** `node -e` script of a client in its own process: prints its connection id once admitted. */
const CHILD_CLIENT = `
const WebSocket = require('ws');
const ws = new WebSocket(process.env.RT_URL, {
  headers: { authorization: 'Bearer ' + process.env.RT_TOKEN },
});
ws.on('error', () => {});
ws.on('message', (raw) => {
  const message = JSON.parse(raw.toString());
  if (message.type === 'connection.established') console.log('id ' + message.data.connection_id);
});
setTimeout(() => process.exit(3), 60000).unref();
`;
/** The checkout, where `require('ws')` of the child resolves (this file is in build/test/). */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Spawns the child client and resolves with its connection id, bounded. */
async function spawnChildClient(url: string, token: string): Promise<[ChildProcess, string]> {
  const child = spawn(process.execPath, ['-e', CHILD_CLIENT], {
    cwd: ROOT,
    env: { ...process.env, RT_URL: url, RT_TOKEN: token },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await eventually(() => /^id \S+$/m.test(output), 10_000, 'the child client is admitted');
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return [child, /^id (\S+)$/m.exec(output)![1]!];
}

describe('hardening: a half-open peer (stopped process)', () => {
  const HEARTBEAT_MS = 200;
  const TIMEOUT_MS = 1000;
  let server: TestApp;
  let child: ChildProcess | undefined;
  before(async () => {
    server = await startTestApp({
      realtime: {
        heartbeatIntervalMs: HEARTBEAT_MS,
        connectionTimeoutMs: TIMEOUT_MS,
        closeGraceMs: 300,
      },
    });
  });
  after(async () => {
    child?.kill('SIGKILL');
    await server.close();
  });

  it('reaps a client whose process was stopped (SIGSTOP) with 4000 once it stops answering pings', async () => {
    const registry = server.app.get(ConnectionRegistry);
    const closes = recordCloses(server, 'stopped-peer');
    try {
      const [spawned, connectionId] = await spawnChildClient(
        server.wsUrl,
        server.token('stopped-peer'),
      );
      child = spawned;
      // Running, the child answers pings: it outlives the timeout.
      await sleep(TIMEOUT_MS * 1.5);
      assert.ok(registry.get(connectionId), 'a running child is kept');
      assert.deepEqual(closes.closes, []);

      assert.ok(child.kill('SIGSTOP'));
      const stoppedAt = performance.now();
      await eventually(
        () => closes.closes.length > 0,
        TIMEOUT_MS + 5000,
        'the stopped peer reaped',
      );
      const reapedMs = Math.round(performance.now() - stoppedAt);
      assert.deepEqual(closes.closes, [
        {
          connectionId,
          userId: 'stopped-peer',
          code: 4000,
          reason: 'Connection timeout',
        },
      ]);
      assert.equal(registry.get(connectionId), undefined, 'the registry no longer lists it');
      console.log(`[hardening] stopped peer reaped ${reapedMs} ms after SIGSTOP`);
    } finally {
      closes.stop();
      child?.kill('SIGKILL');
    }
    if (child && child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    await assertServesFreshClient(server, 'after-stopped');
  });
});

const CRASH_TEXT = 'boom in a host handler';

@RealtimeGateway()
class CrashingGateway {
  @SubscribeMessage('test.crash')
  crash(): never {
    throw new Error(CRASH_TEXT);
  }
}

describe('hardening: a handler that throws', () => {
  const ROUNDS = 20;
  let server: TestApp;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startTestApp({ providers: [CrashingGateway] });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server.close();
  });

  it('answers INTERNAL_ERROR to the sender only; the others see just their broadcasts, in order', async () => {
    const service = server.app.get(RealtimeService);
    const open = async (user: string) => {
      const client = await TestClient.open(server.wsUrl, server.token(user));
      clients.push(client);
      return client;
    };
    const crasher = await open('crasher');
    const bystanders = await Promise.all(['by-1', 'by-2', 'by-3'].map(open));
    for (let seq = 0; seq < ROUNDS; seq++) {
      crasher.send({ type: 'test.crash', data: {}, id: `crash-${seq}` });
      await service.broadcast('test.seq', { seq });
    }
    const numbered = Array.from({ length: ROUNDS }, (_, seq) => seq);

    await eventually(() => crasher.ofType('error').length === ROUNDS, 5000, 'every crash answered');
    for (const [i, error] of crasher.ofType('error').entries()) {
      assert.equal(error.data.code, 'INTERNAL_ERROR');
      assert.equal(error.in_reply_to, `crash-${i}`);
      assert.ok(!JSON.stringify(error).includes(CRASH_TEXT), 'the error text stays inside');
    }
    assert.deepEqual(
      crasher.ofType('test.seq').map((m) => m.data.seq),
      numbered,
    );

    for (const [i, bystander] of bystanders.entries()) {
      const seen = await receivedUpToMarker(service, bystander, `by-${i + 1}`);
      assert.deepEqual(
        seen.map((m) => (m.type === 'test.seq' ? m.data.seq : m.type)),
        ['connection.established', ...numbered],
        `by-${i + 1} saw nothing extra`,
      );
      await assertPingWorks(bystander);
    }
    await assertPingWorks(crasher);
    await assertServesFreshClient(server, 'after-crash');
  });
});

describe('hardening: per-user eviction (maxConnectionsPerUser 1) without a storm', () => {
  const QUIET_MS = 2000;
  const NAIVE_CONNECTS = 50;
  /** Generous: a ping answered at all within this, at the 99th percentile, while the storm runs. */
  const PING_P99_BOUND_MS = 2000;
  let server: TestApp;
  const cleanups: Array<() => void> = [];
  before(async () => {
    // The bystander pings back to back: the per-user message rate limit must not be what answers.
    server = await startTestApp({
      realtime: { maxConnectionsPerUser: 1, rateLimitMessages: 100_000 },
    });
  });
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  after(() => server.close());

  /**
   * Largest count of server connections `userId` held, sampled right after each admission (a
   * microtask after `connectionOpened$`: the new connection is announced before the one it
   * replaces is closed, so that the user is never without a connection in between).
   */
  function watchPeak(userId: string) {
    const registry = server.app.get(ConnectionRegistry);
    const watch = { peak: 0 };
    const subscription = server.app
      .get(RealtimeService)
      .connectionOpened$.subscribe(() =>
        queueMicrotask(() => (watch.peak = Math.max(watch.peak, registry.ofUser(userId).size))),
      );
    cleanups.push(() => subscription.unsubscribe());
    return watch;
  }

  it('SDK clients of one user end with exactly one eviction over a 2 s quiet window', async () => {
    const evictions = recordCloses(server, 'sdk-user');
    cleanups.push(evictions.stop);
    const options = sdkOptions(server, 'sdk-user');
    const watch = watchPeak('sdk-user');
    const [first, second] = [1, 2].map(() => {
      const client = new RealtimeClient(options);
      cleanups.push(() => client.close());
      return client;
    }) as [RealtimeClient, RealtimeClient];
    await first.connect();
    await second.connect();
    await sleep(QUIET_MS);
    assert.deepEqual(
      evictions.closes.map((c) => c.code),
      [4008],
    );
    assert.equal(first.state, 'closed');
    assert.equal(second.state, 'open');
    assert.equal(watch.peak, 1, 'never two server connections of the user at once');
    assert.ok((await second.ping()) >= 0);
    await assertServesFreshClient(server, 'after-sdk');
  });

  it('naive clients that reconnect at once after 4008 evict each other at most maxEvictionsPerUserPerMinute times, then get 1013; never two connections; others stay answered', async () => {
    const evictions = recordCloses(server, 'naive-user');
    cleanups.push(evictions.stop);
    const watch = watchPeak('naive-user');
    const bystander = await TestClient.open(server.wsUrl, server.token('bystander'));
    cleanups.push(() => bystander.close());
    const latencies: number[] = [];
    let storming = true;
    const pinging = (async () => {
      for (let i = 0; storming && i < 10_000; i++) {
        const sent = performance.now();
        await assertPingWorks(bystander, `p${i}`);
        latencies.push(performance.now() - sent);
      }
    })();
    pinging.catch(() => undefined); // awaited below, after the storm

    const started = performance.now();
    const [a, b] = await Promise.all([
      naiveReconnects(server, 'naive-user', NAIVE_CONNECTS),
      naiveReconnects(server, 'naive-user', NAIVE_CONNECTS),
    ]).finally(() => (storming = false));
    const stormMs = Math.round(performance.now() - started);
    await pinging;
    const connects = a.connects + b.connects;
    const survivors = [a.survivor, b.survivor].filter((s) => s !== undefined);
    for (const survivor of survivors) cleanups.push(() => survivor.close());
    const sorted = latencies.sort((x, y) => x - y);
    const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
    console.log(
      `[hardening] naive storm: ${connects} connects, ${evictions.closes.length} evictions in ` +
        `${stormMs} ms; bystander ${latencies.length} pings, p99 ${p99.toFixed(1)} ms`,
    );
    assert.equal(survivors.length, 1, 'one connection is left when both stop');
    // The default bound: 30 evictions of one user per minute; every later connect is refused.
    assert.equal(evictions.closes.length, 30, 'evictions stop at the bound');
    assert.equal(a.refused + b.refused, connects - 1 - 30, 'the rest was refused with 1013');
    assert.ok(
      evictions.closes.every((c) => c.code === 4008),
      'every close was an eviction',
    );
    assert.equal(watch.peak, 1, 'never two server connections of the user at once');
    assert.ok(latencies.length > 0, 'the bystander was pinged during the storm');
    assert.ok(p99 < PING_P99_BOUND_MS, `bystander ping p99 ${p99.toFixed(1)} ms`);
    await assertServesFreshClient(server, 'after-storm');
  });
});

/**
 * A client that ignores the protocol's advice and reconnects at once after 4008, up to
 * `maxConnects` times; it stops when a connection is left alone for the quiet window.
 */
async function naiveReconnects(server: TestApp, userId: string, maxConnects: number) {
  const QUIET_MS = 1000;
  let connects = 0;
  let refused = 0;
  while (connects < maxConnects) {
    const client = TestClient.connect(server.wsUrl, server.token(userId));
    connects++;
    const info = await client.waitClose(QUIET_MS).catch(() => undefined);
    // Left open: the caller closes it once it has counted the closes.
    if (!info) return { connects, refused, survivor: client };
    if (info.code === 1013) refused++;
    else if (info.code !== 4008) break;
  }
  return { connects, refused, survivor: undefined };
}

describe('hardening: a peer that ends the session and then never reads or ends its side', () => {
  const GRACE_MS = 500;
  let server: TestApp;
  const peers: RawUpgrade[] = [];
  before(async () => {
    server = await startTestApp({ realtime: { closeGraceMs: GRACE_MS } });
  });
  after(async () => {
    for (const peer of peers) peer.socket.destroy();
    await server.close();
  });

  const endings: Record<string, Buffer> = {
    // Masked close frame, code 1000.
    'a close frame': Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]),
    // A client frame must be masked: a protocol error, which the server answers with a close.
    'an unmasked frame': Buffer.from([0x81, 0x02, 0x68, 0x69]),
  };
  for (const [what, bytes] of Object.entries(endings)) {
    it(`drops the socket and the connection within closeGraceMs after ${what} (ws would wait 30 s)`, async () => {
      const registry = server.app.get(ConnectionRegistry);
      const userId = `ending-${peers.length}`;
      const peer = await rawUpgrade(server.port, '/ws', server.token(userId));
      peers.push(peer);
      await eventually(() => registry.ofUser(userId).size === 1, 3000, 'registered');
      const serverSide = [...registry.ofUser(userId)][0]!.socket;
      const socketClosed = new Promise<number>((resolve) => {
        const started = Date.now();
        // The ws 'close' event: the TCP socket is gone, not just the WebSocket closing.
        serverSide.once('close', () => resolve(Date.now() - started));
      });
      peer.socket.allowHalfOpen = true;
      peer.socket.pause();
      peer.socket.write(bytes);
      const within = GRACE_MS + 2000;
      const closedAfter = await Promise.race([socketClosed, sleep(within).then(() => -1)]);
      assert.notEqual(closedAfter, -1, `server socket still open after ${within} ms`);
      assert.equal(registry.ofUser(userId).size, 0);
    });
  }
});
