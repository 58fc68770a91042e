/**
 * Child processes of a benchmark: spawned pinned to core 1 (the load stays on core 0), their CPU
 * time read from /proc, every wait bounded, and all of them killed on exit, SIGINT and timeout.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

// The tests' helper: a port that was free on 127.0.0.1 a moment ago.
export { freePort } from '../../test/support/free-port.js';

export const STEP_TIMEOUT_MS = 15_000; // bound on any one wait: a start, a connect, a request, a drain

const children = new Set<ChildProcess>();
export const CORES = availableParallelism(); // read before this process pins itself to one core
export const pinned = CORES >= 2 && onPath('taskset');
const CLK_TCK = Number(run('getconf', ['CLK_TCK'])) || 100;

/** Output of a command, or '' when it fails. */
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

/** Pins this process (the load) to core 0 when pinning is on. */
export function pinLoadToCore0(): void {
  if (pinned) execFileSync('taskset', ['-a', '-cp', '0', String(process.pid)], { stdio: 'ignore' });
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

/**
 * Kills every child on exit, SIGINT and after `timeoutMs`, then runs `main` and exits with its
 * outcome: 0, or 1 when it resolves false or fails (with the error's message).
 */
export function runGuarded(main: () => Promise<boolean | void>, timeoutMs: number): void {
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

/**
 * CPU time of a child in ms at nanosecond resolution: the sum over its threads of
 * /proc/<pid>/task/<tid>/schedstat (time on a CPU), for windows too short for {@link cpuMs}'s
 * 10 ms ticks. Falls back to cpuMs where the kernel has no schedstat.
 */
export function cpuMsPrecise(child: ChildProcess): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${child.pid}/task`)) {
      ns += Number(readFileSync(`/proc/${child.pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    }
    if (Number.isFinite(ns)) return ns / 1e6;
  } catch {
    // a thread that ended between the listing and its read, or no schedstat: the coarse count
  }
  return cpuMs(child);
}

/** Throws unless `ulimit -n` allows `needed` descriptors, saying what needs them. */
export function requireOpenFiles(needed: number, what: string): void {
  const limit = Number(run('sh', ['-c', 'ulimit -n']));
  if (Number.isFinite(limit) && limit < needed) {
    throw new Error(
      `ulimit -n is ${limit}; ${what} need ${needed}: run "ulimit -n ${needed}" first`,
    );
  }
}

/** Polls `check` every `everyMs` until it holds, at most `ms`; throws with `what` otherwise. */
export async function until(
  what: () => string,
  check: () => Promise<boolean> | boolean,
  ms = STEP_TIMEOUT_MS,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${ms} ms: ${what()}`);
}
