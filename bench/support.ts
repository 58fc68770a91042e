/**
 * What the benchmarks share: child processes pinned to core 1 (the load on core 0), /proc CPU
 * sampling, bounded waits, the demo server, HS256 tokens and the admin API; every child is
 * killed at exit, on SIGINT and on the global timeout.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/redis-server.js';

export { freePort }; // a TCP port free on 127.0.0.1 a moment ago

export const ROOT = fileURLToPath(new URL('../../', import.meta.url)); // build/bench/ -> repo root
export const DEMO = `${ROOT}dist/demo/main.js`;
export const SECRET = 'bench-secret-not-for-production';
export const STEP_TIMEOUT_MS = 15_000; // bound on any one wait: a start, a connect, a request

// ------------------------------------------------------------------ options

/** `--name N` from argv: a positive integer, or `fallback` when absent. */
export function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} needs a positive integer`);
  return value;
}

// ------------------------------------------------------------------ processes

const children = new Set<ChildProcess>();
export const CORES = availableParallelism(); // before this process pins itself to one core
export const pinned = CORES >= 2 && onPath('taskset');
const CLK_TCK = Number(run('getconf', ['CLK_TCK'])) || 100;

export function run(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}

export function onPath(binary: string): boolean {
  return run('sh', ['-c', `command -v ${binary}`]) !== '';
}

export interface Child {
  child: ChildProcess;
  output: () => string;
}

/** Spawns `command` pinned to core 1 when pinning is on; keeps the last 4 KB of its output. */
export function startChild(command: string[], env: NodeJS.ProcessEnv): Child {
  // taskset execs the command, so the pid is the server's own, as /proc/<pid>/stat needs.
  const argv = pinned ? ['taskset', '-c', '1', ...command] : command;
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let tail = '';
  const keep = (chunk: Buffer) => void (tail = (tail + chunk.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => tail };
}

export function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL after 5 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (!running(child)) return;
  const exited = new Promise((resolve) => child.once('exit', () => resolve(true)));
  child.kill('SIGTERM');
  if (await Promise.race([exited, sleep(5000, false)])) return;
  child.kill('SIGKILL');
  await Promise.race([exited, sleep(2000)]);
}

function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
}

/** Pins this process (the load) to core 0 when pinning is on. */
export function pinLoad(): void {
  if (pinned) execFileSync('taskset', ['-a', '-cp', '0', String(process.pid)], { stdio: 'ignore' });
}

/**
 * Runs `main` and exits: 0 when it resolves true, 1 when false or on error, 2 after `timeoutMs`,
 * 130 on SIGINT; the children are killed in every case.
 */
export function runMain(main: () => Promise<boolean | void>, timeoutMs: number): void {
  process.once('exit', killAll);
  process.once('SIGINT', () => {
    console.error('interrupted: killing the servers');
    killAll();
    process.exit(130);
  });
  setTimeout(() => {
    console.error(`global timeout (${timeoutMs / 1000} s): killing the servers`);
    killAll();
    process.exit(2);
  }, timeoutMs); // not unref(): it must fire even if a wait hangs with nothing else pending
  main().then(
    (ok) => process.exit(ok === false ? 1 : 0),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      killAll();
      process.exit(1);
    },
  );
}

/** CPU time all cores spent busy so far (user, system, irq, steal...; not idle or iowait), in ms. */
export function machineBusyMs(): number {
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9);
  const [user, nice, system, , , irq, softirq, steal] = ticks.map(Number) as number[];
  return ((user! + nice! + system! + irq! + softirq! + steal!) * 1000) / CLK_TCK;
}

/** utime + stime of a process so far, in ms. */
export function cpuMs(child: ChildProcess): number {
  const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** Polls `check` every `everyMs` until it holds, at most `ms`; throws with `what` otherwise. */
export async function until(
  what: () => string,
  check: () => Promise<boolean> | boolean,
  ms = STEP_TIMEOUT_MS,
  everyMs = 100,
) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${ms} ms: ${what()}`);
}

// ------------------------------------------------------------------ the demo server and its API

export interface Server extends Child {
  port: number;
}

/** Starts `node [nodeArgs] dist/demo/main.js` on a free port with `env` added; waits until it serves. */
export async function startServer(
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
): Promise<Server> {
  if (!existsSync(DEMO)) throw new Error(`${DEMO} is missing: run npm run build first`);
  const port = await freePort();
  const full: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    JWT_SECRET: SECRET,
    LOG_FORMAT: 'json',
    ...env,
  };
  if (!env.REDIS_URL) delete full.REDIS_URL;
  const server = { ...startChild(['node', ...nodeArgs, DEMO], full), port };
  await until(
    () => `demo on port ${port} serving; output: ${server.output()}`,
    async () => {
      if (!running(server.child))
        throw new Error(`demo on port ${port} exited: ${server.output()}`);
      const page = fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
      return page.then((response) => response.ok).catch(() => false);
    },
  );
  return server;
}

/** An HS256 token signed with SECRET, valid for `ttlS` seconds. */
export function jwt(claims: Record<string, unknown>, ttlS = 3600): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ ...claims, exp: Math.floor(Date.now() / 1000) + ttlS })}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

/** One admin API call; the `data` of a 2xx answer, else throws with the status and body. */
export async function api(port: number, path: string, admin: string, body?: object): Promise<any> {
  const response = await fetch(`http://127.0.0.1:${port}/ws/${path}`, {
    method: body ? 'POST' : 'GET',
    headers: {
      authorization: `Bearer ${jwt({ sub: admin, role: 'admin' })}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text).data;
}

// ------------------------------------------------------------------ numbers

export function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}
