import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

/** Bound on a start (spawn until PING answers). */
const START_TIMEOUT_MS = 10_000;
/** Bound on a stop before SIGKILL, and on the exit after SIGKILL. */
const STOP_TIMEOUT_MS = 5_000;

/** A redis-server process of this test run, on 127.0.0.1. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** Stops it (SIGTERM, SIGKILL after a bound); resolves once the process has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once it answers PING. */
  start(): Promise<void>;
  /** SIGKILL; resolves once the process has exited. */
  kill(): Promise<void>;
}

/** Every redis-server this process started and has not seen exit: killed at exit, whatever happens. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** The absolute path of an executable `name` on PATH, or undefined. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** True when something on 127.0.0.1:`port` answers `PING` with `+PONG` within `timeoutMs`. */
export function pingRedis(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = createConnection({ host: '127.0.0.1', port });
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}

/** Resolves when `child` has exited, or false after `ms`. */
function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Starts a private redis-server (no persistence, 127.0.0.1 only, a free port) and waits until it
 * answers PING. Without the binary: throws when REQUIRE_REDIS=1 (CI), else resolves undefined and
 * the caller skips with {@link requireRedis}.
 */
export async function startRedisServer(): Promise<RedisServer | undefined> {
  const binary = findOnPath('redis-server');
  if (!binary) {
    if (process.env.REQUIRE_REDIS === '1') {
      throw new Error(
        'redis-server not found on PATH and REQUIRE_REDIS=1: the Redis bus cannot be tested. ' +
          'Install it, e.g. apt-get install redis-server.',
      );
    }
    return undefined;
  }

  let child: ChildProcess | undefined;
  let output = '';

  const spawnOn = async (port: number): Promise<void> => {
    output = '';
    const proc = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    proc.once('error', (error) => keep(Buffer.from(String(error))));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) break;
      if (await pingRedis(port, 500)) return;
      await sleep(25);
    }
    proc.kill('SIGKILL');
    await exited(proc, STOP_TIMEOUT_MS);
    throw new Error(
      `redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms ` +
        `(exit ${proc.exitCode ?? proc.signalCode ?? 'none'}): ${output.trim()}`,
    );
  };

  const terminate = async (signal: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    if (await exited(proc, STOP_TIMEOUT_MS)) return;
    proc.kill('SIGKILL');
    assert.ok(await exited(proc, STOP_TIMEOUT_MS), 'redis-server did not exit after SIGKILL');
  };

  // The port was free a moment ago; another process may take it first, so try a few.
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await spawnOn(port);
      break;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }

  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return running();
    },
    stop: () => terminate('SIGTERM'),
    kill: () => terminate('SIGKILL'),
    start: async () => {
      if (!running()) await spawnOn(port);
    },
  };
}

/**
 * True when `server` is there. Otherwise skips the test, loudly (the bus was NOT tested); only
 * reached without REQUIRE_REDIS=1, since {@link startRedisServer} throws then.
 */
export function requireRedis(
  t: TestContext,
  server: RedisServer | undefined,
): server is RedisServer {
  if (server) return true;
  const reason = 'redis-server not installed: the Redis bus was NOT tested';
  console.warn(`\n${'!'.repeat(78)}\n!!! SKIPPED: ${reason}.\n${'!'.repeat(78)}\n`);
  t.skip(`${reason} (install redis-server, or set REQUIRE_REDIS=1 to make this an error)`);
  return false;
}
