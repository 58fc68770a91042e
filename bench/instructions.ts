/**
 * Instructions per connection (W4) and per ping (W3) of each target, counted by valgrind's
 * callgrind: a measure that the rest of a shared machine cannot move, next to compare.ts's CPU
 * time, which it can. Each target runs under callgrind with counting on only for the window.
 *
 *   npm run bench:instructions [-- --clients 1000] [--pings 50] [--targets raw-ws,module] [--runs N]
 *
 * It counts user-space instructions of the server process only (kernel time, cache misses and
 * the load are not in it), including V8's optimizing compiler, which runs on the counted thread.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  CALLGRIND_NODE_ARGS,
  CallgrindControl,
  callgrindAvailable,
  callgrindEnv,
  callgrindLauncher,
} from './lib/callgrind.js';
import { listOption, option } from './lib/cli.js';
import { jwt } from './lib/jwt.js';
import { requireOpenFiles, runGuarded } from './lib/processes.js';
import { writeResults } from './lib/results.js';
import { median, round } from './lib/stats.js';
import { windowed } from './lib/windowed.js';
import { connectAll, type LoadClient } from './load/clients.js';
import { startTarget, TARGET_NAMES, type TargetName, targetNames } from './load/targets.js';
import { environment } from './report/environment.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)); // build/bench/ -> repo root
const CLIENTS = option('--clients', 1000);
const PINGS_PER_CLIENT = option('--pings', 50);
const PING_CLIENTS = 100;
const WARM_UP_ROUNDS = 2;
const CONNECT_WINDOW = 200;
const START_TIMEOUT_MS = 120_000; // node boots several times slower under callgrind
const RUNS = option('--runs', 1);
const TIMEOUT_MS = option('--timeout-s', 900 * RUNS) * 1000;

interface Counts {
  target: TargetName;
  /** The first C connections of a fresh process, as compare.ts's W4. */
  per_connection: number;
  /** The first pings of a fresh process, right after the connections (compare.ts's W3). */
  per_ping_first: number;
  /** Pings after WARM_UP_ROUNDS more rounds of them. */
  per_ping_warm: number;
}

async function measure(name: TargetName, workDir: string): Promise<Counts> {
  const outFile = `${workDir}/${name}.callgrind`;
  const target = await startTarget(name, CLIENTS, {
    prefix: callgrindLauncher(outFile),
    nodeArgs: CALLGRIND_NODE_ARGS,
    env: callgrindEnv(),
    startTimeoutMs: START_TIMEOUT_MS,
  });
  const control = new CallgrindControl(target.process.child.pid!, outFile);
  let sockets: LoadClient[] = [];
  try {
    const identities = Array.from({ length: CLIENTS }, (_, index) => ({
      index,
      user: `bench-user-${index}`,
      token: jwt({ sub: `bench-user-${index}` }),
    }));
    const connecting = await control.count(async () => {
      sockets = await connectAll(target.connect, target.port, identities, CONNECT_WINDOW, () => {});
    });
    const pingers = sockets.slice(0, PING_CLIENTS);
    const pingRound = (count: number) => () =>
      windowed(pingers.length, pingers.length, async (i) => {
        for (let n = 0; n < count; n++) await pingers[i]!.ping();
      });
    const pings = pingers.length * PINGS_PER_CLIENT;
    const firstPings = await control.count(pingRound(PINGS_PER_CLIENT));
    // Not counted: by then V8 has optimized the ping path, as it has in a long-running server.
    await pingRound(WARM_UP_ROUNDS * PINGS_PER_CLIENT)();
    const warmPings = await control.count(pingRound(PINGS_PER_CLIENT));
    return {
      target: name,
      per_connection: Math.round(connecting / CLIENTS),
      per_ping_first: Math.round(firstPings / pings),
      per_ping_warm: Math.round(warmPings / pings),
    };
  } finally {
    for (const socket of sockets) socket.close();
    await target.stop();
    control.cleanUp();
  }
}

/** Per count, the median over the runs of one target. */
function medianOf(target: TargetName, passes: Counts[]): Counts {
  const of = (key: Exclude<keyof Counts, 'target'>) =>
    Math.round(median(passes.map((pass) => pass[key])));
  return {
    target,
    per_connection: of('per_connection'),
    per_ping_first: of('per_ping_first'),
    per_ping_warm: of('per_ping_warm'),
  };
}

function table(rows: Counts[]): string {
  const base = rows.find((row) => row.target === 'raw-ws');
  const cell = (row: Counts, key: Exclude<keyof Counts, 'target'>) =>
    `${row[key].toLocaleString('en-US')}${base ? ` (×${round(row[key] / base[key], 2)})` : ''}`;
  return [
    '| target | instructions/connection | instructions/ping (first) | instructions/ping (warm) |',
    '| --- | --: | --: | --: |',
    ...rows.map(
      (row) =>
        `| ${row.target} | ${cell(row, 'per_connection')} | ${cell(row, 'per_ping_first')} | ` +
        `${cell(row, 'per_ping_warm')} |`,
    ),
  ].join('\n');
}

async function main(): Promise<void> {
  if (!callgrindAvailable()) {
    throw new Error('valgrind (callgrind) is not installed: apt-get install valgrind');
  }
  requireOpenFiles(CLIENTS + 500, `${CLIENTS} clients`);
  const names = targetNames(listOption('--targets', [...TARGET_NAMES]));
  console.log(
    `instructions (callgrind): targets ${names.join(', ')}; C = ${CLIENTS}; ` +
      `${PING_CLIENTS} clients x ${PINGS_PER_CLIENT} pings; ${RUNS} run(s)`,
  );
  const workDir = mkdtempSync(`${tmpdir()}/bench-callgrind-`);
  const passes: Counts[] = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      for (const name of names) {
        const started = Date.now();
        const counts = await measure(name, workDir);
        passes.push(counts);
        console.log(
          `run ${run} ${name}: ${counts.per_connection} per connection, ` +
            `${counts.per_ping_first} per ping (first), ${counts.per_ping_warm} per ping (warm), ` +
            `${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      }
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  const rows = names.map((name) =>
    medianOf(
      name,
      passes.filter((p) => p.target === name),
    ),
  );
  const env = environment(ROOT);
  console.log(`\n${table(rows)}\n`);
  const options = {
    clients: CLIENTS,
    pings_per_client: PINGS_PER_CLIENT,
    ping_clients: PING_CLIENTS,
    runs: RUNS,
  };
  const file = writeResults('instructions', env.date, { environment: env, options, rows, passes });
  console.log(`written ${file}`);
}

runGuarded(main, TIMEOUT_MS);
