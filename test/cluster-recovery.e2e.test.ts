import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { RealtimeClient, type ResyncInfo, type WebSocketConstructor } from '../src/client/index.js';
import type { ResumeResultData } from '../src/protocol/index.js';
import { StreamCatchUp } from '../src/realtime/recovery/stream-catch-up.js';
import { type Cluster, type ClusterInstance, startCluster } from './support/cluster.js';
import {
  type RedisServer,
  redisCommand,
  requireRedis,
  startRedisServer,
} from './support/redis-server.js';
import { type ProxiedCluster, startProxiedCluster } from './support/proxied-cluster.js';
import { eventually, TestClient } from './support/test-client.js';
import { sleep } from './support/wire.js';

/**
 * Recovery across instances through Redis (issue 6, PROTOCOL.md section 9): 1,000 numbered
 * messages flow to one SDK client through every stream kind while the client's TCP connection is
 * cut and it reconnects to the other instance, while Redis kills the instances' subscriptions, and
 * while Redis restarts. The client ends with exactly 1..1000 in order, or, when the history itself
 * was lost, is told to resync: never a silent gap.
 */

const COUNT = 1000;
const WAIT_MS = 20_000;
const KINDS = ['user', 'event', 'room', 'all'] as const;
type Kind = (typeof KINDS)[number];
const TYPES: Record<string, Kind> = {
  'n.user': 'user',
  numbers: 'event',
  'n.room': 'room',
  'n.all': 'all',
};
const USER = 'numbered';
const ROOM = 'numbers-room';

const servers: RedisServer[] = [];
const clusters: Cluster[] = [];
const dirs: string[] = [];
after(async () => {
  for (const cluster of clusters) await cluster.close().catch(() => undefined);
  for (const server of servers) await server.kill();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function redisFor(t: TestContext, persistent = false): Promise<RedisServer | undefined> {
  const persistDir = persistent ? mkdtempSync(join(tmpdir(), 'realtime-redis-')) : undefined;
  if (persistDir) dirs.push(persistDir);
  const server = await startRedisServer({ persistDir });
  if (!requireRedis(t, server)) return undefined;
  servers.push(server);
  return server;
}

/** Two instances whose hosts put every connection of {@link USER} in {@link ROOM}. */
async function cluster(redis: RedisServer): Promise<ClusterInstance[]> {
  const started = await startCluster(2, redis.url, {
    events: ['numbers'],
    history: { maxMessages: COUNT },
    rateLimitMessages: 10_000,
    redis: { requestTimeoutMs: 2000, leaseMs: 3000, maxBufferedPublishes: 10 * COUNT },
  });
  clusters.push(started);
  for (const instance of started.instances) {
    instance.service.connectionOpened$.subscribe((opened) => {
      if (opened.userId === USER) {
        instance.service.joinRoom(ROOM, { connectionId: opened.connectionId });
      }
    });
  }
  return started.instances;
}

/**
 * `ws` WebSockets that remember themselves (so that a test can cut one) and connect to the
 * instances in turn: each reconnect lands on the other instance.
 */
function rotatingWebSocket(urls: readonly string[], opened: WebSocket[]): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      const { search } = new URL(url);
      super(`${urls[opened.length % urls.length]}${search}`, protocols);
      opened.push(this);
    }
  } as unknown as WebSocketConstructor;
}

/** Ends the TCP connection under a `ws` socket with no close frame: the network went away. */
function cutTcp(socket: WebSocket): void {
  (socket as unknown as { _socket: Socket })._socket.destroy();
}

interface Recorder {
  sdk: RealtimeClient;
  sockets: WebSocket[];
  got: Record<Kind, number[]>;
  resumes: ResumeResultData[];
  resyncs: ResyncInfo[];
}

async function connectClient(instances: readonly ClusterInstance[]): Promise<Recorder> {
  const sockets: WebSocket[] = [];
  const sdk = new RealtimeClient({
    url: instances[0]!.wsUrl,
    getToken: () => instances[0]!.token(USER),
    WebSocket: rotatingWebSocket(
      instances.map((instance) => instance.wsUrl),
      sockets,
    ),
    minReconnectDelayMs: 20,
    maxReconnectDelayMs: 100,
    requestTimeoutMs: WAIT_MS,
  });
  const recorder: Recorder = {
    sdk,
    sockets,
    got: { user: [], event: [], room: [], all: [] },
    resumes: [],
    resyncs: [],
  };
  for (const [type, kind] of Object.entries(TYPES)) {
    sdk.on(type, (data) => recorder.got[kind].push(data.seq as number));
  }
  sdk.on('resumed', (result) => recorder.resumes.push(result));
  sdk.on('resync', (info) => recorder.resyncs.push(info));
  await sdk.connect();
  await sdk.subscribe(['numbers']);
  return recorder;
}

async function send(from: ClusterInstance, kind: Kind, seq: number): Promise<void> {
  const data = { seq };
  switch (kind) {
    case 'user':
      await from.service.sendToUser(USER, 'n.user', data);
      return;
    case 'event':
      await from.service.sendToEvent('numbers', data);
      return;
    case 'room':
      await from.service.sendToRoom(ROOM, 'n.room', data);
      return;
    case 'all':
      await from.service.broadcast('n.all', data);
      return;
  }
}

/**
 * Sends 1..COUNT on every stream kind from `senderOf(seq)`, running `fault` before the given
 * numbers while the sends go on; then waits until the client has every number of every kind.
 * Numbers for which `burst(seq)` is true are sent without waiting for their counts, so that many
 * go out within a short fault; they must all come from one sender, which keeps their order.
 */
async function stream(
  recorder: Recorder,
  senderOf: (seq: number) => ClusterInstance,
  faults: Record<number, () => Promise<void> | void>,
  burst: (seq: number) => boolean = () => false,
): Promise<void> {
  let unawaited: Array<Promise<void>> = [];
  for (let seq = 1; seq <= COUNT; seq++) {
    await faults[seq]?.();
    if (burst(seq)) {
      for (const kind of KINDS) unawaited.push(send(senderOf(seq), kind, seq));
      continue;
    }
    await Promise.all(unawaited);
    unawaited = [];
    for (const kind of KINDS) await send(senderOf(seq), kind, seq);
    if (seq % 25 === 0) await sleep(1);
  }
  await Promise.all(unawaited);
  await eventually(
    () => KINDS.every((kind) => recorder.got[kind].length >= COUNT),
    WAIT_MS,
    'every message',
  ).catch((error: Error) => {
    const counts = KINDS.map((kind) => `${kind} ${recorder.got[kind].length}`).join(', ');
    throw new Error(`${error.message}: ${counts}; resyncs ${JSON.stringify(recorder.resyncs)}`);
  });
  await sleep(200);
}

/** A fault that stops Redis before `seq` and starts it again on the same port. */
function restartAt(redis: RedisServer, seq: number): Record<number, () => Promise<void>> {
  return {
    [seq]: async () => {
      await redis.stop();
      await redis.start();
    },
  };
}

function assertExactlyAll(recorder: Recorder): void {
  const expected = Array.from({ length: COUNT }, (_, i) => i + 1);
  for (const kind of KINDS) assert.deepEqual(recorder.got[kind], expected, `${kind} stream`);
}

describe('cluster recovery: two instances, one Redis', () => {
  it(`a client cut twice reconnects to the other instance each time and ends with 1..${COUNT} on every stream kind`, async (t) => {
    const redis = await redisFor(t);
    if (!redis) return;
    const instances = await cluster(redis);
    const recorder = await connectClient(instances);
    try {
      // The sends alternate between the instances: the streams' order is Redis's, not a sender's.
      await stream(recorder, (seq) => instances[seq % 2]!, {
        300: () => cutTcp(recorder.sockets.at(-1)!),
        // After the first recovery: on a fast machine 700 can come while the socket connects.
        700: async () => {
          await eventually(() => recorder.resumes.length >= 1, WAIT_MS, 'the first resume');
          cutTcp(recorder.sockets.at(-1)!);
        },
      });
      assertExactlyAll(recorder);
      assert.ok(recorder.sockets.length >= 3, `reconnected twice (${recorder.sockets.length})`);
      assert.ok(recorder.resumes.length >= 2, `resumed ${recorder.resumes.length} times`);
      assert.ok(
        recorder.resumes.every((result) => result.recovered),
        JSON.stringify(recorder.resumes),
      );
      const replayed = recorder.resumes
        .flatMap((r) => r.streams)
        .reduce((n, s) => n + s.replayed, 0);
      assert.ok(replayed > 0, 'the cuts lost messages that the other instance replayed');
      assert.deepEqual(recorder.resyncs, []);
    } finally {
      recorder.sdk.close();
    }
  });

  it(`the instances' subscriptions killed twice mid-stream: the client ends with 1..${COUNT}, filled in from the history`, async (t) => {
    const redis = await redisFor(t);
    if (!redis) return;
    const instances = await cluster(redis);
    const recorder = await connectClient(instances);
    const killSubscribers = async () => {
      const reply = await redisCommand(redis.port, 'CLIENT KILL TYPE pubsub');
      assert.match(reply ?? '', /^:[1-9]/, `subscriptions killed: ${reply}`);
    };
    try {
      // Right after each kill, 40 numbers go out at once from one instance, into the gap.
      const inBurst = (seq: number) => (seq >= 300 && seq < 340) || (seq >= 700 && seq < 740);
      await stream(
        recorder,
        (seq) => (inBurst(seq) ? instances[1]! : instances[seq % 2]!),
        { 300: killSubscribers, 700: killSubscribers },
        inBurst,
      );
      assertExactlyAll(recorder);
      assert.equal(recorder.sockets.length, 1, 'the client itself never reconnected');
      assert.deepEqual(recorder.resyncs, []);
      const filled = instances[0]!.app.get(StreamCatchUp).filled;
      t.diagnostic(`${filled} messages filled in from the history by the client's instance`);
      assert.ok(filled > 0, 'messages sent while the subscription was down came from the history');
    } finally {
      recorder.sdk.close();
    }
  });

  it(`Redis restarted mid-stream (with its data kept): the client ends with 1..${COUNT}, no resync`, async (t) => {
    const redis = await redisFor(t, true);
    if (!redis) return;
    const instances = await cluster(redis);
    const recorder = await connectClient(instances);
    try {
      // One sender: while Redis is down its sends reach the other instance only when it is back,
      // so sends of two instances made during the outage could not keep one order.
      await stream(recorder, () => instances[1]!, restartAt(redis, 400));
      assertExactlyAll(recorder);
      assert.equal(recorder.sockets.length, 1, 'the client itself never reconnected');
      assert.deepEqual(recorder.resyncs, []);
    } finally {
      recorder.sdk.close();
    }
  });

  it('Redis restarted with its data lost: the client is told to resync every stream, and nothing arrives twice or out of order', async (t) => {
    const redis = await redisFor(t);
    if (!redis) return;
    const instances = await cluster(redis);
    const recorder = await connectClient(instances);
    try {
      await stream(recorder, () => instances[1]!, restartAt(redis, 400));
      await eventually(() => recorder.resyncs.length > 0, WAIT_MS, 'a resync');
      const told = recorder.resyncs.flatMap((info) => info.streams);
      assert.ok(
        told.every((s) => !s.recovered && s.reason === 'epoch_changed'),
        JSON.stringify(told),
      );
      assert.deepEqual(
        new Set(told.map((s) => s.stream)),
        new Set(['all', `user:${USER}`, 'event:numbers', `room:${ROOM}`]),
      );
      for (const kind of KINDS) {
        const got = recorder.got[kind];
        for (let i = 1; i < got.length; i++) {
          assert.ok(got[i]! > got[i - 1]!, `${kind}: ${got[i]} after ${got[i - 1]}`);
        }
      }
    } finally {
      recorder.sdk.close();
    }
  });
});

describe('cluster recovery: a resume on an instance that cannot reach Redis', () => {
  let setup: ProxiedCluster | undefined;
  before(async () => {
    setup = await startProxiedCluster(2, 0);
  });
  after(() => setup?.close());

  it('is answered: each stream history_unavailable, then recovered on a later resume', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup!.cluster.instances as [ClusterInstance, ClusterInstance];
    const first = await TestClient.open(b.wsUrl, b.token('zed'));
    await a.service.sendToUser('zed', 'note', { n: 1 });
    const { stream, offset, epoch } = await first.next('note');
    first.close();
    const resume = { type: 'resume', data: { positions: [{ stream, offset, epoch }] } };

    await setup!.cutOff();
    const cut = await TestClient.open(a.wsUrl, a.token('zed'));
    const refused = await cut.request(resume);
    assert.equal(refused.type, 'resume.result');
    assert.deepEqual(refused.data, {
      recovered: false,
      streams: [{ stream, recovered: false, replayed: 0, reason: 'history_unavailable' }],
    });
    cut.close();

    await setup!.restore();
    const back = await TestClient.open(a.wsUrl, a.token('zed'));
    // The history's connection comes back on its own schedule, maybe after the bus's.
    let answered: Awaited<ReturnType<TestClient['request']>> | undefined;
    await eventually(
      async () => {
        answered = await back.request(resume);
        return answered.data.recovered === true;
      },
      10_000,
      'a resume recovered once Redis is back',
    );
    assert.equal(answered!.type, 'resume.result');
    back.close();
  });
});

describe('cluster recovery: a gap while Redis refuses the history to one instance', () => {
  const GAPPER = 'gapper';
  /** The retries before a gap is given up take about 16 s. */
  const GIVE_UP_WAIT_MS = 30_000;
  let setup: ProxiedCluster | undefined;
  before(async () => {
    // A short request timeout: B waits for A's count of each send made into a gap.
    setup = await startProxiedCluster(
      2,
      0,
      { redis: { requestTimeoutMs: 1000 } },
      { proxied: 'subscriber', user: GAPPER },
    );
  });
  after(() => setup?.close());

  const refuseReads = async (refused: boolean) => {
    const rule = refused ? '-xrange' : '+@all';
    const reply = await redisCommand(setup!.redis.port, `ACL SETUSER ${GAPPER} ${rule}`);
    assert.match(reply ?? '', /^\+OK/, `ACL SETUSER ${rule}: ${reply}`);
  };

  /** A's subscription is cut while B sends `missed` to `user`, then comes back. */
  const gapAtA = async (user: string, missed: number) => {
    const b = setup!.cluster.instances[1]!;
    await setup!.cutOff();
    assert.equal(await b.service.sendToUser(user, 'note', { n: missed }), 0, 'nobody got it');
    await setup!.restore();
  };

  const notes = (client: TestClient) => client.ofType('note').map((m) => m.data.n as number);

  it('is given up after its retries: what came since is delivered, then stream.resync history_unavailable, and the missed message never', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup!.cluster.instances as [ClusterInstance, ClusterInstance];
    const client = await TestClient.open(a.wsUrl, a.token('zed'));
    try {
      await b.service.sendToUser('zed', 'note', { n: 1 });
      await client.next('note');
      await refuseReads(true);
      await gapAtA('zed', 2);
      // Held at A while its recovery is refused; before the fix, held for as long as Redis refused.
      await b.service.sendToUser('zed', 'note', { n: 3 });
      const resync = await client.next('stream.resync', GIVE_UP_WAIT_MS);
      assert.deepEqual(notes(client), [1, 3], 'the held message came before the resync');
      const told = resync.data.streams as Array<Record<string, unknown>>;
      assert.deepEqual(told.map((s) => s.stream).sort(), ['all', 'user:zed']);
      for (const stream of told) {
        assert.equal(stream.recovered, false);
        assert.equal(stream.reason, 'history_unavailable');
      }
      // Live again while the reads are still refused; and after.
      await b.service.sendToUser('zed', 'note', { n: 4 });
      await refuseReads(false);
      await b.service.sendToUser('zed', 'note', { n: 5 });
      await eventually(() => notes(client).length === 4, 5000, 'the later messages');
      await client.request({ type: 'ping' });
      assert.deepEqual(notes(client), [1, 3, 4, 5]);
      assert.equal(client.ofType('stream.resync').length, 1);
    } finally {
      await refuseReads(false);
      client.close();
    }
  });

  it('given up with nothing since: the next gap is not filled with both gaps’ messages, it is told lost', async (t) => {
    if (!requireRedis(t, setup?.redis)) return;
    const [a, b] = setup!.cluster.instances as [ClusterInstance, ClusterInstance];
    const client = await TestClient.open(a.wsUrl, a.token('zoe'));
    try {
      await b.service.sendToUser('zoe', 'note', { n: 1 });
      await client.next('note');
      await refuseReads(true);
      await gapAtA('zoe', 2);
      await client.next('stream.resync', GIVE_UP_WAIT_MS);
      await refuseReads(false);
      // The history now holds 2 (told lost) and 3 (the new gap), both after A's last message.
      await gapAtA('zoe', 3);
      const again = await client.next('stream.resync', GIVE_UP_WAIT_MS);
      const told = again.data.streams as Array<Record<string, unknown>>;
      assert.deepEqual(told.map((s) => s.stream).sort(), ['all', 'user:zoe']);
      assert.ok(
        told.every((s) => s.reason === 'history_unavailable'),
        JSON.stringify(told),
      );
      // Positioned again: a third gap is filled from the history as usual.
      await b.service.sendToUser('zoe', 'note', { n: 4 });
      await client.next('note');
      await gapAtA('zoe', 5);
      await eventually(() => notes(client).length === 3, 10_000, 'the third gap filled');
      await client.request({ type: 'ping' });
      assert.deepEqual(notes(client), [1, 4, 5]);
      assert.equal(client.ofType('stream.resync').length, 2);
    } finally {
      await refuseReads(false);
      client.close();
    }
  });
});
