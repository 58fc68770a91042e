/**
 * Side-by-side benchmark: this module against raw ws, Socket.IO and a plain NestJS gateway, on
 * identical load (see bench/README.md).
 *
 *   npm run bench [-- --quick] [--runs N] [--clients 1000,5000] [--targets a,b] [--timeout-s N]
 *
 * Each target is a fresh child process per pass, pinned to core 1; this process (the load) is
 * pinned to core 0. Everything is on 127.0.0.1, every wait is bounded, children die with us.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { listOption, option, quick } from './lib/cli.js';
import { pinLoadToCore0, requireOpenFiles, runGuarded } from './lib/processes.js';
import { PassDurations } from './lib/pass-durations.js';
import { writeResults } from './lib/results.js';
import {
  type Target,
  TARGET_NAMES,
  type TargetName,
  startTarget,
  targetNames,
} from './load/targets.js';
import { emptyPass, type Pass, runPass } from './load/workloads.js';
import { chart } from './report/chart.js';
import { environment } from './report/environment.js';
import { summarize } from './report/summary.js';
import { report } from './report/table.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)); // build/bench/ -> repo root
const RUNS = option('--runs', quick ? 1 : 3);
const TIMEOUT_MS = option('--timeout-s', quick ? 120 : 600) * 1000;
const REPORT_RESERVE_MS = 10_000; // the run stops starting passes this long before the timeout
const FD_HEADROOM = 500; // the trigger's sockets, probes, files of node itself

const SIZES = listOption('--clients', quick ? ['1000'] : ['1000', '5000']).map(Number);
const TARGET_ARGS = listOption('--targets', [...TARGET_NAMES]);

function checkArguments(): void {
  if (SIZES.some((c) => !Number.isInteger(c) || c <= 0))
    throw new Error('--clients takes positive integers, comma-separated');
  // One descriptor per client here and one per connection in the target, which inherits it;
  // the interleaved rounds hold a raw-ws companion's C clients too.
  requireOpenFiles(2 * Math.max(...SIZES) + FD_HEADROOM, `${Math.max(...SIZES)} clients`);
}

/** One pass on a fresh target; a target that does not start is a failed pass, not the end. */
async function measure(name: TargetName, clients: number, run: number): Promise<Pass> {
  let target: Target;
  try {
    target = await startTarget(name, clients);
  } catch (error) {
    const pass = emptyPass(name, clients, run);
    pass.error = `did not start: ${error instanceof Error ? error.message : String(error)}`;
    return pass;
  }
  try {
    return await runPass(target, clients, run);
  } finally {
    await target.stop();
  }
}

/**
 * One pass that is not recorded, so that no target pays for this process's own warm-up: the
 * load's client code is not optimized yet in its first pass, and whichever target came first
 * in a run measured a slower load (raw ws made 1,560 connections/s as the first pass of a run and
 * 2,793–3,456 later in the same run).
 */
async function warmUpLoad(target: TargetName): Promise<void> {
  const started = Date.now();
  const pass = await measure(target, Math.min(...SIZES), 0);
  console.log(
    `load warm-up on ${pass.target} (not recorded): ${((Date.now() - started) / 1000).toFixed(1)} s` +
      (pass.error ? `; ERROR ${pass.error}` : ''),
  );
}

async function main(): Promise<void> {
  checkArguments();
  const targets = targetNames(TARGET_ARGS);
  pinLoadToCore0();
  const env = environment(ROOT);
  console.log(
    `side-by-side: targets ${targets.join(', ')}; C = ${SIZES.join(', ')}; ${RUNS} run(s); ` +
      (env.pinned ? 'targets on core 1, load on core 0' : 'not pinned (no taskset or 1 core)'),
  );
  const passes: Pass[] = [];
  const deadline = Date.now() + TIMEOUT_MS - REPORT_RESERVE_MS;
  await warmUpLoad(targets[0]!);
  const predict = new PassDurations();
  const skipped: string[] = [];
  for (let run = 1; run <= RUNS; run++) {
    // Rotate the order each run so that drift (warm caches, a noisy neighbour) favours no one.
    const order = targets.map((_, i) => targets[(i + run - 1) % targets.length]!);
    for (const clients of SIZES) {
      for (const name of order) {
        if (Date.now() + predict.ms(name, clients) * 1.25 > deadline) {
          skipped.push(`run ${run} C=${clients} ${name}`);
          continue;
        }
        const started = Date.now();
        const pass = await measure(name, clients, run);
        passes.push(pass);
        const took = Date.now() - started;
        predict.record(name, clients, took);
        const m = pass.metrics;
        console.log(
          `run ${run} C=${clients} ${name}: ${m.connect_per_s} conn/s, all ${m.all_per_s}/s, ` +
            `event ${m.event_per_s}/s, user ${m.user_per_s}/s, ping p50 ${m.ping_p50_ms} ms, ` +
            `load ${pass.load_cpu_percent}% CPU, other processes ${pass.other_cpu_percent}% CPU, ` +
            `${(took / 1000).toFixed(1)} s` +
            (pass.error ? `; ERROR ${pass.error}` : ''),
        );
      }
    }
  }
  if (skipped.length > 0)
    console.warn(
      `WARNING: out of time (--timeout-s ${TIMEOUT_MS / 1000}), not run: ${skipped.join('; ')}`,
    );
  const rows = summarize(passes, targets);
  console.log(`\n${report(rows, env, RUNS, skipped)}\n`);
  const options = { quick, runs: RUNS, clients: SIZES, targets };
  const file = writeResults('compare', env.date, {
    environment: env,
    options,
    summary: rows,
    passes,
  });
  writeFileSync(`${ROOT}docs/bench.svg`, chart(rows, targets, env));
  console.log(`written ${file} and docs/bench.svg`);
}

runGuarded(main, TIMEOUT_MS);
