import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createConnection } from 'node:net';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.js';

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

/** Child processes (redis-server, apps) this process started and has not seen exit. */
const live = new Set<ChildProcess>();
const killAll = () => {
  for (const child of live) child.kill('SIGKILL');
};
process.once('exit', killAll);
// Ended by a signal (a cancelled run): kill them too, then end as the signal would have.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

/** Kills `child` (SIGKILL) if it still runs when this process ends, however it ends. */
export function killOnExit(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  live.add(child);
  child.once('exit', () => live.delete(child));
}

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

/**
 * Sends one inline command to 127.0.0.1:`port` and resolves to the raw reply once `complete`
 * says it is whole, or undefined on error or after `timeoutMs`.
 */
function rawCommand(
  port: number,
  command: string,
  complete: (reply: string) => boolean,
  timeoutMs: number,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    let reply = '';
    let done = false;
    const socket = createConnection({ host: '127.0.0.1', port });
    const finish = (value: string | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (complete(reply)) finish(reply);
    });
    socket.once('error', () => finish(undefined));
    socket.once('close', () => finish(complete(reply) ? reply : undefined));
  });
}

/** Sends one command to the redis-server on 127.0.0.1:`port`; its first reply line, if any. */
export async function redisCommand(port: number, command: string): Promise<string | undefined> {
  return rawCommand(port, command, (r) => r.includes('\r\n'), 2000);
}

/** True when something on 127.0.0.1:`port` answers `PING` with `+PONG` within `timeoutMs`. */
export async function pingRedis(port: number, timeoutMs = 500): Promise<boolean> {
  const reply = await rawCommand(port, 'PING', (r) => r.includes('\r\n'), timeoutMs);
  return reply?.startsWith('+PONG') ?? false;
}

/**
 * The process id of the redis-server answering on 127.0.0.1:`port` (from `INFO server`), or
 * undefined. Tells our server from another test run's that took the same port first.
 */
export async function redisPid(port: number, timeoutMs = 500): Promise<number | undefined> {
  const reply = await rawCommand(
    port,
    'INFO server',
    (r) => {
      const header = /^\$(\d+)\r\n/.exec(r);
      return header !== null && Buffer.byteLength(r) >= header[0].length + Number(header[1]) + 2;
    },
    timeoutMs,
  );
  const pid = reply && /^process_id:(\d+)\r?$/m.exec(reply);
  return pid ? Number(pid[1]) : undefined;
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
 * Starts a private redis-server (127.0.0.1 only, a free port; no persistence unless `persistDir`) and waits until it
 * answers PING. Without the binary: throws when REQUIRE_REDIS=1 (CI), else resolves undefined and
 * the caller skips with {@link requireRedis}.
 */
export async function startRedisServer(
  options: { persistDir?: string } = {},
): Promise<RedisServer | undefined> {
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
        // With a directory, every write goes to an append-only file first: a restart keeps it.
        ...(options.persistDir
          ? ['--dir', options.persistDir, '--appendonly', 'yes', '--appendfsync', 'always']
          : ['--appendonly', 'no']),
        '--daemonize',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    killOnExit(proc);
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    // Never what keeps a test process alive: if a test forgets stop(), the process still ends,
    // and the exit hook below kills the server.
    proc.unref();
    (proc.stdout as unknown as { unref?: () => void }).unref?.();
    (proc.stderr as unknown as { unref?: () => void }).unref?.();
    proc.once('error', (error) => keep(Buffer.from(String(error))));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) break;
      // Our process answering, not another run's redis-server that took the port first.
      if ((await pingRedis(port, 500)) && (await redisPid(port, 500)) === proc.pid) return;
      await sleep(25);
    }
    proc.kill('SIGKILL');
    await exited(proc, STOP_TIMEOUT_MS);
    throw new Error(
      `redis-server on port ${port} did not answer within ${START_TIMEOUT_MS} ms ` +
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
