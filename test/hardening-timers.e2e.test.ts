import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ConnectionRegistry,
  RealtimeModule,
  type RealtimeModuleOptions,
} from '../src/realtime/index.js';
import { TokenExpirySchedule } from '../src/realtime/registry/token-expiry-schedule.js';
import { b64url, hs256Token, nowSeconds } from './support/jwt-craft.js';
import { clientPool } from './support/client-pool.js';
import { startTestApp, TEST_SECRET, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import { assertPingWorks, sleep } from './support/wire.js';

const CONNECTION_TIMEOUT = { code: 4000, reason: 'Connection timeout' };
const TOKEN_EXPIRED = { code: 4001, reason: 'Token expired' };
/** Set in the environment of the child process that serves with a movable wall clock. */
const CHILD_ENV = 'HARDENING_TIMERS_CLOCK_CHILD';

/** HS256 over a payload given as JSON text: `1e309` there parses to Infinity. */
function hs256RawPayload(payloadJson: string): string {
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(payloadJson)}`;
  return `${input}.${createHmac('sha256', TEST_SECRET).update(input).digest('base64url')}`;
}

/** A token for `sub` that expires in five hours of the real clock (the child's may be moved). */
function longToken(sub: string): string {
  return hs256Token({ sub, exp: nowSeconds() + 5 * 3600 }, TEST_SECRET);
}

/** Asserts that the schedule and the registry hold nothing any more (bounded wait). */
async function assertNothingKept(server: TestApp): Promise<void> {
  const registry = server.app.get(ConnectionRegistry);
  const schedule = server.app.get(TokenExpirySchedule);
  await eventually(
    () => registry.size === 0 && schedule.size === 0 && schedule.bucketCount === 0,
    // Thousands of closes on a loaded 2-core machine: a bound on a leak, not a speed.
    10_000,
    'registry and expiry schedule empty',
  );
}

/** The tests; not in the child process, which only serves. */
function defineTests(): void {
  describe('timers: token exp and nbf edge values', () => {
    let server: TestApp;
    const pool = clientPool();
    before(async () => {
      server = await startTestApp();
    });
    afterEach(() => pool.closeAll());
    after(() => server.close());

    it('keeps open tokens that expire in year 9999, at 1e15 s or at 1e309 (Infinity once parsed), and forgets them once closed', async () => {
      const tokens = [
        hs256Token({ sub: 'y9999', exp: 253_402_300_799 }, TEST_SECRET),
        hs256Token({ sub: 'e15', exp: 1e15 }, TEST_SECRET),
        hs256RawPayload('{"sub":"inf","exp":1e309}'),
      ];
      const clients = await Promise.all(tokens.map((token) => pool.open(server.wsUrl, token)));
      // Several expiry ticks (250 ms): a timer per exp past 2^31 ms would have fired at once.
      await sleep(700);
      for (const client of clients) {
        assert.equal(client.closeInfo, undefined);
        await assertPingWorks(client);
      }
      pool.closeAll();
      await assertNothingKept(server);
    });

    it('closes a token with a fractional exp at that millisecond (4001 "Token expired"), not earlier and not much later, and keeps nothing of it', async (t) => {
      const expiresAt = Date.now() + 1_200;
      const token = hs256Token({ sub: 'frac', exp: expiresAt / 1000 }, TEST_SECRET);
      const client = await pool.open(server.wsUrl, token);
      await assertPingWorks(client);
      assert.deepEqual(await client.waitClose(4000), TOKEN_EXPIRED);
      const lateness = Date.now() - expiresAt;
      t.diagnostic(`closed ${lateness} ms after exp`);
      // Same clock as the server's; the expiry tick is 250 ms, plus slack for a busy machine.
      assert.ok(lateness >= 0, `closed ${-lateness} ms before exp`);
      assert.ok(lateness <= 250 + 400, `closed ${lateness} ms after exp`);
      await assertNothingKept(server);
    });

    it('refuses at connect a token whose fractional exp passed less than a second ago', async () => {
      // Whole seconds alone (as jsonwebtoken compares) would accept it, then close it 4001.
      const exp = Math.floor(Date.now() / 1000) + 0.999;
      const wait = exp * 1000 + 20 - Date.now();
      if (wait > 0) await sleep(wait);
      const client = TestClient.connect(
        server.wsUrl,
        hs256Token({ sub: 'past-frac', exp }, TEST_SECRET),
      );
      try {
        assert.deepEqual(await client.waitClose(), TOKEN_EXPIRED);
        assert.deepEqual(client.received, []);
      } finally {
        client.close();
      }
    });

    it('refuses at connect a token whose exp is the current second', async () => {
      const client = TestClient.connect(
        server.wsUrl,
        hs256Token({ sub: 'now', exp: nowSeconds() }, TEST_SECRET),
      );
      try {
        assert.deepEqual(await client.waitClose(), TOKEN_EXPIRED);
        assert.deepEqual(client.received, []);
      } finally {
        client.close();
      }
    });

    it('refuses a token that is not valid yet (nbf in a minute) and accepts one whose nbf has passed', async () => {
      const early = TestClient.connect(
        server.wsUrl,
        hs256Token({ sub: 'nbf', nbf: nowSeconds() + 60, exp: nowSeconds() + 120 }, TEST_SECRET),
      );
      try {
        assert.deepEqual(await early.waitClose(), { code: 4001, reason: 'Unauthorized' });
      } finally {
        early.close();
      }
      const token = hs256Token({ sub: 'nbf', nbf: nowSeconds() - 1 }, TEST_SECRET);
      await assertPingWorks(await pool.open(server.wsUrl, token));
    });
  });

  describe('timers: what keeps a connection open (PROTOCOL.md: any frame from the client)', () => {
    const HEARTBEAT_MS = 100;
    const TIMEOUT_MS = 400;
    /** The liveness tick for these options: a tenth of the timeout. */
    const TICK_MS = 40;
    let server: TestApp;
    const pool = clientPool();
    before(async () => {
      server = await startTestApp({
        realtime: { heartbeatIntervalMs: HEARTBEAT_MS, connectionTimeoutMs: TIMEOUT_MS },
      });
    });
    afterEach(() => pool.closeAll());
    after(() => server.close());

    const only: [string, (client: TestClient) => void][] = [
      ['WebSocket ping frames', (client) => client.socket.ping()],
      ['unsolicited WebSocket pong frames', (client) => client.socket.pong()],
      ['messages of an unknown type', (client) => client.send({ type: 'no.such.type' })],
      ['binary frames', (client) => client.socket.send(Buffer.from([1, 2, 3]))],
    ];
    for (const [what, send] of only) {
      it(`keeps open, past four timeouts, a client that answers no ping and sends only ${what}`, async () => {
        const client = await pool.open(server.wsUrl, server.token(what), { autoPong: false });
        for (let i = 0; i < 16; i++) {
          send(client);
          await sleep(HEARTBEAT_MS);
          assert.equal(client.closeInfo, undefined, `open after ${i + 1} sends`);
        }
        await assertPingWorks(client);
      });
    }

    it('closes with 4000 a client that answers nothing, a timeout after the connect plus at most a tick', async (t) => {
      const client = await pool.open(server.wsUrl, server.token('mute'), { autoPong: false });
      const opened = performance.now();
      assert.deepEqual(await client.waitClose(3000), CONNECTION_TIMEOUT);
      const after = performance.now() - opened;
      t.diagnostic(`closed ${after.toFixed(0)} ms after the client saw it open`);
      // The client saw the open a little after the server admitted it.
      assert.ok(after >= TIMEOUT_MS - 50, `closed after ${after.toFixed(0)} ms`);
      assert.ok(after <= TIMEOUT_MS + TICK_MS + 400, `closed after ${after.toFixed(0)} ms`);
    });
  });

  describe('timers: a connection timeout just above the heartbeat interval', () => {
    // Accepted: the timeout is longer than the interval. The liveness tick is 110 ms.
    const HEARTBEAT_MS = 1_000;
    const TIMEOUT_MS = 1_100;
    let server: TestApp;
    const pool = clientPool();
    before(async () => {
      server = await startTestApp({
        realtime: { heartbeatIntervalMs: HEARTBEAT_MS, connectionTimeoutMs: TIMEOUT_MS },
      });
    });
    afterEach(() => pool.closeAll());
    after(() => server.close());

    it('keeps open, for three timeouts, clients that answer every ping and send nothing else', async () => {
      // Several, so that the first pings fall in different phases of the interval.
      const clients = await Promise.all(
        Array.from({ length: 6 }, (_, i) => pool.open(server.wsUrl, server.token(`pong-${i}`))),
      );
      const pings = clients.map(() => 0);
      clients.forEach((client, i) => client.socket.on('ping', () => pings[i]!++));
      await sleep(TIMEOUT_MS * 3);
      assert.deepEqual(
        clients.map((client) => client.closeInfo),
        clients.map(() => undefined),
      );
      assert.ok(
        pings.every((count) => count >= 2),
        `pings per client: ${pings.join(',')}`,
      );
    });

    it('still closes with 4000 a client that answers nothing', async () => {
      const client = await pool.open(server.wsUrl, server.token('mute'), { autoPong: false });
      assert.deepEqual(await client.waitClose(TIMEOUT_MS + 1_500), CONNECTION_TIMEOUT);
    });
  });

  describe('timers: the largest heartbeat interval and timeout accepted (2^31 - 1 ms)', () => {
    let server: TestApp;
    const pool = clientPool();
    const overflows: string[] = [];
    const onWarning = (warning: Error): void => {
      if (warning.name === 'TimeoutOverflowWarning') overflows.push(warning.message);
    };
    before(async () => {
      process.on('warning', onWarning);
      server = await startTestApp({
        realtime: {
          heartbeatIntervalMs: 2 ** 31 - 2,
          connectionTimeoutMs: 2 ** 31 - 1,
        },
      });
    });
    afterEach(() => pool.closeAll());
    after(async () => {
      process.off('warning', onWarning);
      await server.close();
    });

    it('sets no timer past 2^31 - 1 ms (Node would fire it every millisecond) and keeps clients open', async () => {
      const client = await pool.open(server.wsUrl, server.token('forever'), { autoPong: false });
      const registry = server.app.get(ConnectionRegistry);
      // Each liveness sweep walks the registry once.
      let sweeps = 0;
      const all = registry.all.bind(registry);
      registry.all = () => {
        sweeps++;
        return all();
      };
      try {
        await sleep(500);
      } finally {
        registry.all = all;
      }
      assert.deepEqual(overflows, []);
      assert.ok(sweeps <= 1, `${sweeps} liveness sweeps in 500 ms`);
      assert.equal(client.closeInfo, undefined);
      assert.equal(client.received[0]!.data.limits.connection_timeout, (2 ** 31 - 1) / 1000);
      await assertPingWorks(client);
    });
  });

  describe('timers: heartbeat and timeout values refused at startup', () => {
    /** The error that stops the app from starting, or '' when it starts. */
    async function startupError(options: Partial<RealtimeModuleOptions>): Promise<string> {
      @Module({ imports: [RealtimeModule.forRoot({ jwt: { secret: TEST_SECRET }, ...options })] })
      class OptionsModule {}
      try {
        const app = await NestFactory.create(OptionsModule, { logger: false, abortOnError: false });
        await app.close();
        return '';
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    }

    for (const [what, options, expected] of [
      [
        'a connection timeout past what Node timers can wait (2^31 ms)',
        { connectionTimeoutMs: 2 ** 31 },
        /connectionTimeoutMs must be at most 2147483647 ms/,
      ],
      [
        'a close grace past what Node timers can wait (2^31 ms)',
        { closeGraceMs: 2 ** 31 },
        /closeGraceMs must be at most 2147483647 ms/,
      ],
      [
        'a history age past what Node timers can wait (2^32 ms)',
        { history: { maxAgeMs: 2 ** 32 } },
        /history.maxAgeMs must be at most 2147483647 ms/,
      ],
      [
        'a heartbeat interval of 0',
        { heartbeatIntervalMs: 0 },
        /heartbeatIntervalMs must be a positive integer, got 0/,
      ],
      [
        'a negative heartbeat interval',
        { heartbeatIntervalMs: -1 },
        /heartbeatIntervalMs must be a positive integer/,
      ],
      [
        'a fractional heartbeat interval',
        { heartbeatIntervalMs: 1.5 },
        /heartbeatIntervalMs must be a positive integer/,
      ],
      [
        'a connection timeout of 0',
        { connectionTimeoutMs: 0 },
        /connectionTimeoutMs must be a positive integer/,
      ],
      [
        'an infinite connection timeout',
        { connectionTimeoutMs: Number.POSITIVE_INFINITY },
        /connectionTimeoutMs must be a positive integer/,
      ],
      [
        'a timeout equal to the interval',
        { heartbeatIntervalMs: 500, connectionTimeoutMs: 500 },
        /connectionTimeoutMs must be longer than heartbeatIntervalMs/,
      ],
    ] as const) {
      it(`refuses ${what}, naming the option`, async () => {
        assert.match(await startupError(options), expected);
      });
    }
  });

  describe('timers: cost per connection', () => {
    let server: TestApp;
    before(async () => {
      server = await startTestApp({
        realtime: {
          heartbeatIntervalMs: 200,
          connectionTimeoutMs: 1_000,
          maxTotalConnections: 10_000,
          maxConnectionsPerUser: 1,
          maxEvictionsPerUserPerMinute: 0,
        },
      });
    });
    after(() => server.close());

    it('runs the same few timers with 2,000 idle connections as with one', async (t) => {
      const live = new Set<number>();
      const hook = createHook({
        init(id, type) {
          if (type === 'Timeout') live.add(id);
        },
        destroy(id) {
          live.delete(id);
        },
      }).enable();
      const clients: TestClient[] = [];
      try {
        clients.push(await TestClient.open(server.wsUrl, server.token('idle-first')));
        // Two liveness ticks (100 ms) with one connection.
        await sleep(250);
        const withOne = live.size;
        for (let batch = 0; batch < 20; batch++) {
          const opened = await Promise.all(
            Array.from({ length: 100 }, (_, i) =>
              TestClient.open(server.wsUrl, server.token(`idle-${batch}-${i}`)),
            ),
          );
          clients.push(...opened);
        }
        // A heartbeat interval and more: every connection was pinged (and answered).
        await sleep(450);
        const withMany = live.size;
        t.diagnostic(
          `timers made since and alive: ${withOne} with 1 connection, ${withMany} with ${clients.length}`,
        );
        assert.equal(clients.filter((client) => client.closeInfo).length, 0);
        assert.ok(withMany <= withOne + 2, `${withMany} live timers, ${withOne} with one`);
      } finally {
        hook.disable();
        for (const client of clients) client.close();
      }
      await assertNothingKept(server);
    });

    it('keeps nothing of 5,000 connections with distinct exp values, closed by the client or evicted by the server', async (t) => {
      const started = performance.now();
      const base = nowSeconds() + 3_600;
      let evicted = 0;
      // 100 batches of 25 users with two connections each: the second evicts the first (4008),
      // then the client ends the second.
      for (let batch = 0; batch < 100; batch++) {
        const users = Array.from({ length: 25 }, (_, i) => `cycle-${batch}-${i}`);
        const token = (user: string, n: number): string =>
          hs256Token({ sub: user, exp: base + batch * 50 + n }, TEST_SECRET);
        const first = await Promise.all(
          users.map((user, i) => TestClient.open(server.wsUrl, token(user, 2 * i))),
        );
        const second = await Promise.all(
          users.map((user, i) => TestClient.open(server.wsUrl, token(user, 2 * i + 1))),
        );
        const closes = await Promise.all(first.map((client) => client.waitClose()));
        evicted += closes.filter((info) => info.code === 4008).length;
        for (const client of second) client.close();
        await Promise.all(second.map((client) => client.waitClose()));
      }
      t.diagnostic(`5,000 connections in ${(performance.now() - started).toFixed(0)} ms`);
      assert.equal(evicted, 2_500);
      await assertNothingKept(server);
    });
  });

  describe('timers: wall clock steps (server in a child process whose Date.now() is moved)', () => {
    const TIMEOUT_MS = 500;
    const HOUR_MS = 3_600_000;
    let child: ChildProcess | undefined;
    let url = '';
    let lines: AsyncIterator<string>;
    const pool = clientPool();

    /** Moves the child's wall clock to `offsetMs` from the real one, and waits for its word. */
    async function moveClock(offsetMs: number): Promise<void> {
      child!.stdin!.write(`${offsetMs}\n`);
      const answer = await nextLine(lines, 5_000);
      assert.equal(answer, `moved ${offsetMs}`);
    }

    before(async () => {
      const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: String(TIMEOUT_MS) };
      delete env.NODE_TEST_CONTEXT;
      child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
        env,
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      process.once('exit', () => child?.kill('SIGKILL'));
      lines = lineReader(child);
      const ready = JSON.parse(await nextLine(lines, 15_000)) as { port: number };
      url = `ws://127.0.0.1:${ready.port}/ws`;
    });
    afterEach(() => pool.closeAll());
    after(() => {
      child?.stdin?.end();
      child?.kill('SIGKILL');
    });

    it('an hour forward closes none of the clients that answer pings, old or new, and times a silent one out only after the timeout', async () => {
      await moveClock(0);
      const before = await Promise.all(
        Array.from({ length: 5 }, (_, i) => pool.open(url, longToken(`fwd-${i}`))),
      );
      await moveClock(HOUR_MS);
      const fresh = await pool.open(url, longToken('fwd-fresh'));
      const silent = await pool.open(url, longToken('fwd-silent'), { autoPong: false });
      const opened = performance.now();
      assert.deepEqual(await silent.waitClose(TIMEOUT_MS * 4), CONNECTION_TIMEOUT);
      const silentFor = performance.now() - opened;
      assert.ok(
        silentFor >= TIMEOUT_MS - 100,
        `silent client closed after ${silentFor.toFixed(0)} ms`,
      );
      await sleep(TIMEOUT_MS * 2);
      for (const client of [...before, fresh]) {
        assert.equal(client.closeInfo, undefined);
        await assertPingWorks(client);
      }
    });

    it('an hour back does not keep a silent client open: it is closed after the timeout', async () => {
      await moveClock(0);
      const before = await pool.open(url, longToken('back-before'), { autoPong: false });
      await moveClock(-HOUR_MS);
      const after = await pool.open(url, longToken('back-after'), { autoPong: false });
      assert.deepEqual(await after.waitClose(TIMEOUT_MS * 4), CONNECTION_TIMEOUT);
      assert.deepEqual(await before.waitClose(TIMEOUT_MS * 4), CONNECTION_TIMEOUT);
    });

    it('a server stalled for three timeouts (SIGSTOP) closes none of the clients that answer pings once it runs again, and still times out a silent one', async () => {
      await moveClock(0);
      const live = await Promise.all(
        Array.from({ length: 5 }, (_, i) => pool.open(url, longToken(`stall-${i}`))),
      );
      const silent = await pool.open(url, longToken('stall-silent'), { autoPong: false });
      child!.kill('SIGSTOP');
      try {
        await sleep(TIMEOUT_MS * 3);
      } finally {
        child!.kill('SIGCONT');
      }
      assert.deepEqual(await silent.waitClose(TIMEOUT_MS * 4), CONNECTION_TIMEOUT);
      await sleep(TIMEOUT_MS);
      for (const client of live) {
        assert.equal(client.closeInfo, undefined);
        await assertPingWorks(client);
      }
    });
  });
}

/** Lines of the child's stdout, in order. */
function lineReader(child: ChildProcess): AsyncIterator<string> {
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      queue.push(buffered.slice(0, end));
      buffered = buffered.slice(end + 1);
    }
    wake?.();
  });
  return {
    async next() {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return { done: false, value: queue.shift()! };
    },
  };
}

async function nextLine(lines: AsyncIterator<string>, timeoutMs: number): Promise<string> {
  const timeout = sleep(timeoutMs).then(() => {
    throw new Error(`no line from the child within ${timeoutMs} ms`);
  });
  const line = await Promise.race([lines.next(), timeout]);
  return line.value;
}

/**
 * The child: an app whose Date.now() runs `offset` ms from the real clock, set by each line of
 * stdin. Only Date.now() moves, as when the system clock is stepped; the monotonic clock
 * (performance.now) does not. Ends with its parent's stdin, and after a minute at most.
 */
async function runClockChild(timeoutMs: number): Promise<void> {
  const realNow = Date.now.bind(Date);
  let offset = 0;
  Date.now = () => realNow() + offset;
  const app = await startTestApp({
    realtime: { heartbeatIntervalMs: 100, connectionTimeoutMs: timeoutMs },
  });
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    pending += chunk;
    for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
      offset = Number(pending.slice(0, end));
      pending = pending.slice(end + 1);
      process.stdout.write(`moved ${offset}\n`);
    }
  });
  process.stdin.on('close', () => process.exit(0));
  setTimeout(() => process.exit(1), 60_000).unref();
  process.stdout.write(`${JSON.stringify({ port: app.port })}\n`);
}

const childTimeout = process.env[CHILD_ENV];
if (childTimeout !== undefined) await runClockChild(Number(childTimeout));
else defineTests();
