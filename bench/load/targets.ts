/** The four targets: how to start each as a child process and which client speaks to it. */
import { fileURLToPath } from 'node:url';
import { BENCH_SECRET } from '../lib/jwt.js';
import {
  type Child,
  freePort,
  running,
  STEP_TIMEOUT_MS,
  startChild,
  stopChild,
  until,
} from '../lib/processes.js';
import { type Connect, connectSocketIo, connectWs } from './clients.js';

export const TARGET_NAMES = ['raw-ws', 'module', 'socketio', 'nest-plain'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** `names` as target names; throws, listing the known ones, if one is not. */
export function targetNames(names: readonly string[]): TargetName[] {
  const unknown = names.filter((name) => !TARGET_NAMES.includes(name as TargetName));
  if (unknown.length > 0)
    throw new Error(`unknown target(s) ${unknown.join(', ')}; known: ${TARGET_NAMES.join(', ')}`);
  return names as TargetName[];
}

const SCRIPTS = fileURLToPath(new URL('../targets/', import.meta.url)); // build/bench/targets/

export interface Target {
  name: TargetName;
  connect: Connect;
  port: number;
  process: Child;
  /** process.memoryUsage() of the target right after a full GC. */
  memory(): Promise<NodeJS.MemoryUsage>;
  stop(): Promise<void>;
}

/** The module's limits, out of the way of `clients` connections: this measures delivery. */
function moduleEnv(clients: number): NodeJS.ProcessEnv {
  return {
    LOG_FORMAT: 'json',
    // As in production: no debug line per connection (the other targets log nothing at all).
    LOG_LEVEL: 'log',
    REALTIME_MAX_TOTAL_CONNECTIONS: String(clients * 2 + 100),
    REALTIME_MAX_CONNECTIONS_PER_USER: '10',
    REALTIME_RATE_LIMIT_MESSAGES: '1000000',
    REALTIME_ADMIN_RATE_LIMIT: '100000000',
  };
}

/** How a target's node is launched: a command in front of it (a profiler), and its arguments. */
export interface Launch {
  prefix?: string[];
  nodeArgs?: string[];
  /** Added to the target's environment. */
  env?: NodeJS.ProcessEnv;
  /** Bound on the start, for a slowed-down target. */
  startTimeoutMs?: number;
}

export async function startTarget(
  name: TargetName,
  clients: number,
  launch: Launch = {},
): Promise<Target> {
  const port = await freePort();
  const probePort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    PROBE_PORT: String(probePort),
    HOST: '127.0.0.1',
    JWT_SECRET: BENCH_SECRET,
    ...(name === 'module' ? moduleEnv(clients) : {}),
    ...launch.env,
  };
  delete env.REDIS_URL; // the module's in-process bus: a single instance
  // e.g. BENCH_TARGET_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the targets.
  const extraArgs = (process.env.BENCH_TARGET_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = startChild(
    [
      ...(launch.prefix ?? []),
      'node',
      '--expose-gc',
      ...(launch.nodeArgs ?? []),
      ...extraArgs,
      `${SCRIPTS}${name}.js`,
    ],
    env,
  );
  const memory = async (): Promise<NodeJS.MemoryUsage> => {
    const response = await fetch(`http://127.0.0.1:${probePort}/memory`, {
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`${name} probe answered ${response.status}`);
    return (await response.json()) as NodeJS.MemoryUsage;
  };
  await until(
    () => `${name} on port ${port} serving; output: ${child.output()}`,
    async () => {
      if (!running(child.child)) throw new Error(`${name} exited: ${child.output()}`);
      return memory().then(
        () => true,
        () => false,
      );
    },
    launch.startTimeoutMs,
  );
  return {
    name,
    connect: name === 'socketio' ? connectSocketIo : connectWs,
    port,
    process: child,
    memory,
    stop: () => stopChild(child.child),
  };
}
